"""Read queries worth naming: prompt listing with filters, what is live where, and resolve.

Resolve is the hot path: ``resolve_lookup`` answers the caller's credentials and teams, the
environment, the pointer and its kill switch in one prepared SQL statement, which
``registry.resolve_cache`` keeps in-process until a change commits (told by PostgreSQL NOTIFY) or a
short TTL passes. Version payloads are immutable, so ``version_payload`` caches them in-process with
no invalidation needed: an uncached resolve is one query, a cached one none.
"""
import json
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC
from threading import Lock

from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import NotFound, PromptDisabled, ValidationFailed
from promptledger.canary import canary_bucket  # the client buckets units the same way

from .models import APIToken, Deployment, Environment, Prompt, PromptVersion, SiteRole

try:
    import psycopg
except ImportError:  # SQLite-only installs
    psycopg = None
from .permissions import visible_prompts


def prompt_list(*, actor, team=None, tier=None, tag=None, data_category=None, q=None):
    qs = visible_prompts(actor, Prompt.objects.select_related("team", "owner"))
    if team:
        qs = qs.filter(team__slug=team)
    if tier not in (None, ""):
        qs = qs.filter(tier=tier)
    # Labels are slugs (no quotes), so matching the quoted JSON text finds exact list members on
    # both SQLite and PostgreSQL.
    if tag:
        qs = qs.filter(tags__icontains=f'"{tag.lower()}"')
    if data_category:
        qs = qs.filter(data_categories__icontains=f'"{data_category.lower()}"')
    if q:
        qs = qs.filter(Q(slug__icontains=q) | Q(name__icontains=q) | Q(description__icontains=q))
    return qs.order_by("slug")


def with_latest_version(prompts, *, count=False):
    """``latest_version`` (and with ``count``, ``version_count``) on each prompt, computed for the
    rows fetched only: correlated subqueries on (prompt, number), where a join and GROUP BY would
    make PostgreSQL count every version of every prompt before it takes one page of them."""
    versions = PromptVersion.objects.filter(prompt=OuterRef("pk"))
    prompts = prompts.annotate(latest_version=Subquery(versions.order_by("-number").values("number")[:1]))
    if count:
        counted = versions.order_by().values("prompt").annotate(n=Count("pk")).values("n")
        prompts = prompts.annotate(version_count=Coalesce(Subquery(counted), 0))
    return prompts


def get_visible_prompt(*, actor, slug):
    prompt = visible_prompts(actor, Prompt.objects.select_related("team", "owner")).filter(slug=slug).first()
    if prompt is None:
        raise NotFound(f"no prompt '{slug}' (or you cannot see it)", code="prompt_not_found")
    return prompt


def get_version(*, prompt, number):
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = 0
    version = PromptVersion.objects.select_related("author", "llm_model").filter(prompt=prompt, number=number).first()
    if version is None:
        raise NotFound(f"'{prompt.slug}' has no version {number}", code="version_not_found")
    return version


def live_deployments(prompt):
    """One row per environment, in order, with the deployment if there is one."""
    pointers = {
        d.environment_id: d
        for d in Deployment.objects.filter(prompt=prompt).select_related("version", "canary_version", "updated_by")
    }
    return [(env, pointers.get(env.pk)) for env in Environment.objects.all()]


@dataclass(frozen=True, slots=True)
class ResolveCaller:
    """Who asks for a resolve, as the database knew it: a token's grant (``token`` set) or a browser
    session's user (``token`` None). Immutable, so the resolve cache can share one between threads."""

    token: APIToken | None  # pk and scopes only: what ``access.require`` and the access line read
    revoked: bool
    expires_at: float | None  # seconds since the epoch
    user_id: int
    user_active: bool
    user_superuser: bool
    reads_everything: bool
    team_ids: frozenset

    def expired(self, now):
        return self.expires_at is not None and self.expires_at <= now

    def may_see(self, team_id):
        """Team membership, or a site role that reads everything (superusers included)."""
        return team_id in self.team_ids or self.reads_everything or self.user_superuser


