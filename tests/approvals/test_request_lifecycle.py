"""A request's life after it is opened: decisions withdrawn and given again, what a newer request
supersedes, tier changes under the current tier's policy, canaries and the approvals a promotion
carries, break-glass reviews and who may sign them, and when a browser session must re-authenticate."""

from datetime import timedelta

from django.utils import timezone

from approvals import administration, requirements, selectors, services
from approvals.models import Approval, DeployRequest
from approvals.services import Signature
from audit.models import AuditEvent
from registry.models import Deployment, Environment, Membership
from registry.services import add_member, set_deployment, update_prompt

from .conftest import act
from .steps import approve_by, deploy, name_approvers, open_v2, refused, usernames


def set_tier(flow, tier):
    prompt = flow["v2"].prompt
    prompt.tier = tier
    prompt.save()
    return prompt


# -- decisions withdrawn and given again ----------------------------------------------------------


def test_a_withdrawn_approval_can_be_given_again_and_counts_once(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    request.refresh_from_db()
    assert request.status == DeployRequest.APPROVED and request.decided_at is not None
    services.withdraw_decision(actor=act(flow["approver"]), request=request)
    request.refresh_from_db()
    assert (request.status, request.decided_at) == (DeployRequest.PENDING, None)
    refused("insufficient_approvals", deploy, flow, request)
    services.approve(actor=act(flow["approver"]), request=request, comment="read it again")
    assert usernames(a.user_id for a in requirements.counted_approvals(request)) == {"approver", "approver2"}
    assert Approval.objects.filter(request=request, user=flow["approver"]).count() == 2
    assert Approval.objects.filter(request=request, user=flow["approver"], withdrawn_at__isnull=True).count() == 1
    assert AuditEvent.objects.filter(action="deploy_request.decision_withdrawn", target_id=str(request.pk)).count() == 1
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


def test_a_withdrawn_approval_can_become_a_rejection_and_that_one_withdrawn_too(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    refused("already_approved", services.reject, actor=act(flow["approver"]), request=request, comment="no")
    services.withdraw_decision(actor=act(flow["approver"]), request=request)
    services.reject(actor=act(flow["approver"]), request=request, comment="on second thought, wrong tone")
    request.refresh_from_db()
    assert request.status == DeployRequest.REJECTED
    services.withdraw_decision(actor=act(flow["approver"]), request=request)
    request.refresh_from_db()
    assert request.status == DeployRequest.PENDING
    refused("no_decision", services.withdraw_decision, actor=act(flow["approver"]), request=request)


def test_decisions_stay_once_the_request_is_deployed(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    deploy(flow, request)
    refused("stale_request", services.withdraw_decision, actor=act(flow["approver"]), request=request)
    refused("stale_request", services.reject, actor=act(flow["approver3"]), request=request, comment="late")
    assert Approval.objects.filter(request=request, withdrawn_at__isnull=True).count() == 2


# -- what a newer request supersedes --------------------------------------------------------------


def test_a_newer_request_supersedes_only_its_own_environment_and_kind(flow, production):
    staging = Environment.objects.get(slug="staging")
    in_production = open_v2(flow, production)
    in_staging = open_v2(flow, staging)
    lowering = services.open_tier_change(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, target_tier=1, rationale="internal use only"
    )
    newer = open_v2(flow, production, by="author")
    statuses = {r.pk: r.status for r in DeployRequest.objects.all()}
    assert statuses == {
        in_production.pk: DeployRequest.SUPERSEDED, in_staging.pk: DeployRequest.PENDING,
        lowering.pk: DeployRequest.PENDING, newer.pk: DeployRequest.PENDING,
    }
    event = AuditEvent.objects.get(action="deploy_request.superseded")
    assert (event.target_id, event.data["superseded_by"]) == (str(in_production.pk), newer.pk)
    lower_again = services.open_tier_change(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, target_tier=2, rationale="internal use only"
    )
    lowering.refresh_from_db()
    assert lowering.status == DeployRequest.SUPERSEDED and lowering.superseded_by_id == lower_again.pk
    assert DeployRequest.objects.get(pk=newer.pk).status == DeployRequest.PENDING


# -- tier changes need the approvals of the tier in force -----------------------------------------


def test_lowering_a_tier_1_prompt_needs_one_approval_by_any_team_approver(flow):
    prompt = set_tier(flow, 1)
    request = services.open_tier_change(actor=act(flow["owner"]), prompt=prompt, target_tier=3, rationale="demo only")
    refused("self_approval", services.approve, actor=act(flow["owner"]), request=request)
    refused("not_eligible_approver", services.approve, actor=act(flow["author"]), request=request)
    refused("insufficient_approvals", deploy, flow, request)
    services.approve(actor=act(flow["approver3"]), request=request)  # not named: tier 1 does not ask for it
    deploy(flow, request)
    prompt.refresh_from_db()
    assert prompt.tier == 3


def test_lowering_a_tier_2_prompt_applies_at_once(flow):
    prompt = set_tier(flow, 2)
    request = services.open_tier_change(actor=act(flow["owner"]), prompt=prompt, target_tier=3, rationale="demo only")
    assert request.status == DeployRequest.DEPLOYED
    prompt.refresh_from_db()
    assert prompt.tier == 3
    event = AuditEvent.objects.get(action="prompt.tier_changed")
    assert (event.actor_username, event.data["tier_before"], event.data["tier_after"]) == ("owner", 2, 3)


def test_a_tier_change_approved_under_tier_1_needs_tier_0_approvals_once_the_tier_is_raised(flow):
    prompt = set_tier(flow, 1)
    request = services.open_tier_change(actor=act(flow["owner"]), prompt=prompt, target_tier=2, rationale="internal")
    approve_by(flow, request, "approver", "approver2")  # both named, so only the tier they saw differs
    update_prompt(actor=act(flow["owner"]), prompt=prompt, tier=0)
    error = refused("insufficient_approvals", deploy, flow, request)
    assert error.detail.startswith("0 of 2")
    prompt.refresh_from_db()
    assert prompt.tier == 0


# -- canaries and the approvals a promotion carries -----------------------------------------------


def deployed_canary(flow, production):
    canary = open_v2(flow, production, canary_percent=20)
    approve_by(flow, canary, "approver", "approver2")
    deploy(flow, canary)
    return canary


def test_a_canary_request_binds_its_approvals_to_its_version_and_environment_and_keeps_what_is_live(flow, production):
    canary = deployed_canary(flow, production)
    bound = set(Approval.objects.filter(request=canary).values_list("content_hash", "environment", "model_key"))
    assert bound == {(flow["v2"].content_hash, "production", "offline:offline-echo-1")}
    assert canary.base_version == flow["v1"]
    pointer = Deployment.objects.get(prompt=canary.prompt, environment=production)
    assert (pointer.version, pointer.canary_version, pointer.canary_percent) == (flow["v1"], flow["v2"], 20)


def test_a_canary_needs_a_version_live_beside_it(flow):
    staging = Environment.objects.get(slug="staging")
    refused("canary_needs_live_version", open_v2, flow, staging, canary_percent=10)
    assert not DeployRequest.objects.exists()


def test_a_promotion_counts_canary_approvals_only_from_people_still_eligible(flow, production):
    deployed_canary(flow, production)
    add_member(actor=act(flow["owner"]), team=flow["team"], username="approver2", role=Membership.AUTHOR)
    promote = open_v2(flow, production)
    error = refused("insufficient_approvals", deploy, flow, promote)
    assert error.detail == "1 of 2 (approver)"


def test_a_promotion_does_not_carry_canary_approvals_given_under_an_older_policy(flow, production):
    deployed_canary(flow, production)
    administration.update_policy(actor=act(flow["admin"]), tier=0, reauth_for_approval=False, reason="test")
    promote = open_v2(flow, production)
    assert requirements.counted_approvals(promote) == []
    refused("insufficient_approvals", deploy, flow, promote)


def test_a_canary_approver_who_asks_for_the_promotion_does_not_count_for_it(flow, production):
    deployed_canary(flow, production)
    promote = open_v2(flow, production, by="approver")
    assert usernames(a.user_id for a in requirements.counted_approvals(promote)) == {"approver2"}
    refused("insufficient_approvals", deploy, flow, promote)


# -- break-glass reviews --------------------------------------------------------------------------


def broken_glass(flow, production, by="owner"):
    """v2 went live after v1; ``by`` breaks the glass back to v1."""
    set_deployment(actor=act(flow["owner"]), prompt=flow["v2"].prompt, environment=production, version=flow["v2"])
    return services.break_glass_rollback(
        actor=act(flow[by]), prompt=flow["v2"].prompt, environment=production, version=flow["v1"],
        reason="customers get wrong amounts",
    )


def test_who_broke_the_glass_cannot_sign_its_review_even_when_named(flow, production):
    name_approvers(flow, "owner", "approver", "approver2")
    glass = broken_glass(flow, production)
    assert glass.requested_by == flow["owner"] and glass.deployed_by == flow["owner"]
    refused("self_approval", services.sign_review, actor=act(flow["owner"]), request=glass)
    refused("not_named_approver", services.sign_review, actor=act(flow["approver3"]), request=glass)
    assert selectors.reviews_waiting_for(flow["owner"]) == []
    assert selectors.reviews_waiting_for(flow["approver3"]) == []
    assert selectors.reviews_waiting_for(flow["approver"]) == [glass]
    services.sign_review(actor=act(flow["approver"]), request=glass)
    assert selectors.reviews_waiting_for(flow["approver"]) == []
    assert selectors.reviews_waiting_for(flow["approver2"]) == [glass]


def test_a_review_is_signed_once_per_person_cannot_be_withdrawn_and_closes_when_complete(flow, production):
    glass = broken_glass(flow, production)
    services.sign_review(actor=act(flow["approver"]), request=glass)
    refused("already_signed", services.sign_review, actor=act(flow["approver"]), request=glass)
    refused("no_decision", services.withdraw_decision, actor=act(flow["approver"]), request=glass)
    services.sign_review(actor=act(flow["approver2"]), request=glass)
    glass.refresh_from_db()
    assert glass.review_status == DeployRequest.REVIEW_SIGNED
    name_approvers(flow, "approver", "approver2", "approver3")
    refused("no_review_pending", services.sign_review, actor=act(flow["approver3"]), request=glass)
    refused("stale_request", services.approve, actor=act(flow["approver3"]), request=glass)


def test_an_ordinary_deploy_has_no_review_to_sign(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    deploy(flow, request)
    refused("no_review_pending", services.sign_review, actor=act(flow["approver3"]), request=request)


def test_a_tier_1_break_glass_review_needs_one_team_approver(flow, production):
    set_tier(flow, 1)
    glass = broken_glass(flow, production)
    refused("author_cannot_approve", services.sign_review, actor=act(flow["author"]), request=glass)  # wrote v1
    refused("not_eligible_approver", services.sign_review, actor=act(flow["viewer"]), request=glass)
    services.sign_review(actor=act(flow["approver3"]), request=glass)
    glass.refresh_from_db()
    assert glass.review_status == DeployRequest.REVIEW_SIGNED
    assert AuditEvent.objects.filter(action="deploy_request.review_completed", target_id=str(glass.pk)).count() == 1


# -- re-authentication ----------------------------------------------------------------------------


def test_a_stale_session_may_reject_a_tier_0_request_but_not_approve_it_or_sign_a_review(flow, production, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    stale = Signature("session", timezone.now() - timedelta(minutes=30))
    request = open_v2(flow, production)
    refused("reauth_required", services.approve, actor=act(flow["approver"]), request=request, signature=stale)
    rejection = services.reject(actor=act(flow["approver"]), request=request, comment="wrong tone", signature=stale)
    assert (rejection.auth_method, rejection.authenticated_at) == ("session", stale.at)
    services.withdraw_request(actor=act(flow["owner"]), request=request)
    glass = broken_glass(flow, production)
    refused("reauth_required", services.sign_review, actor=act(flow["approver2"]), request=glass, signature=stale)
    token = Signature("api_token", timezone.now() - timedelta(minutes=30))
    assert services.sign_review(actor=act(flow["approver2"]), request=glass, signature=token).auth_method == "api_token"


def test_only_tier_0_asks_a_stale_session_for_the_password_again(flow, production, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    set_tier(flow, 1)
    stale = Signature("session", timezone.now() - timedelta(minutes=30))
    request = open_v2(flow, production)
    assert services.approve(actor=act(flow["approver3"]), request=request, signature=stale).auth_method == "session"
