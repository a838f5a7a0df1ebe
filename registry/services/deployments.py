"""Deployment pointers and kill switches.

``move_pointer`` moves the pointer under a row lock; the approval flow's deploy calls it once every
requirement holds, and ``set_deployment`` (seeding: the demo and tests) validates and calls it. ``set_kill_switch``
takes effect at once for owners and approvers. Each records its audit event in its transaction.
"""

from django.db import IntegrityError, transaction

from audit import events
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import ValidationFailed

from .. import hooks
from ..models import Deployment, Environment, PromptVersion
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


def _locked_pointer(*, actor, prompt, environment):
    """The (prompt, environment) row, locked; created empty (nothing deployed) if missing.

    Must run inside a transaction. The history entry is written when the caller saves."""
    pointer = lock_rows(Deployment.objects).filter(prompt=prompt, environment=environment).first()
    if pointer is not None:
        return pointer, False
    try:
        with transaction.atomic():  # a savepoint inside the caller's change()
            pointer = Deployment(prompt=prompt, environment=environment, updated_by=actor.user)
            pointer.skip_history_when_saving = True
            pointer.save()
            del pointer.skip_history_when_saving
    except IntegrityError:  # another request created it first; lock theirs
        pointer = lock_rows(Deployment.objects).get(prompt=prompt, environment=environment)
    return pointer, True


def _number(version):
    return version.number if version is not None else None


def set_deployment(*, actor, prompt, environment, version, canary_version=None, canary_percent=None):
    """Point (prompt, environment) at ``version``, optionally with a canary, with no approval: for
    seeding (the demo, tests) by team owners. No API, page or CLI command calls it; every deploy a
    user makes goes through ``approvals.services.deploy``, which applies the tier policy."""
    access.require(actor, "deployment.seed", team=prompt.team)
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
    return move_pointer(
        actor=actor, prompt=prompt, environment=environment, version=version,
        canary_version=canary_version, canary_percent=canary_percent,
    )


@retry_transient
def move_pointer(*, actor, prompt, environment, version, canary_version=None, canary_percent=None):
    """Move the pointer under its row lock and record it. No permission check of its own: only
    ``set_deployment`` (seeding) and the approval flow's deploy, which has checked every
    requirement under the request's lock, call it."""
    with change():
        pointer, _ = _locked_pointer(actor=actor, prompt=prompt, environment=environment)
        before = {
            "version": _number(pointer.version),
            "canary_version": _number(pointer.canary_version),
            "canary_percent": pointer.canary_percent,
        }
        pointer.version, pointer.canary_version, pointer.canary_percent = version, canary_version, canary_percent
        pointer.updated_by = actor.user
        pointer.save()
        events.deployment_changed(actor, pointer, before=before)
        hooks.announce("deployment_changed", actor=actor, pointer=pointer, before=before)
    return pointer


@retry_transient
def set_kill_switch(*, actor, prompt, environment, disabled, reason):
    """Disable or re-enable serving a prompt in an environment; approvers and owners of its team."""
    access.require(actor, "kill_switch.set", team=prompt.team)
    if not isinstance(disabled, bool):
        raise ValidationFailed("disabled is true or false", field_errors={"disabled": ["expected a boolean"]})
    reason = check_text(reason, "reason", max_length=2000)
    with change():
        pointer, _ = _locked_pointer(actor=actor, prompt=prompt, environment=environment)
        was_disabled = pointer.disabled
        pointer.disabled, pointer.disabled_reason, pointer.updated_by = disabled, reason, actor.user
        pointer.save()
        events.kill_switch_changed(actor, pointer, was_disabled=was_disabled)
        hooks.announce("kill_switch_changed", actor=actor, pointer=pointer, was_disabled=was_disabled)
    return pointer