@dataclass(frozen=True, slots=True)
class ResolvePointer:
    """What a (prompt slug, environment slug) points at: ids are None for an unknown prompt or
    environment, ``version_id`` None when nothing is deployed."""

    prompt_id: int | None
    team_id: int | None
    environment_id: int | None
    version_id: int | None
    canary_version_id: int | None
    canary_percent: int | None
    disabled: bool
    disabled_reason: str
    version_hash: str | None
    canary_version_hash: str | None

    def content_hash(self, version_id):
        """The content hash of the live or the canary version: enough for a 304 without the body."""
        return self.canary_version_hash if version_id == self.canary_version_id else self.version_hash

    @property
    def known(self):
        """Both the prompt and the environment exist (only such answers are worth caching)."""
        return self.prompt_id is not None and self.environment_id is not None


# One statement answers everything a resolve needs: who the caller is (a token by its hash, or a
# session's user by id) with the teams they belong to and whether a site role lets them read
# everything, the environment, the pointer and its kill switch. Rows missing on the right come back
# as NULLs, so each failure still gets its own answer. The versions' content hashes come along, so a
# 304 needs nothing more and a 200 only the (cached) body. The caller's half and the pointer's half
# are cached apart (registry.resolve_cache): one token reads many prompts.
_RESOLVE_SQL = """
SELECT {credential_columns}, u.id, u.is_active, u.is_superuser, {team_ids},
       EXISTS (SELECT 1 FROM registry_siterole s WHERE s.user_id = u.id AND s.role IN ('{roles}')),
       p.id, p.team_id, e.id, d.version_id, d.canary_version_id, d.canary_percent,
       COALESCE(d.disabled, FALSE), COALESCE(d.disabled_reason, ''), v.content_hash, cv.content_hash
FROM {source}
LEFT JOIN registry_prompt p ON p.slug = %s
LEFT JOIN registry_environment e ON e.slug = %s
LEFT JOIN registry_deployment d ON d.prompt_id = p.id AND d.environment_id = e.id
LEFT JOIN registry_promptversion v ON v.id = d.version_id
LEFT JOIN registry_promptversion cv ON cv.id = d.canary_version_id
WHERE {where}
"""
_TEAM_IDS = {
    "postgresql": "ARRAY(SELECT m.team_id FROM registry_membership m WHERE m.user_id = u.id)",
    "sqlite": "(SELECT group_concat(m.team_id) FROM registry_membership m WHERE m.user_id = u.id)",
}
_READS_EVERYTHING = "', '".join(sorted((SiteRole.ADMIN, SiteRole.COMPLIANCE, SiteRole.RISK)))
_USERS = get_user_model()._meta.db_table
_BY_TOKEN_SQL = {
    vendor: _RESOLVE_SQL.format(
        credential_columns="t.id, t.scopes, t.revoked_at IS NOT NULL, t.expires_at",
        team_ids=team_ids, roles=_READS_EVERYTHING,
        source=f"registry_apitoken t JOIN {_USERS} u ON u.id = t.user_id", where="t.key_hash = %s",
    )
    for vendor, team_ids in _TEAM_IDS.items()
}
_BY_USER_SQL = {
    vendor: _RESOLVE_SQL.format(
        credential_columns="NULL, NULL, FALSE, NULL", team_ids=team_ids, roles=_READS_EVERYTHING,
        source=f"{_USERS} u", where="u.id = %s",
    )
    for vendor, team_ids in _TEAM_IDS.items()
}


