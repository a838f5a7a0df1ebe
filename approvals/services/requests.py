"""Opening and withdrawing requests: a deploy, a rollback (to the version live before) or a
tier lowering. Each checks permission, supersedes the older open request for the same prompt and
environment (or the older tier change) and records its audit event in one transaction; where the
tier asks for no approvals it deploys at once in that same transaction.
"""

from django.utils import timezone

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, ValidationFailed
from core.tiers import check_tier
from registry.models import Deployment, PromptVersion
from registry.services.validation import check_text

from .. import events, notify
from ..models import DeployRequest
from ..policy import policy_for
from .deploys import _deploy_locked, _lock_pointer, _locked


def _check_canary(canary_percent):
    if canary_percent is None:
        return None
    if isinstance(canary_percent, bool) or not isinstance(canary_percent, int) or not 1 <= canary_percent <= 99:
        raise ValidationFailed(
            "canary_percent is out of range", field_errors={"canary_percent": ["an integer from 1 to 99, or null"]}
        )
    return canary_percent


def _supersede_older(actor, request):
    older = lock_rows(DeployRequest.objects).filter(
        prompt=request.prompt, status__in=DeployRequest.OPEN
    ).exclude(pk=request.pk)
    if request.kind == DeployRequest.TIER_CHANGE:
        older = older.filter(kind=DeployRequest.TIER_CHANGE)
    else:
        older = older.filter(environment=request.environment).exclude(kind=DeployRequest.TIER_CHANGE)
    for old in older.select_related("prompt__team", "version", "environment", "base_version"):
        old.status, old.superseded_by, old.decided_at = DeployRequest.SUPERSEDED, request, timezone.now()
        old.save(update_fields=["status", "superseded_by", "decided_at", "updated_at"])
        events.request_superseded(actor, old, by=request)


def _new_request(actor, prompt, *, kind, rationale, version=None, environment=None, canary_percent=None,
                 target_tier=None, base_version=None, break_glass=False):
    policy = policy_for(prompt.tier)
    request = DeployRequest.objects.create(
        prompt=prompt, kind=kind, version=version, environment=environment, canary_percent=canary_percent,
        target_tier=target_tier, base_version=base_version,
        content_hash=version.content_hash if version else "", llm_model=version.llm_model if version else None,
        tier=prompt.tier, policy_snapshot=policy.snapshot(), rationale=rationale, requested_by=actor.user,
        break_glass=break_glass,
        status=DeployRequest.APPROVED if policy.required_approvals == 0 else DeployRequest.PENDING,
    )
    return request, policy


def _already_live(pointer, version, canary_percent):
    if pointer is None or pointer.version_id is None:
        return False
    if canary_percent is None:
        return pointer.version_id == version.pk and pointer.canary_version_id is None
    return pointer.version_id == version.pk or (
        pointer.canary_version_id == version.pk and pointer.canary_percent == canary_percent
    )


@retry_transient
def open_request(*, actor, prompt, version, environment, rationale, canary_percent=None, kind=DeployRequest.DEPLOY):
    """Ask to put ``version`` live in ``environment`` (a canary when ``canary_percent`` is given).
    Team authors and above. An older open request for the same prompt and environment is
    superseded. Where the tier asks for nothing (Tier-3), it deploys at once, audited."""
    access.require(actor, "deploy_request.open", team=prompt.team)
    if not isinstance(version, PromptVersion) or version.prompt_id != prompt.pk:
        raise ValidationFailed(f"no such version of '{prompt.slug}'", field_errors={"version": ["a version number"]})
    rationale = check_text(rationale, "rationale", max_length=5000)
    canary_percent = _check_canary(canary_percent)
    with change():
        pointer = _lock_pointer(prompt, environment)
        live = pointer.version if pointer else None
        if canary_percent is not None and live is None:
            raise Conflict(
                f"nothing is live in {environment.slug} yet, so there is nothing to run a canary beside; "
                "request a full deploy first",
                code="canary_needs_live_version",
            )
        if _already_live(pointer, version, canary_percent):
            raise Conflict(f"v{version.number} is already live in {environment.slug}", code="already_live")
        request, policy = _new_request(
            actor, prompt, kind=kind, rationale=rationale, version=version, environment=environment,
            canary_percent=canary_percent, base_version=live,
        )
        _supersede_older(actor, request)
        events.request_opened(actor, request)
        notify.opened(actor, request)
        if policy.direct:
            _deploy_locked(actor, _locked(request))
            request.refresh_from_db()
    return request


def previous_live_version(prompt, environment):
    """The version live in ``environment`` before the current one, from the pointer's history."""
    pointer = Deployment.objects.filter(prompt=prompt, environment=environment).first()
    if pointer is None or pointer.version_id is None:
        return None
    earlier = (
        pointer.history.exclude(version_id=pointer.version_id)
        .exclude(version_id__isnull=True)
        .order_by("-history_date", "-history_id")
        .values_list("version_id", flat=True)
        .first()
    )
    return PromptVersion.objects.filter(pk=earlier).first() if earlier else None


def open_rollback(*, actor, prompt, environment, rationale):
    """A deploy request, like any other, back to the version live before the current one."""
    target = previous_live_version(prompt, environment)
    if target is None:
        raise Conflict(
            f"no earlier version was live in {environment.slug}, so there is nothing to roll back to",
            code="nothing_to_roll_back_to",
        )
    return open_request(
        actor=actor, prompt=prompt, version=target, environment=environment, rationale=rationale,
        kind=DeployRequest.ROLLBACK,
    )


@retry_transient
def open_tier_change(*, actor, prompt, target_tier, rationale):
    """Ask to lower a prompt's criticality (a larger tier number); owners of its team. It needs the
    approvals of the current tier, and applies at once where that tier needs none. Raising the
    tier is a plain prompt update."""
    access.require(actor, "tier_change.open", team=prompt.team)
    target_tier = check_tier(target_tier)
    if target_tier <= prompt.tier:
        raise ValidationFailed(
            f"tier {target_tier} is not lower than tier {prompt.tier}; raising the tier needs no request",
            code="not_a_lowering", field_errors={"tier": [f"a number above {prompt.tier}"]},
        )
    rationale = check_text(rationale, "rationale", max_length=5000)
    with change():
        request, policy = _new_request(
            actor, prompt, kind=DeployRequest.TIER_CHANGE, rationale=rationale, target_tier=target_tier
        )
        _supersede_older(actor, request)
        events.request_opened(actor, request)
        notify.opened(actor, request)
        if policy.required_approvals == 0:
            _deploy_locked(actor, _locked(request))
            request.refresh_from_db()
    return request


@retry_transient
def withdraw_request(*, actor, request):
    """The requester (or a team owner) withdraws an open request."""
    with change():
        request = _locked(request)
        own = actor.user is not None and actor.user.pk == request.requested_by_id
        access.require(actor, "deploy_request.withdraw", team=request.prompt.team, own=own)
        if not request.is_open:
            raise Conflict(f"this request is {request.status}; only an open request can be withdrawn",
                           code="stale_request")
        request.status, request.decided_at = DeployRequest.WITHDRAWN, timezone.now()
        request.save(update_fields=["status", "decided_at", "updated_at"])
        events.request_withdrawn(actor, request)
    return request
