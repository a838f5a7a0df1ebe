"""Who hears about a request beyond the audit trail: the signed webhooks of the ``webhooks`` app,
queued in the request's transaction and sent once it commits. Named approvers' in-app inbox needs
no message of its own: it is a query over open requests (``approvals.selectors.waiting_for``).
The deploy itself is announced by ``deployment.changed``, which the pointer move emits."""

from webhooks import events as webhook_events


def _data(request, **extra):
    return {
        "id": request.pk,
        "kind": request.kind,
        "prompt": request.prompt.slug,
        "version": request.version.number if request.version_id else None,
        "content_hash": request.content_hash,
        "environment": request.environment.slug if request.environment_id else None,
        "canary_percent": request.canary_percent,
        "target_tier": request.target_tier,
        "requester": request.requested_by.get_username(),
        "status": request.status,
        "break_glass": request.break_glass,
        **extra,
    }


def opened(actor, request):
    webhook_events.deploy_request_opened(actor=actor, team=request.prompt.team, data=_data(request))


def decided(actor, request, approval):
    emit = {
        "approve": webhook_events.deploy_request_approved,
        "reject": webhook_events.deploy_request_rejected,
    }.get(approval.decision)
    if emit is not None:
        emit(actor=actor, team=request.prompt.team, data=_data(request, comment=approval.comment))