class _PreparedCursor(psycopg.Cursor if psycopg else object):
    """A server-binding psycopg cursor that prepares its statement, so PostgreSQL plans the resolve
    join once per connection instead of on every request (planning is most of its cost)."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


# Django sets psycopg's prepare_threshold to None, which also refuses an explicit prepare. A
# threshold no statement reaches lets this one ask while every other query stays unprepared (and
# Django's own client-binding cursors never prepare at all).
_EXPLICIT_ONLY = 2**62


def _fetch_prepared(sql, params):
    """Run one of resolve's statements: prepared on PostgreSQL, through Django's cursor wrapper so query
    logging, execute wrappers and error translation still apply.

    It skips the per-request ``SELECT 1`` health check (CONN_HEALTH_CHECKS) and instead retries
    once on a fresh connection when the persistent one turns out to be broken: the statement only
    reads, so running it again is safe. Behind a transaction-pooling PgBouncer, set Django's
    ``DISABLE_SERVER_SIDE_CURSORS`` as its docs ask, and the statement is not prepared.
    """
    if connection.vendor != "postgresql" or psycopg is None or connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    ):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    for attempt in (1, 2):
        try:
            connection.ensure_connection()
            if connection.connection.prepare_threshold is None:
                connection.connection.prepare_threshold = _EXPLICIT_ONLY
            raw = _PreparedCursor(connection.connection)
            cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
            with cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        except (InterfaceError, OperationalError):
            if attempt == 2 or connection.in_atomic_block:
                raise
            connection.close()
    return None  # unreachable: the loop returns or raises


def _epoch(value):
    """A timestamp column as seconds since the epoch (SQLite hands raw SQL its text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value.timestamp()


def _team_ids(value):
    if isinstance(value, str):  # SQLite's group_concat
        return frozenset(int(part) for part in value.split(","))
    return frozenset(value or ())


def resolve_lookup(*, slug, environment, token_hash=None, user_id=None):
    """``(caller, pointer)`` for one resolve, in one query; ``None`` when the token (or user) does
    not exist. Pass ``token_hash`` for a bearer token, else a session's ``user_id``. Nothing is
    checked here: ``refuse_token`` and ``check_resolve`` decide."""
    vendor = "postgresql" if connection.vendor == "postgresql" else "sqlite"
    if token_hash is not None:
        row = _fetch_prepared(_BY_TOKEN_SQL[vendor], [slug, environment or "", token_hash])
    else:
        row = _fetch_prepared(_BY_USER_SQL[vendor], [slug, environment or "", user_id])
    if row is None:
        return None
    return _caller(row[:9]), _pointer(row[9:])


def _caller(columns):
    token_id, scopes, revoked, expires_at, user, active, superuser, teams, reads_everything = columns
    token = None if token_id is None else APIToken(pk=token_id, scopes=_json(scopes))
    return ResolveCaller(
        token=token, revoked=bool(revoked), expires_at=_epoch(expires_at), user_id=user, user_active=bool(active),
        user_superuser=bool(superuser), reads_everything=bool(reads_everything), team_ids=_team_ids(teams),
    )


def _pointer(columns):
    return ResolvePointer(*columns[:6], bool(columns[6]), *columns[7:])


# The resolve cache's revalidation (PostgreSQL only, on its listener's own connection): the callers
# of many token hashes, and the pointers of many (slug, environment) pairs, each in one statement
# with the same columns as ``_RESOLVE_SQL``'s halves.
_CALLERS_SQL = f"""
SELECT t.key_hash, t.id, t.scopes, t.revoked_at IS NOT NULL, t.expires_at, u.id, u.is_active, u.is_superuser,
       {_TEAM_IDS["postgresql"]},
       EXISTS (SELECT 1 FROM registry_siterole s WHERE s.user_id = u.id AND s.role IN ('{_READS_EVERYTHING}'))
FROM registry_apitoken t JOIN {_USERS} u ON u.id = t.user_id
WHERE t.key_hash = ANY(%s)
"""  # noqa: S608 - constant SQL, no input
_POINTERS_SQL = """
SELECT k.slug, k.environment, p.id, p.team_id, e.id, d.version_id, d.canary_version_id, d.canary_percent,
       COALESCE(d.disabled, FALSE), COALESCE(d.disabled_reason, ''), v.content_hash, cv.content_hash
FROM unnest(%s::text[], %s::text[]) AS k(slug, environment)
LEFT JOIN registry_prompt p ON p.slug = k.slug
LEFT JOIN registry_environment e ON e.slug = k.environment
LEFT JOIN registry_deployment d ON d.prompt_id = p.id AND d.environment_id = e.id
LEFT JOIN registry_promptversion v ON v.id = d.version_id
LEFT JOIN registry_promptversion cv ON cv.id = d.canary_version_id
"""


def resolve_callers(raw, key_hashes):
    """``{key hash: ResolveCaller}`` of the tokens that still exist, read on ``raw`` (a psycopg
    connection of PostgreSQL)."""
    rows = raw.execute(_CALLERS_SQL, [list(key_hashes)]).fetchall()
    return {row[0]: _caller(row[1:]) for row in rows}


def resolve_pointers(raw, keys):
    """``{(slug, environment): ResolvePointer}`` of each pair, read on ``raw``."""
    keys = list(keys)
    rows = raw.execute(_POINTERS_SQL, [[slug for slug, _ in keys], [env for _, env in keys]]).fetchall()
    return {(row[0], row[1]): _pointer(row[2:]) for row in rows}


def same_caller(a, b):
    """Whether two callers grant the same (``APIToken`` equality would compare primary keys only)."""
    return a == b and _grant(a) == _grant(b)


def _grant(caller):
    return None if caller.token is None else (caller.token.pk, tuple(caller.token.scopes))


def check_resolve(caller, pointer, *, slug, environment):
    """Raise the domain error a visible caller should see, in the contract's order: not visible,
    unknown environment, kill-switched, nothing deployed."""
    if pointer.prompt_id is None or not caller.may_see(pointer.team_id):
        raise NotFound(f"no prompt '{slug}' (or you cannot see it)", code="prompt_not_found")
    if pointer.environment_id is None:
        allowed = ", ".join(Environment.objects.values_list("slug", flat=True))
        raise ValidationFailed(
            f"unknown environment '{environment}'", code="unknown_environment",
            field_errors={"environment": [f"'{environment}' is not an environment; allowed: {allowed}"]},
        )
    if pointer.disabled:
        raise PromptDisabled(f"'{slug}' is disabled in {environment}: {pointer.disabled_reason}")
    if pointer.version_id is None:
        raise NotFound(f"nothing of '{slug}' is deployed to {environment}", code="not_deployed")
    return pointer


def pick_version_id(pointer, *, slug, environment, unit):
    """``(version_id, canary)``: the canary when a ``unit`` was given and its bucket falls under the
    canary's percentage, the live version otherwise."""
    if pointer.canary_version_id and unit:
        if canary_bucket(slug, environment, unit) < pointer.canary_percent:
            return pointer.canary_version_id, True
    return pointer.version_id, False


class _PayloadCache:
    """A bounded LRU of serialized resolve bodies keyed by (version id, environment, canary)."""

    def __init__(self, size=20000):
        self.size, self.items, self.lock = size, OrderedDict(), Lock()

    def get(self, key):
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key, value):
        with self.lock:
            self.items[key] = value
            if len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self):
        with self.lock:
            self.items.clear()


payload_cache = _PayloadCache()


_VERSION_SQL = """
SELECT p.slug, v.number, v.content_hash, v.messages, v.variables, v.model_config
FROM registry_promptversion v JOIN registry_prompt p ON p.id = v.prompt_id
WHERE v.id = %s
"""


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def cached_version_payload(version_id, *, environment, canary):
    """``version_payload`` when this process already holds it, else ``None``: never a query."""
    return payload_cache.get((version_id, environment, canary))


def version_payload(version_id, *, environment, canary):
    """``(body_bytes, content_hash)`` for a resolve answer; a query only the first time a process
    serves that version (versions are immutable, so the cache never goes stale)."""
    key = (version_id, environment, canary)
    cached = payload_cache.get(key)
    if cached is None:
        slug, number, digest, messages, variables, model = _fetch_prepared(_VERSION_SQL, [version_id])
        body = json.dumps({
            "slug": slug,
            "environment": environment,
            "version": number,
            "content_hash": digest,
            "canary": canary,
            "messages": _json(messages),
            "variables": _json(variables),
            "model": _json(model),
        }, separators=(",", ":")).encode()
        cached = (body, digest)
        payload_cache.put(key, cached)
    return cached
