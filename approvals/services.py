"""The approval flow: open a request, decide on it, deploy it, roll back, break glass, sign the
review. Each function checks permission, writes its change and records its audit event in one
transaction; each decision and each deploy takes the request's row lock first, so two approvals
at once are counted once each and two deploys at once deploy once (the other gets 409).

Whether a person may decide and whether a request may deploy is answered by
``approvals.requirements``, checked again inside the deploy's transaction.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.tiers import check_tier
from registry.models import Deployment, PromptVersion
from registry.services.deployments import move_pointer
from registry.services.validation import check_text

from . import events, notify
from .models import Approval, DeployRequest
from .policy import model_key, policy_for
from .requirements import checklist, counted_approvals, first_unmet, live_rejections, refusal_to_decide


@dataclass(frozen=True)
class Signature:
    """How the person proved who they are for a decision: ``password`` (re-entered just now),
    ``session`` (their browser login at ``at``), ``api_token`` (the bearer token of the call) or
    ``bootstrap_demo`` (the demo's seeded decisions). Nothing else is accepted."""

    METHODS = ("password", "session", "api_token", "bootstrap_demo")

    method: str
    at: datetime

    def __post_init__(self):
        if self.method not in self.METHODS:
            raise ValueError(f"unknown signature method {self.method!r}; one of {', '.join(self.METHODS)}")


def needs_reauth(policy, signature):
    """Whether ``signature`` is too old to approve under ``policy``: a browser session older than
    ``PROMPTLEDGER_REAUTH_MAX_AGE`` where the policy asks for the password again."""
    if not policy.reauth_for_approval or signature.method != "session":
        return False
    return (timezone.now() - signature.at).total_seconds() > settings.PROMPTLEDGER_REAUTH_MAX_AGE


NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def signature_for(actor):
    """The signature a call carries: its API token, or its browser session's last authentication
    (``core.session_auth``: this session's sign-in or password, not the person's newest
    sign-in anywhere). A session that cannot say when is treated as long ago."""
    if actor.token is not None:
        return Signature("api_token", timezone.now())
    return Signature("session", getattr(actor, "authenticated_at", None) or NEVER)


def _check_canary(canary_percent):
    if canary_percent is None:
        return None
    if isinstance(canary_percent, bool) or not isinstance(canary_percent, int) or not 1 <= canary_percent <= 99:
        raise ValidationFailed(
            "canary_percent is out of range", field_errors={"canary_percent": ["an integer from 1 to 99, or null"]}
        )
    return canary_percent


def _locked(request):
    return (
        lock_rows(DeployRequest.objects)
        .select_related("prompt__team", "version__llm_model", "environment", "base_version", "requested_by")
        .get(pk=request.pk)
    )


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


def _lock_pointer(prompt, environment):
    """The (prompt, environment) pointer row, locked, or None when nothing was ever deployed."""
    return lock_rows(Deployment.objects).filter(prompt=prompt, environment=environment).first()


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


def _refresh_status(request):
    """pending / approved / rejected from the live decisions (an informative state: the deploy
    re-checks everything)."""
    if live_rejections(request):
        status = DeployRequest.REJECTED
    elif len(counted_approvals(request)) >= policy_for(request.prompt.tier).required_approvals:
        status = DeployRequest.APPROVED
    else:
        status = DeployRequest.PENDING
    if status != request.status:
        request.status = status
        request.decided_at = timezone.now() if status != DeployRequest.PENDING else None
        request.save(update_fields=["status", "decided_at", "updated_at"])


@retry_transient
def _decide(actor, request, decision, comment, signature):
    access.require(actor, "deploy_request.decide")
    with change():
        request = _locked(request)
        if decision == Approval.SIGN_OFF:
            if request.review_status != DeployRequest.REVIEW_PENDING:
                raise Conflict("this request has no review waiting for sign-off", code="no_review_pending")
        elif not request.is_open:
            raise Conflict(f"this request is {request.status}; it can no longer be decided on", code="stale_request")
        policy = policy_for(request.prompt.tier)
        refusal = refusal_to_decide(request, actor.user, policy=policy)
        if refusal is not None:
            raise refusal
        existing = Approval.objects.filter(request=request, user=actor.user, withdrawn_at__isnull=True).first()
        if existing is not None:
            code = {"approve": "already_approved", "reject": "already_rejected", "sign_off": "already_signed"}
            raise Conflict(
                f"you already {existing.get_decision_display().lower()}d this request"
                + ("; withdraw your decision first to change it" if existing.decision != decision else ""),
                code=code[existing.decision],
            )
        if decision != Approval.REJECT and needs_reauth(policy, signature):
            age = (timezone.now() - signature.at).total_seconds()
            raise PermissionDenied(
                f"tier-{policy.tier} approvals need your password again (last sign-in {int(age // 60)} minutes ago)",
                code="reauth_required",
            )
        approval = Approval.objects.create(
            request=request, user=actor.user, decision=decision, comment=comment, **_binding_fields(request, policy),
            auth_method=signature.method, authenticated_at=signature.at,
        )
        events.decision_made(actor, request, approval)
        if decision == Approval.SIGN_OFF:
            _maybe_complete_review(actor, request, policy)
        else:
            _refresh_status(request)
            notify.decided(actor, request, approval)
    return approval


def _binding_fields(request, policy):
    return {
        "content_hash": request.content_hash,
        "environment": request.environment.slug if request.environment_id else "",
        "model_key": model_key(request.version),
        "tier": request.prompt.tier,
        "policy_version": policy.version,
    }


def approve(*, actor, request, comment="", signature=None):
    """Approve ``request``: a person eligible under the policy, not its author or requester, once."""
    comment = check_text(comment, "comment", required=False, max_length=5000)
    return _decide(actor, request, Approval.APPROVE, comment, signature or signature_for(actor))


def reject(*, actor, request, comment, signature=None):
    """Reject ``request`` with a comment; it blocks the deploy until the same person withdraws it."""
    comment = check_text(comment, "comment", max_length=5000) if comment else ""
    if not comment:
        raise ValidationFailed(
            "a rejection needs a comment saying why", code="comment_required",
            field_errors={"comment": ["say why you reject it"]},
        )
    return _decide(actor, request, Approval.REJECT, comment, signature or signature_for(actor))


@retry_transient
def withdraw_decision(*, actor, request):
    """Withdraw your own live approval or rejection (only the person who made it can)."""
    access.require(actor, "deploy_request.decide")
    with change():
        request = _locked(request)
        approval = Approval.objects.filter(
            request=request, user=actor.user, withdrawn_at__isnull=True,
            decision__in=[Approval.APPROVE, Approval.REJECT],
        ).first()
        if approval is None:
            raise Conflict("you have no decision on this request to withdraw", code="no_decision")
        if not request.is_open:
            raise Conflict(f"this request is {request.status}", code="stale_request")
        approval.withdrawn_at = timezone.now()
        approval.save(update_fields=["withdrawn_at"])
        events.decision_withdrawn(actor, request, approval)
        _refresh_status(request)
    return request


def sign_review(*, actor, request, comment="", signature=None):
    """Sign the post-hoc review of a break-glass rollback (named approvers, as for an approval)."""
    comment = check_text(comment, "comment", required=False, max_length=5000)
    return _decide(actor, request, Approval.SIGN_OFF, comment, signature or signature_for(actor))


def _maybe_complete_review(actor, request, policy):
    signed = Approval.objects.filter(request=request, decision=Approval.SIGN_OFF, withdrawn_at__isnull=True).count()
    if signed >= max(1, policy.required_approvals):
        request.review_status = DeployRequest.REVIEW_SIGNED
        request.save(update_fields=["review_status", "updated_at"])
        events.review_completed(actor, request)


@retry_transient
def deploy(*, actor, request):
    """Put the request live. Locks the request's row, re-checks every requirement of the policy in
    force now (state, rejections, what is live, approvals and their eligibility, gate on the
    content hash, model status) and moves the pointer in the same transaction."""
    access.require(actor, "deploy_request.deploy", team=request.prompt.team)
    with change():
        return _deploy_locked(actor, _locked(request))


def _deploy_locked(actor, request):
    pointer = None
    if request.kind != DeployRequest.TIER_CHANGE:  # what is live cannot move while we check it
        pointer = _lock_pointer(request.prompt, request.environment)
    items = checklist(request, actor=actor, record_gate=True)
    unmet = first_unmet(items)
    if unmet is not None:
        raise unmet.error()
    if request.kind == DeployRequest.TIER_CHANGE:
        _apply_tier_change(actor, request)
    elif request.canary_percent is not None:
        move_pointer(
            actor=actor, prompt=request.prompt, environment=request.environment, version=pointer.version,
            canary_version=request.version, canary_percent=request.canary_percent,
        )
    else:  # a full deploy; it also ends any canary
        move_pointer(actor=actor, prompt=request.prompt, environment=request.environment, version=request.version)
    request.status, request.deployed_at, request.deployed_by = DeployRequest.DEPLOYED, timezone.now(), actor.user
    request.save(update_fields=["status", "deployed_at", "deployed_by", "updated_at"])
    events.request_deployed(actor, request, checklist=items)
    return request


def _apply_tier_change(actor, request):
    from registry.models import Prompt

    prompt = lock_rows(Prompt.objects).get(pk=request.prompt_id)
    before = prompt.tier
    prompt.tier = request.target_tier
    prompt.save(update_fields=["tier", "updated_at"])
    events.tier_changed(actor, request, before=before, after=prompt.tier)


@retry_transient
def break_glass_rollback(*, actor, prompt, environment, version, reason):
    """Roll back at once, without approvals: owners of the prompt's team only (no admin shortcut),
    with a written reason, only to a version that was live in this environment before. Flagged,
    and a post-hoc review opens that the named approvers must sign."""
    access.require(actor, "break_glass", team=prompt.team)
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationFailed(
            "break-glass needs a written reason", code="reason_required",
            field_errors={"reason": ["say what is wrong and why it cannot wait (10 characters or more)"]},
        )
    if not isinstance(version, PromptVersion) or version.prompt_id != prompt.pk:
        raise ValidationFailed(f"no such version of '{prompt.slug}'", field_errors={"version": ["a version number"]})
    with change():
        pointer = _lock_pointer(prompt, environment)
        live_id = pointer.version_id if pointer else None
        was_live = pointer is not None and pointer.history.filter(version_id=version.pk).exists()
        if not was_live or live_id == version.pk:
            raise Conflict(
                f"v{version.number} {'is live now' if live_id == version.pk else 'was never live'} in "
                f"{environment.slug}; break-glass only goes back to a version that was live there before",
                code="not_previously_live",
            )
        request, _ = _new_request(
            actor, prompt, kind=DeployRequest.ROLLBACK, rationale=reason, version=version, environment=environment,
            base_version=pointer.version, break_glass=True,
        )
        _supersede_older(actor, request)
        move_pointer(actor=actor, prompt=prompt, environment=environment, version=version)
        request.status, request.deployed_at, request.deployed_by = DeployRequest.DEPLOYED, timezone.now(), actor.user
        request.review_status = DeployRequest.REVIEW_PENDING
        request.save()
        events.break_glass(actor, request, reason=reason)
    return request
