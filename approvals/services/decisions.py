"""Decisions on a request: approve, reject, sign a break-glass review, withdraw your own
decision. Each takes the request's row lock first, so two approvals at once are counted once each;
each decision is bound to what it was made on (content hash, environment, model, tier, policy
version) and to how its maker signed, and the request's informative status follows the live
decisions. Whether a person may decide is ``approvals.requirements``' answer.
"""

from django.utils import timezone

from audit.transactions import change, retry_transient
from core import access
from core.errors import Conflict, PermissionDenied, ValidationFailed
from registry.services.validation import check_text

from .. import events, notify
from ..models import Approval, DeployRequest
from ..policy import model_key, policy_for
from ..requirements import counted_approvals, live_rejections, refusal_to_decide
from .deploys import _locked
from .signatures import needs_reauth, signature_for, token_cannot_sign


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
                f"you already {existing.decision_past} this request"
                + ("; withdraw your decision first to change it" if existing.decision != decision else ""),
                code=code[existing.decision],
            )
        if decision != Approval.REJECT and needs_reauth(policy, signature):
            age = (timezone.now() - signature.at).total_seconds()
            raise PermissionDenied(
                f"tier-{policy.tier} approvals need your password again (last sign-in {int(age // 60)} minutes ago)",
                code="reauth_required",
            )
        if decision != Approval.REJECT and signature.method == "api_token" and token_cannot_sign(policy, actor.user):
            raise PermissionDenied(
                f"tier-{policy.tier} approvals by people who sign in with SSO are signed in the browser, "
                "after signing in again at the identity provider; an API token cannot sign them",
                code="reauth_required",
            )
        approval = Approval.objects.create(
            request=request, user=actor.user, decision=decision, comment=comment, **_binding_fields(request, policy),
            auth_method=signature.method, authenticated_at=signature.at, amr=list(signature.amr),
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
