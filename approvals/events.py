"""One function per audit event type of the approval flow, called explicitly by its services inside
their transaction. Every event about a request has target ``deploy_request``/<id>, so the request
page's timeline is the audit trail itself."""

from audit.services import record


def request_state(request):
    return {
        "kind": request.kind,
        "version": request.version.number if request.version_id else None,
        "content_hash": request.content_hash,
        "environment": request.environment.slug if request.environment_id else None,
        "canary_percent": request.canary_percent,
        "target_tier": request.target_tier,
        "tier": request.tier,
        "base_version": request.base_version.number if request.base_version_id else None,
        "status": request.status,
        "break_glass": request.break_glass,
    }


def _on_request(actor, request, action, **data):
    return record(
        actor=actor,
        action=action,
        target_type="deploy_request",
        target_id=request.pk,
        team=request.prompt.team.slug,
        prompt=request.prompt.slug,
        data={**request_state(request), **data},
    )


def request_opened(actor, request):
    return _on_request(
        actor, request, "deploy_request.opened", rationale=request.rationale, policy=request.policy_snapshot
    )


def request_superseded(actor, request, *, by):
    return _on_request(actor, request, "deploy_request.superseded", superseded_by=by.pk)


def request_withdrawn(actor, request):
    return _on_request(actor, request, "deploy_request.withdrawn")


def decision_made(actor, request, approval):
    action = {
        "approve": "deploy_request.approved",
        "reject": "deploy_request.rejected",
        "sign_off": "deploy_request.review_signed",
    }[approval.decision]
    return _on_request(
        actor,
        request,
        action,
        comment=approval.comment,
        binding={
            "content_hash": approval.content_hash,
            "environment": approval.environment,
            "model": approval.model_key,
            "tier": approval.tier,
            "policy_version": approval.policy_version,
        },
        auth_method=approval.auth_method,
        authenticated_at=approval.authenticated_at,
        **({"amr": approval.amr} if approval.amr else {}),
    )


def decision_withdrawn(actor, request, approval):
    return _on_request(actor, request, "deploy_request.decision_withdrawn", decision=approval.decision)


def request_deployed(actor, request, *, checklist):
    return _on_request(
        actor,
        request,
        "deploy_request.deployed",
        checks={item.key: {"met": item.met, "detail": item.detail} for item in checklist},
    )


def break_glass(actor, request, *, reason):
    return _on_request(actor, request, "deploy_request.break_glass", reason=reason, flagged=True)


def review_completed(actor, request):
    return _on_request(actor, request, "deploy_request.review_completed")


def tier_changed(actor, request, *, before, after):
    return _on_request(actor, request, "prompt.tier_changed", tier_before=before, tier_after=after)


def approvers_changed(actor, prompt, *, before, after):
    return record(
        actor=actor,
        action="prompt.approvers_changed",
        target_type="prompt",
        target_id=prompt.slug,
        team=prompt.team.slug,
        prompt=prompt.slug,
        data={"before": before, "after": after},
    )


def approver_group_changed(actor, group, *, before, created):
    return record(
        actor=actor,
        action="approver_group.created" if created else "approver_group.updated",
        target_type="approver_group",
        target_id=f"{group.team.slug}/{group.slug}",
        team=group.team.slug,
        data={"before": before, "after": {"name": group.name, "members": _members(group)}},
    )


def _members(group):
    return sorted(group.members.values_list("username", flat=True))


def policy_updated(actor, policy, *, before, reason):
    return record(
        actor=actor,
        action="tier_policy.updated",
        target_type="tier_policy",
        target_id=policy.tier,
        data={"before": before, "after": policy.snapshot(), "reason": reason},
    )


# What the audit log calls these actions, and the prefixes it offers as one filter choice
# (core.vocabulary; described when the app starts).
LABELS = {
    "deploy_request.opened": "Deploy request opened",
    "deploy_request.approved": "Request approved",
    "deploy_request.rejected": "Request rejected",
    "deploy_request.decision_withdrawn": "Decision withdrawn",
    "deploy_request.withdrawn": "Request withdrawn",
    "deploy_request.superseded": "Request superseded",
    "deploy_request.deployed": "Request deployed",
    "deploy_request.break_glass": "Break-glass rollback",
    "deploy_request.review_signed": "Break-glass review signed",
    "deploy_request.review_completed": "Break-glass review completed",
    "prompt.tier_changed": "Tier lowered",
    "prompt.approvers_changed": "Named approvers changed",
    "approver_group.created": "Approver group created",
    "approver_group.updated": "Approver group changed",
    "tier_policy.updated": "Tier policy edited",
}
GROUPS = {
    "deploy_request.": "Deploy requests and approvals",
}
