"""Break-glass: an owner rolls back at once, without approvals, with a written reason, only to
a version that was live in that environment before. The rollback is flagged, audited, and opens a
post-hoc review the named approvers must sign (``decisions.sign_review``).
"""

from django.utils import timezone

from audit.transactions import change, retry_transient
from core import access
from core.errors import Conflict, ValidationFailed
from registry.models import PromptVersion
from registry.services.deployments import move_pointer

from .. import events
from ..models import DeployRequest
from .deploys import _lock_pointer
from .requests import _new_request, _supersede_older


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
