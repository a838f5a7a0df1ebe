"""Deploying a request. ``deploy`` locks the request's row (``_locked``) and what is live
(``_lock_pointer``), re-checks every requirement of the policy in force now inside that transaction,
then moves the pointer or applies the tier change and records the deploy: two deploys at once deploy
once, and the other gets 409. The two lock helpers live here for every service that takes them.
"""

from django.utils import timezone

from audit.transactions import change, lock_rows, retry_transient
from core import access
from registry.models import Deployment
from registry.services.deployments import move_pointer

from .. import events
from ..models import DeployRequest
from ..requirements import checklist, first_unmet


def _locked(request):
    return (
        lock_rows(DeployRequest.objects)
        .select_related("prompt__team", "version__llm_model", "environment", "base_version", "requested_by")
        .get(pk=request.pk)
    )


def _lock_pointer(prompt, environment):
    """The (prompt, environment) pointer row, locked, or None when nothing was ever deployed."""
    return lock_rows(Deployment.objects).filter(prompt=prompt, environment=environment).first()


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
