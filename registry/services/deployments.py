"""Deployment pointers and kill switches.

``set_deployment`` moves the pointer under a row lock; the approval flow that guards it is built
on top of it (approvals) and it is otherwise used by the demo and tests. ``set_kill_switch``
takes effect at once for owners and approvers.
"""

from django.db import IntegrityError, transaction

from ..errors import ValidationFailed
from ..models import Deployment, Environment, Membership, PromptVersion
from ..permissions import require_team_role
from .validation import check_text


def get_environment(slug):
    env = Environment.objects.filter(slug=slug).first()
    if env is None:
        allowed = ", ".join(Environment.objects.values_list("slug", flat=True))
        raise ValidationFailed(
            f"unknown environment '{slug}'",
            code="unknown_environment",
            field_errors={"environment": [f"'{slug}' is not an environment; allowed: {allowed}"]},
        )
    return env


def _write_pointer(*, actor, prompt, environment, **fields):
    """Create or update the (prompt, environment) row under a row lock: one history entry per move."""
    with transaction.atomic():
        pointer = Deployment.objects.select_for_update().filter(prompt=prompt, environment=environment).first()
        if pointer is None:
            try:
                with transaction.atomic():
                    return Deployment.objects.create(
                        prompt=prompt, environment=environment, updated_by=actor.user, **fields
                    )
            except IntegrityError:  # another request created it first; lock theirs and update it
                pointer = Deployment.objects.select_for_update().get(prompt=prompt, environment=environment)
        for name, value in fields.items():
            setattr(pointer, name, value)
        pointer.updated_by = actor.user
        pointer.save()
    return pointer


def set_deployment(*, actor, prompt, environment, version, canary_version=None, canary_percent=None):
    """Point (prompt, environment) at ``version``, optionally with a canary. Team owners only."""
    require_team_role(actor, prompt.team, Membership.OWNER, scope="deploy")
    for field, candidate in (("version", version), ("canary_version", canary_version)):
        if candidate is not None and (not isinstance(candidate, PromptVersion) or candidate.prompt_id != prompt.pk):
            raise ValidationFailed(
                f"{field} is not a version of '{prompt.slug}'", field_errors={field: ["a version of this prompt"]}
            )
    if version is None:
        raise ValidationFailed("version is required", field_errors={"version": ["this field is required"]})
    if (canary_version is None) != (canary_percent is None):
        raise ValidationFailed(
            "a canary needs both a version and a percentage",
            field_errors={"canary_percent": ["give canary_version and canary_percent together"]},
        )
    if canary_percent is not None and (
        isinstance(canary_percent, bool) or not isinstance(canary_percent, int) or not 1 <= canary_percent <= 99
    ):
        raise ValidationFailed("canary_percent is out of range", field_errors={"canary_percent": ["an integer 1..99"]})
    return _write_pointer(
        actor=actor, prompt=prompt, environment=environment,
        version=version, canary_version=canary_version, canary_percent=canary_percent,
    )


def set_kill_switch(*, actor, prompt, environment, disabled, reason):
    """Disable or re-enable serving a prompt in an environment; approvers and owners of its team."""
    require_team_role(actor, prompt.team, Membership.APPROVER, scope="deploy")
    if not isinstance(disabled, bool):
        raise ValidationFailed("disabled is true or false", field_errors={"disabled": ["expected a boolean"]})
    reason = check_text(reason, "reason", max_length=2000)
    return _write_pointer(
        actor=actor, prompt=prompt, environment=environment, disabled=disabled, disabled_reason=reason
    )
