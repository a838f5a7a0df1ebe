"""Every rule of the tier policies, through the services, each with its allowed and refused path."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import administration, services
from approvals.models import Approval, DeployRequest, TierPolicy
from approvals.services import Signature
from audit.models import AuditEvent
from core.actors import Actor
from core.errors import DomainError
from registry.models import Deployment, LLMModel, Membership
from registry.services import update_prompt

from .conftest import act, push, run_suite


def open_v2(flow, production, by="owner", **kw):
    return services.open_request(
        actor=act(flow[by]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="friendlier letter", **kw,
    )


def refused(code, fn, *args, **kwargs):
    with pytest.raises(DomainError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, caught.value.detail
    return caught.value


def live_number(prompt, environment):
    pointer = Deployment.objects.get(prompt=prompt, environment=environment)
    return pointer.version.number


def test_tier_0_deploys_after_two_named_approvals_and_records_every_step(flow, production):
    request = open_v2(flow, production)
    assert request.status == DeployRequest.PENDING
    assert request.policy_snapshot["required_approvals"] == 2
    services.approve(actor=act(flow["approver"]), request=request, comment="reads well")
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    request.refresh_from_db()
    assert request.status == DeployRequest.APPROVED
    services.deploy(actor=act(flow["owner"]), request=request)
    request.refresh_from_db()
    assert request.status == DeployRequest.DEPLOYED
    assert live_number(request.prompt, production) == 2
    actions = list(
        AuditEvent.objects.filter(target_type="deploy_request", target_id=str(request.pk)).values_list(
            "action", flat=True
        )
    )
    assert actions == [
        "deploy_request.opened", "deploy_request.approved", "deploy_request.approved", "deploy_request.deployed"
    ]
    assert AuditEvent.objects.filter(action="deployment.changed", prompt="loan-letter").exists()


def test_author_cannot_approve_their_version_but_an_approver_can(flow, production):
    request = open_v2(flow, production)
    refused("author_cannot_approve", services.approve, actor=act(flow["author"]), request=request)
    assert services.approve(actor=act(flow["approver"]), request=request).decision == Approval.APPROVE


def test_an_approver_who_authored_a_version_in_between_cannot_approve(flow, production):
    flow["approver"].memberships.update(role=Membership.APPROVER)
    v3 = push(flow, flow["v2"].prompt, "Hello {{ name }}.", author="approver")
    run_suite(flow, v3.prompt, v3)
    request = services.open_request(
        actor=act(flow["owner"]), prompt=v3.prompt, version=v3, environment=production, rationale="two changes"
    )
    refused("author_cannot_approve", services.approve, actor=act(flow["approver"]), request=request)
    refused("author_cannot_approve", services.approve, actor=act(flow["author"]), request=request)


def test_the_requester_cannot_approve_their_own_request(flow, production):
    request = open_v2(flow, production, by="approver")
    refused("self_approval", services.approve, actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)


def test_tier_0_needs_a_named_approver_and_tier_1_any_team_approver(flow, production):
    request = open_v2(flow, production)
    refused("not_named_approver", services.approve, actor=act(flow["approver3"]), request=request)
    prompt = request.prompt
    prompt.tier = 1
    prompt.save()
    assert services.approve(actor=act(flow["approver3"]), request=request)


def test_viewers_outsiders_and_admins_outside_the_team_cannot_approve_tier_0(flow, production):
    request = open_v2(flow, production)
    for name in ("viewer", "outsider", "admin"):
        refused("not_eligible_approver", services.approve, actor=act(flow[name]), request=request)
    flow["admin"].is_superuser = True
    flow["admin"].save()
    refused("not_eligible_approver", services.approve, actor=Actor(user=flow["admin"]), request=request)


def test_the_system_cannot_approve(flow, production):
    request = open_v2(flow, production)
    refused("not_a_person", services.approve, actor=Actor.for_system(), request=request)


def test_each_approver_counts_once(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    refused("already_approved", services.approve, actor=act(flow["approver"]), request=request)
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=request)


def test_a_rejection_needs_a_comment_and_blocks_until_its_author_withdraws_it(flow, production):
    request = open_v2(flow, production)
    refused("comment_required", services.reject, actor=act(flow["approver3"]), request=request, comment="")
    services.reject(actor=act(flow["approver"]), request=request, comment="wrong tone")
    services.approve(actor=act(flow["approver2"]), request=request)
    request.refresh_from_db()
    assert request.status == DeployRequest.REJECTED
    refused("no_decision", services.withdraw_decision, actor=act(flow["owner"]), request=request)
    refused("rejected", services.deploy, actor=act(flow["owner"]), request=request)
    services.withdraw_decision(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)


def test_the_gate_is_checked_on_the_hash_at_deploy(flow, production):
    v3 = push(flow, flow["v2"].prompt, "Hi {{ name }}!")
    request = services.open_request(
        actor=act(flow["owner"]), prompt=v3.prompt, version=v3, environment=production, rationale="no run yet"
    )
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    error = refused("gate_failed", services.deploy, actor=act(flow["owner"]), request=request)
    assert "no finished run" in error.detail
    run_suite(flow, v3.prompt, v3)
    services.deploy(actor=act(flow["owner"]), request=request)


def test_the_models_register_status_is_checked_again_at_deploy(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.RESTRICTED)
    error = refused("model_not_approved", services.deploy, actor=act(flow["owner"]), request=request)
    assert "restricted" in error.detail
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.APPROVED)
    services.deploy(actor=act(flow["owner"]), request=request)


def test_a_restricted_model_may_carry_tier_2_but_never_a_retired_one(flow, production):
    prompt = flow["v2"].prompt
    prompt.tier = 2
    prompt.save()
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.RESTRICTED)
    request = open_v2(flow, production)
    assert request.status == DeployRequest.APPROVED  # tier 2 needs no approval, only the gate
    services.deploy(actor=act(flow["author"]), request=request)
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.RETIRED)
    rollback = services.open_rollback(actor=act(flow["owner"]), prompt=prompt, environment=production, rationale="x")
    refused("model_not_approved", services.deploy, actor=act(flow["owner"]), request=rollback)


def test_eligibility_is_checked_again_at_deploy(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    administration.set_named_approvers(
        actor=act(flow["owner"]), prompt=request.prompt, approvers=["approver", "approver3"]
    )
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=request)
    flow["approver2"].is_active = False
    flow["approver2"].save()
    administration.set_named_approvers(
        actor=act(flow["owner"]), prompt=request.prompt, approvers=["approver", "approver3"]
    )
    services.approve(actor=act(flow["approver3"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)


def test_a_policy_edit_leaves_earlier_approvals_unmatched_and_keeps_the_snapshot(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    refused("site_role_required", administration.update_policy, actor=act(flow["owner"]), tier=0, requires_gate=True,
            reason="test")
    policy = administration.update_policy(actor=act(flow["admin"]), tier=0, reauth_for_approval=False, reason="test")
    assert policy.version == 2
    request.refresh_from_db()
    assert request.policy_snapshot["version"] == 1 and request.policy_snapshot["reauth_for_approval"] is True
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=request)
    assert AuditEvent.objects.filter(action="tier_policy.updated", target_id="0").count() == 1


def test_policy_edits_are_validated(flow):
    admin = act(flow["admin"])
    refused("invalid", administration.update_policy, actor=admin, tier=0, required_approvals=-1, reason="r")
    refused("invalid", administration.update_policy, actor=admin, tier=0, required_approvals="2", reason="r")
    refused("invalid_model_statuses", administration.update_policy, actor=admin, tier=0,
            allowed_model_statuses=["retired"], reason="r")
    refused("invalid", administration.update_policy, actor=admin, tier=7, requires_gate=False, reason="r")
    assert TierPolicy.objects.get(tier=0).version == 1


def test_deploying_twice_is_a_stale_request(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)
    error = refused("stale_request", services.deploy, actor=act(flow["owner"]), request=request)
    assert error.status == 409


def test_a_newer_request_supersedes_older_open_ones(flow, production):
    first = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=first)
    second = open_v2(flow, production, by="author")
    first.refresh_from_db()
    assert first.status == DeployRequest.SUPERSEDED and first.superseded_by_id == second.pk
    refused("stale_request", services.approve, actor=act(flow["approver2"]), request=first)
    refused("stale_request", services.deploy, actor=act(flow["owner"]), request=first)


def test_a_request_is_stale_when_something_else_went_live_meanwhile(flow, production):
    from registry.services import set_deployment

    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    v3 = push(flow, request.prompt, "Yo {{ name }}")
    set_deployment(actor=act(flow["owner"]), prompt=request.prompt, environment=production, version=v3)
    error = refused("stale_request", services.deploy, actor=act(flow["owner"]), request=request)
    assert "went live" in error.detail


def test_tier_3_deploys_as_it_is_requested(flow, production):
    prompt = flow["v2"].prompt
    prompt.tier = 3
    prompt.save()
    request = open_v2(flow, production, by="author")
    assert request.status == DeployRequest.DEPLOYED
    assert live_number(prompt, production) == 2
    assert AuditEvent.objects.filter(action="deploy_request.deployed", target_id=str(request.pk)).exists()


def test_viewers_cannot_open_requests_and_requests_need_a_rationale(flow, production):
    refused("role_too_low", open_v2, flow, production, by="viewer")
    refused("invalid", services.open_request, actor=act(flow["owner"]), prompt=flow["v2"].prompt,
            version=flow["v2"], environment=production, rationale="  ")
    refused("already_live", services.open_request, actor=act(flow["owner"]), prompt=flow["v2"].prompt,
            version=flow["v1"], environment=production, rationale="again")


def test_reauthentication_is_required_for_tier_0_after_a_stale_sign_in(flow, production, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    request = open_v2(flow, production)
    old = Signature("session", timezone.now() - timedelta(minutes=30))
    refused("reauth_required", services.approve, actor=act(flow["approver"]), request=request, signature=old)
    fresh = Signature("password", timezone.now())
    approval = services.approve(actor=act(flow["approver"]), request=request, signature=fresh)
    assert approval.auth_method == "password"
    event = AuditEvent.objects.get(action="deploy_request.approved", target_id=str(request.pk))
    assert event.data["auth_method"] == "password"


def test_canary_then_promotion_carries_the_canary_approvals(flow, production):
    from registry.selectors import resolve_lookup  # noqa: F401 - resolve's bucketing is tested in registry

    canary = open_v2(flow, production, canary_percent=20)
    services.approve(actor=act(flow["approver"]), request=canary)
    services.approve(actor=act(flow["approver2"]), request=canary)
    services.deploy(actor=act(flow["owner"]), request=canary)
    pointer = Deployment.objects.get(prompt=canary.prompt, environment=production)
    assert (pointer.version.number, pointer.canary_version.number, pointer.canary_percent) == (1, 2, 20)
    promote = open_v2(flow, production)
    promote.refresh_from_db()
    assert promote.status == DeployRequest.PENDING
    services.deploy(actor=act(flow["owner"]), request=promote)
    pointer.refresh_from_db()
    assert (pointer.version.number, pointer.canary_version) == (2, None)


def test_promotion_does_not_carry_approvals_once_the_canary_is_gone(flow, production):
    from registry.services import set_deployment

    canary = open_v2(flow, production, canary_percent=20)
    services.approve(actor=act(flow["approver"]), request=canary)
    services.approve(actor=act(flow["approver2"]), request=canary)
    services.deploy(actor=act(flow["owner"]), request=canary)
    set_deployment(actor=act(flow["owner"]), prompt=canary.prompt, environment=production, version=flow["v1"])
    promote = open_v2(flow, production)
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=promote)


def test_rollback_is_a_request_to_the_previous_live_version(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)
    rollback = services.open_rollback(
        actor=act(flow["owner"]), prompt=request.prompt, environment=production, rationale="complaints"
    )
    assert (rollback.kind, rollback.version.number, rollback.base_version.number) == ("rollback", 1, 2)
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=rollback)
    services.approve(actor=act(flow["approver"]), request=rollback)
    services.approve(actor=act(flow["approver2"]), request=rollback)
    services.deploy(actor=act(flow["owner"]), request=rollback)
    assert live_number(request.prompt, production) == 1


def test_break_glass_is_for_owners_with_a_reason_to_a_version_live_before_and_opens_a_review(flow, production):
    request = open_v2(flow, production)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)
    prompt = request.prompt
    kw = {"prompt": prompt, "environment": production}
    refused("break_glass_owners_only", services.break_glass_rollback, actor=act(flow["approver"]),
            version=flow["v1"], reason="customers get wrong amounts", **kw)
    refused("break_glass_owners_only", services.break_glass_rollback, actor=act(flow["admin"]),
            version=flow["v1"], reason="customers get wrong amounts", **kw)
    refused("reason_required", services.break_glass_rollback, actor=act(flow["owner"]), version=flow["v1"],
            reason="now", **kw)
    v3 = push(flow, prompt, "Never live {{ name }}")
    refused("not_previously_live", services.break_glass_rollback, actor=act(flow["owner"]), version=v3,
            reason="customers get wrong amounts", **kw)
    glass = services.break_glass_rollback(
        actor=act(flow["owner"]), version=flow["v1"], reason="customers get wrong amounts", **kw
    )
    assert live_number(prompt, production) == 1
    assert glass.break_glass and glass.review_status == DeployRequest.REVIEW_PENDING
    event = AuditEvent.objects.get(action="deploy_request.break_glass")
    assert event.data["flagged"] is True and event.data["reason"] == "customers get wrong amounts"
    refused("not_named_approver", services.sign_review, actor=act(flow["approver3"]), request=glass)
    services.sign_review(actor=act(flow["approver"]), request=glass, comment="agreed")
    glass.refresh_from_db()
    assert glass.review_status == DeployRequest.REVIEW_PENDING
    services.sign_review(actor=act(flow["approver2"]), request=glass)
    glass.refresh_from_db()
    assert glass.review_status == DeployRequest.REVIEW_SIGNED
    assert AuditEvent.objects.filter(action="deploy_request.review_completed").count() == 1


def test_lowering_a_tier_needs_the_approvals_of_the_current_tier(flow):
    prompt = flow["v2"].prompt
    refused("tier_lowering_needs_approval", update_prompt, actor=act(flow["owner"]), prompt=prompt, tier=2)
    refused("role_too_low", services.open_tier_change, actor=act(flow["author"]), prompt=prompt, target_tier=2,
            rationale="x")
    refused("not_a_lowering", services.open_tier_change, actor=act(flow["owner"]), prompt=prompt, target_tier=0,
            rationale="x")
    request = services.open_tier_change(
        actor=act(flow["owner"]), prompt=prompt, target_tier=2, rationale="no longer customer-facing"
    )
    refused("insufficient_approvals", services.deploy, actor=act(flow["owner"]), request=request)
    services.approve(actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    services.deploy(actor=act(flow["owner"]), request=request)
    prompt.refresh_from_db()
    assert prompt.tier == 2
    assert AuditEvent.objects.filter(action="prompt.tier_changed").count() == 1
    raised = update_prompt(actor=act(flow["owner"]), prompt=prompt, tier=1)
    assert raised.tier == 1


def test_named_approvers_must_be_team_approvers(flow):
    prompt = flow["v2"].prompt
    error = refused("not_eligible_approver", administration.set_named_approvers, actor=act(flow["owner"]),
                    prompt=prompt, approvers=["author", "approver"])
    assert "author" in error.field_errors["approvers"][0]
    refused("role_too_low", administration.set_named_approvers, actor=act(flow["approver"]), prompt=prompt,
            approvers=["approver"])


def test_an_approver_group_names_its_members(flow, production):
    owner = act(flow["owner"])
    administration.save_approver_group(actor=owner, team=flow["team"], slug="letters", name="Letters",
                                       members=["approver3", "approver2"])
    administration.set_named_approvers(actor=owner, prompt=flow["v2"].prompt, approvers=[],
                                       approver_groups=["letters"])
    request = open_v2(flow, production)
    refused("not_named_approver", services.approve, actor=act(flow["approver"]), request=request)
    services.approve(actor=act(flow["approver3"]), request=request)
    services.approve(actor=act(flow["approver2"]), request=request)
    services.deploy(actor=owner, request=request)


def test_withdrawing_a_request_is_for_its_requester_or_an_owner(flow, production):
    request = open_v2(flow, production, by="author")
    refused("role_too_low", services.withdraw_request, actor=act(flow["approver"]), request=request)
    services.withdraw_request(actor=act(flow["author"]), request=request)
    request.refresh_from_db()
    assert request.status == DeployRequest.WITHDRAWN
    refused("stale_request", services.withdraw_request, actor=act(flow["author"]), request=request)


def test_a_signature_names_one_of_the_known_methods():
    with pytest.raises(ValueError, match="unknown signature method"):
        Signature("trust-me", timezone.now())


def test_reading_the_policies_writes_nothing(flow, api_for):
    """A migration seeds the four policies; reading them (the API, the checklist) never creates one:
    with a row gone the defaults are shown, unsaved, until an admin edits that tier."""
    TierPolicy.objects.filter(tier=2).delete()
    listed = api_for("viewer").get("/api/v1/tier-policies/")
    assert listed.status_code == 200
    assert [p["tier"] for p in listed.json()] == [0, 1, 2, 3]
    assert listed.json()[2]["requires_gate"] is True
    assert api_for("viewer").get("/api/v1/tier-policies/2/").status_code == 200
    assert not TierPolicy.objects.filter(tier=2).exists()
    administration.update_policy(actor=act(flow["admin"]), tier=2, requires_gate=False, reason="test")
    assert TierPolicy.objects.get(tier=2).requires_gate is False
