"""Read queries worth naming: prompt listing with filters, what is live where, and resolve.

``resolve_pointer`` is the hot path: one SQL statement returns the pointer, the kill switch and
whether the caller may read the prompt. Version payloads are immutable, so ``version_payload``
caches them in-process with no invalidation needed.
"""
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from django.db import connection
from django.db.models import Q

from .errors import NotFound, PromptDisabled, ValidationFailed
from .models import Deployment, Environment, Prompt, PromptVersion
from .permissions import visible_prompts


def prompt_list(*, actor, team=None, tier=None, tag=None, data_category=None, q=None):
    qs = visible_prompts(actor, Prompt.objects.select_related("team", "owner")).distinct()
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


def canary_bucket(slug, environment, unit):
    """A stable bucket 0..99 for a unit id, so a caller's unit always gets the same side."""
    digest = hashlib.sha256(f"{slug}\x00{environment}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


@dataclass(frozen=True)
class ResolvedPointer:
    version_id: int
    canary_version_id: int | None
    canary_percent: int | None


_POINTER_SQL = """
SELECT p.id, e.id, d.version_id, d.canary_version_id, d.canary_percent, d.disabled, d.disabled_reason,
       EXISTS (SELECT 1 FROM registry_membership m WHERE m.team_id = p.team_id AND m.user_id = %s),
       EXISTS (SELECT 1 FROM registry_siterole s WHERE s.user_id = %s)
FROM registry_prompt p
LEFT JOIN registry_environment e ON e.slug = %s
LEFT JOIN registry_deployment d ON d.prompt_id = p.id AND d.environment_id = e.id
WHERE p.slug = %s
"""


def resolve_pointer(*, user, slug, environment):
    """The deployment of ``slug`` in ``environment`` as seen by ``user`` (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(_POINTER_SQL, [user.pk, user.pk, environment, slug])
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"no prompt '{slug}' (or you cannot see it)", code="prompt_not_found")
    _, env_id, version_id, canary_id, canary_percent, disabled, reason, member, site_role = row
    if not (member or site_role or user.is_superuser):
        raise NotFound(f"no prompt '{slug}' (or you cannot see it)", code="prompt_not_found")
    if env_id is None:
        allowed = ", ".join(Environment.objects.values_list("slug", flat=True))
        raise ValidationFailed(
            f"unknown environment '{environment}'", code="unknown_environment",
            field_errors={"environment": [f"'{environment}' is not an environment; allowed: {allowed}"]},
        )
    if disabled:
        raise PromptDisabled(f"'{slug}' is disabled in {environment}: {reason}")
    if version_id is None:
        raise NotFound(f"nothing of '{slug}' is deployed to {environment}", code="not_deployed")
    return ResolvedPointer(version_id, canary_id, canary_percent)


def pick_version_id(pointer, *, slug, environment, unit):
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


def version_payload(version_id, *, environment, canary):
    """``(body_bytes, content_hash)`` for a resolve answer."""
    key = (version_id, environment, canary)
    cached = payload_cache.get(key)
    if cached is None:
        version = PromptVersion.objects.select_related("prompt").get(pk=version_id)
        body = json.dumps({
            "slug": version.prompt.slug,
            "environment": environment,
            "version": version.number,
            "content_hash": version.content_hash,
            "canary": canary,
            "messages": version.messages,
            "variables": version.variables,
            "model": version.model_config,
        }, separators=(",", ":")).encode()
        cached = (body, version.content_hash)
        payload_cache.put(key, cached)
    return cached
