"""Read queries worth naming: prompt listing with filters, what is live where, and resolve.

Resolve is the hot path: ``resolve_grant`` answers the caller's credentials, visibility, the
environment, the pointer and its kill switch in one prepared SQL statement, so nothing about access
or deployment is cached and a revoked token or a kill switch takes effect on the next request.
Version payloads are immutable, so ``version_payload`` caches them in-process with no invalidation
needed: a warm resolve is one query.
"""
import json
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.errors import NotFound, PromptDisabled, ValidationFailed
from promptledger.canary import canary_bucket  # the client buckets units the same way

from .models import Deployment, Environment, Prompt, PromptVersion, SiteRole

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


@dataclass(frozen=True)
class ResolveGrant:
    """What one resolve query found: the caller's credentials and the pointer, before any check."""

    token_id: int | None
    token_scopes: str | list | None
    token_revoked: bool
    token_expired: bool
    user_id: int | None
    user_active: bool
    user_superuser: bool
    environment_id: int | None
    prompt_id: int | None
    version_id: int | None
    canary_version_id: int | None
    canary_percent: int | None
    disabled: bool
    disabled_reason: str
    member: bool
    reads_everything: bool
    version_hash: str | None
    canary_version_hash: str | None

    def content_hash(self, version_id):
        """The content hash of the live or the canary version: enough for a 304 without the body."""
        return self.canary_version_hash if version_id == self.canary_version_id else self.version_hash


# One statement answers everything a warm resolve needs: who the caller is (a token by its hash, or a
# session's user by id), whether they may read the prompt (team membership or a site role that reads
# everything), the environment, the pointer and its kill switch. Rows missing on the right come back
# as NULLs, so each failure still gets its own answer. The versions' content hashes come along, so a
# 304 needs nothing more and a 200 only the (cached) body.
_RESOLVE_SQL = """
SELECT {credential_columns}, u.id, u.is_active, u.is_superuser, e.id, p.id,
       d.version_id, d.canary_version_id, d.canary_percent, d.disabled, d.disabled_reason,
       EXISTS (SELECT 1 FROM registry_membership m WHERE m.team_id = p.team_id AND m.user_id = u.id),
       EXISTS (SELECT 1 FROM registry_siterole s WHERE s.user_id = u.id AND s.role IN ('{roles}')),
       v.content_hash, cv.content_hash
FROM {source}
LEFT JOIN registry_prompt p ON p.slug = %s
LEFT JOIN registry_environment e ON e.slug = %s
LEFT JOIN registry_deployment d ON d.prompt_id = p.id AND d.environment_id = e.id
LEFT JOIN registry_promptversion v ON v.id = d.version_id
LEFT JOIN registry_promptversion cv ON cv.id = d.canary_version_id
WHERE {where}
"""
_READS_EVERYTHING = "', '".join(sorted((SiteRole.ADMIN, SiteRole.COMPLIANCE, SiteRole.RISK)))
_BY_TOKEN_SQL = _RESOLVE_SQL.format(
    credential_columns="t.id, t.scopes, t.revoked_at IS NOT NULL, (t.expires_at IS NOT NULL AND t.expires_at <= %s)",
    roles=_READS_EVERYTHING,
    source=f"registry_apitoken t JOIN {get_user_model()._meta.db_table} u ON u.id = t.user_id",
    where="t.key_hash = %s",
)
_BY_USER_SQL = _RESOLVE_SQL.format(
    credential_columns="NULL, NULL, FALSE, FALSE",
    roles=_READS_EVERYTHING,
    source=f"{get_user_model()._meta.db_table} u",
    where="u.id = %s",
)


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


def resolve_grant(*, slug, environment, token_hash=None, user_id=None):
    """Credentials, visibility and pointer for one resolve, in one query; ``None`` when the token
    (or user) does not exist. Pass ``token_hash`` for a bearer token, else a session's ``user_id``."""
    if token_hash is not None:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        row = _fetch_prepared(_BY_TOKEN_SQL, [now, slug, environment or "", token_hash])
    else:
        row = _fetch_prepared(_BY_USER_SQL, [slug, environment or "", user_id])
    return None if row is None else ResolveGrant(*row)


def check_resolve(grant, *, slug, environment):
    """Raise the domain error a visible caller should see, in the contract's order: not visible,
    unknown environment, kill-switched, nothing deployed."""
    if grant.prompt_id is None or not (grant.member or grant.reads_everything or grant.user_superuser):
        raise NotFound(f"no prompt '{slug}' (or you cannot see it)", code="prompt_not_found")
    if grant.environment_id is None:
        allowed = ", ".join(Environment.objects.values_list("slug", flat=True))
        raise ValidationFailed(
            f"unknown environment '{environment}'", code="unknown_environment",
            field_errors={"environment": [f"'{environment}' is not an environment; allowed: {allowed}"]},
        )
    if grant.disabled:
        raise PromptDisabled(f"'{slug}' is disabled in {environment}: {grant.disabled_reason}")
    if grant.version_id is None:
        raise NotFound(f"nothing of '{slug}' is deployed to {environment}", code="not_deployed")
    return grant


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
