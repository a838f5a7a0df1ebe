"""Segregation of duties after the approval: eligibility (named, active, still a member, still an
approver) is checked again when deploying, so an approval stops counting the moment its giver
stops being eligible; an approval binds to what it saw (tier and policy version included); a
rejection stands until the person who made it withdraws it; who authored what a request puts
live; and who is waiting to decide, request by request and person by person."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals import administration, requirements, selectors, services
from approvals.models import Approval, DeployRequest
from registry.models import Environment, Membership
from registry.services import add_member, remove_member, set_deployment, set_user_flags, update_prompt
from tests.factories import PromptFactory

from .conftest import act, push
from .steps import approve_by, deploy, name_approvers, open_for, open_v2, refused, usernames

# -- eligibility is checked again at deploy ------------------------------------------------------


def test_an_approver_demoted_to_author_after_approving_no_longer_counts_at_deploy(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    add_member(actor=act(flow["owner"]), team=flow["team"], username="approver2", role=Membership.AUTHOR)
    error = refused("insufficient_approvals", deploy, flow, request)
    assert error.detail == "1 of 2 (approver)"
    add_member(actor=act(flow["owner"]), team=flow["team"], username="approver2", role=Membership.APPROVER)
    assert deploy(flow, request).status == DeployRequest.DEPLOYED  # the bound approval counts again


def test_a_deactivated_approvers_approval_no_longer_counts_at_deploy(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    set_user_flags(actor=act(flow["admin"]), username="approver2", is_active=False)
    assert usernames(a.user_id for a in requirements.counted_approvals(request)) == {"approver"}
    refused("insufficient_approvals", deploy, flow, request)
    set_user_flags(actor=act(flow["admin"]), username="approver2", is_active=True)
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


def test_an_approver_removed_from_the_team_after_approving_no_longer_counts(flow, production):
    name_approvers(flow, "approver", "approver2", "approver3")
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    remove_member(actor=act(flow["owner"]), team=flow["team"], username="approver2")
    refused("insufficient_approvals", deploy, flow, request)
    approve_by(flow, request, "approver3")
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


def test_a_member_taken_out_of_an_approver_group_stops_counting_for_its_prompts(flow, production):
    owner = act(flow["owner"])
    administration.save_approver_group(actor=owner, team=flow["team"], slug="letters", name="Letters",
                                       members=["approver2", "approver3"])
    name_approvers(flow, groups=["letters"])
    request = open_v2(flow, production)
    approve_by(flow, request, "approver2", "approver3")
    administration.save_approver_group(actor=owner, team=flow["team"], slug="letters", name="Letters",
                                       members=["approver3", "approver"])
    error = refused("insufficient_approvals", deploy, flow, request)
    assert error.detail == "1 of 2 (approver3)"
    approve_by(flow, request, "approver")
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


def test_an_approver_named_after_opening_may_decide_and_one_unnamed_before_deploying_stops_counting(flow, production):
    request = open_v2(flow, production)
    refused("not_named_approver", services.approve, actor=act(flow["approver3"]), request=request)
    name_approvers(flow, "approver", "approver3")
    approve_by(flow, request, "approver3", "approver")
    name_approvers(flow, "approver")
    refused("insufficient_approvals", deploy, flow, request)


# -- an approval binds to the tier and the policy version ----------------------------------------


def test_an_approval_records_what_it_binds_to(flow, production):
    request = open_v2(flow, production)
    approval = services.approve(actor=act(flow["approver"]), request=request)
    bound = {field: getattr(approval, field) for field in requirements.binding(request)}
    assert bound == {
        "content_hash": flow["v2"].content_hash, "environment": "production", "model_key": "offline:offline-echo-1",
        "tier": 0, "policy_version": 1,
    }
    assert requirements.binding(request) == bound


def test_raising_the_tier_leaves_approvals_given_under_the_lower_tier_unmatched(flow, production):
    prompt = flow["v2"].prompt
    prompt.tier = 1
    prompt.save()
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")  # tier 1 asks for one; both named under tier 0
    update_prompt(actor=act(flow["owner"]), prompt=prompt, tier=0)
    error = refused("insufficient_approvals", deploy, flow, request)
    assert error.detail.startswith("0 of 2")
    for name in ("approver", "approver2"):
        services.withdraw_decision(actor=act(flow[name]), request=request)
    approve_by(flow, request, "approver", "approver2")
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


def test_an_approval_under_an_older_policy_counts_again_only_once_withdrawn_and_given_again(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    administration.update_policy(actor=act(flow["admin"]), tier=0, reauth_for_approval=False, reason="test")
    refused("already_approved", services.approve, actor=act(flow["approver"]), request=request)
    for name in ("approver", "approver2"):
        services.withdraw_decision(actor=act(flow[name]), request=request)
        services.approve(actor=act(flow[name]), request=request)
    rows = Approval.objects.filter(request=request).values_list("policy_version", "withdrawn_at")
    assert sorted((version, withdrawn is None) for version, withdrawn in rows) == [
        (1, False), (1, False), (2, True), (2, True)
    ]
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


# -- a rejection stands until the person who made it withdraws it --------------------------------


def test_a_rejection_by_someone_since_demoted_blocks_until_they_withdraw_it(flow, production):
    name_approvers(flow, "approver", "approver2", "approver3")
    request = open_v2(flow, production)
    services.reject(actor=act(flow["approver2"]), request=request, comment="wrong tone")
    approve_by(flow, request, "approver", "approver3")
    add_member(actor=act(flow["owner"]), team=flow["team"], username="approver2", role=Membership.AUTHOR)
    error = refused("rejected", deploy, flow, request)
    assert error.status == 409 and "approver2" in error.detail
    refused("no_decision", services.withdraw_decision, actor=act(flow["owner"]), request=request)
    services.withdraw_decision(actor=act(flow["approver2"]), request=request)
    assert deploy(flow, request).status == DeployRequest.DEPLOYED


def test_a_rejection_by_someone_since_deactivated_is_left_behind_only_by_a_new_request(flow, production):
    name_approvers(flow, "approver", "approver2", "approver3")
    request = open_v2(flow, production)
    services.reject(actor=act(flow["approver2"]), request=request, comment="wrong tone")
    approve_by(flow, request, "approver", "approver3")
    set_user_flags(actor=act(flow["admin"]), username="approver2", is_active=False)
    refused("rejected", deploy, flow, request)
    again = open_v2(flow, production)
    request.refresh_from_db()
    assert request.status == DeployRequest.SUPERSEDED
    assert requirements.live_rejections(again) == []
    assert requirements.counted_approvals(again) == []  # decisions belong to the request they were made on
    approve_by(flow, again, "approver", "approver3")
    assert deploy(flow, again).status == DeployRequest.DEPLOYED


# -- who authored what a request puts live --------------------------------------------------------


def test_with_nothing_live_the_authors_of_every_earlier_version_are_authors_of_the_request(flow, production):
    name_approvers(flow, "approver", "approver2", "approver3")
    prompt = flow["v2"].prompt
    v3 = push(flow, prompt, "Hello {{ name }}, from approver3.", author="approver3")
    set_deployment(actor=act(flow["owner"]), prompt=prompt, environment=production, version=v3)
    v4 = push(flow, prompt, "Hello {{ name }}, from author.")
    staging = Environment.objects.get(slug="staging")
    over_v3 = open_for(flow, v4, production)
    from_nothing = open_for(flow, v4, staging)
    assert usernames(requirements.author_ids(over_v3)) == {"author"}
    assert usernames(requirements.author_ids(from_nothing)) == {"author", "approver3"}
    services.approve(actor=act(flow["approver3"]), request=over_v3)
    refused("author_cannot_approve", services.approve, actor=act(flow["approver3"]), request=from_nothing)


def test_going_back_to_an_older_version_makes_only_its_author_an_author(flow, production):
    name_approvers(flow, "approver", "approver2", "approver3")
    prompt = flow["v2"].prompt
    v3 = push(flow, prompt, "Hello {{ name }}, from approver3.", author="approver3")
    set_deployment(actor=act(flow["owner"]), prompt=prompt, environment=production, version=v3)
    back = open_v2(flow, production)
    assert (back.base_version.number, back.version.number) == (3, 2)
    assert usernames(requirements.author_ids(back)) == {"author"}
    services.approve(actor=act(flow["approver3"]), request=back)
    refused("author_cannot_approve", services.approve, actor=act(flow["author"]), request=back)


# -- who is waiting to decide ---------------------------------------------------------------------


def test_waiting_for_a_tier_0_request_is_its_named_approvers_who_have_not_decided(flow, production):
    request = open_v2(flow, production)
    assert usernames(requirements.waiting_for(request)) == {"approver", "approver2"}
    services.approve(actor=act(flow["approver"]), request=request)
    assert usernames(requirements.waiting_for(request)) == {"approver2"}
    services.reject(actor=act(flow["approver2"]), request=request, comment="wrong tone")
    assert requirements.waiting_for(request) == set()
    services.withdraw_decision(actor=act(flow["approver2"]), request=request)
    assert usernames(requirements.waiting_for(request)) == {"approver2"}
    set_user_flags(actor=act(flow["admin"]), username="approver2", is_active=False)
    assert requirements.waiting_for(request) == set()


def test_waiting_for_a_tier_1_request_is_every_team_approver_but_its_authors_and_requester(flow, production):
    prompt = flow["v2"].prompt
    prompt.tier = 1
    prompt.save()
    request = open_v2(flow, production, by="approver3")
    assert usernames(requirements.waiting_for(request)) == {"owner", "approver", "approver2"}
    services.withdraw_request(actor=act(flow["approver3"]), request=request)
    request.refresh_from_db()
    assert requirements.waiting_for(request) == set()


def test_the_inbox_and_waiting_for_agree_on_everyone_in_the_cast(flow, production):
    staging = Environment.objects.get(slug="staging")
    tier_0 = open_v2(flow, production)
    services.reject(actor=act(flow["approver2"]), request=tier_0, comment="wrong tone")
    welcome = PromptFactory(slug="welcome-note", team=flow["team"], owner=flow["owner"], tier=1)
    tier_1 = open_for(flow, push(flow, welcome, "Welcome, {{ name }}."), staging, by="approver")
    people = ["owner", "approver", "approver2", "approver3", "author", "viewer", "outsider", "admin", "compliance"]
    for request in (tier_0, tier_1):
        waiting = usernames(requirements.waiting_for(request))
        inboxes = {name for name in people if request in selectors.waiting_for(flow[name])}
        assert inboxes == waiting, request
    assert usernames(requirements.waiting_for(tier_0)) == {"approver"}
    assert usernames(requirements.waiting_for(tier_1)) == {"owner", "approver2", "approver3"}


def test_the_inbox_leaves_out_what_a_person_cannot_decide(flow, production):
    name_approvers(flow, "approver", "approver2", "approver3")
    staging = Environment.objects.get(slug="staging")
    prompt = flow["v2"].prompt
    v3 = push(flow, prompt, "Hello {{ name }}, from approver3.", author="approver3")
    theirs = open_for(flow, v3, staging)
    other = open_v2(flow, production)
    assert selectors.waiting_for(flow["approver3"]) == [other]  # not the request for what they wrote
    assert selectors.waiting_for(flow["approver"]) == [theirs, other]
    assert selectors.waiting_for(flow["owner"]) == []  # the requester of both
    assert selectors.waiting_for(flow["outsider"]) == [] and selectors.waiting_for(flow["author"]) == []
    approve_by(flow, other, "approver")
    assert selectors.waiting_for(flow["approver"]) == [theirs]
    services.withdraw_request(actor=act(flow["owner"]), request=theirs)
    assert selectors.waiting_for(flow["approver"]) == []
    set_user_flags(actor=act(flow["admin"]), username="approver2", is_active=False)
    assert selectors.waiting_for(flow["approver2"]) == []


def test_the_inbox_is_not_cut_short_by_older_requests_the_person_cannot_decide(flow, production):
    """approver3 is no named approver of the Tier-0 'loan-letter', so its three requests are not
    theirs to decide; the newer Tier-1 request is, and must be in their inbox whatever the limit.
    (``selectors.waiting_for`` fetches ``limit * 2`` candidates before asking who may decide, so
    more undecidable requests than that hide every decidable one behind them.)"""
    for slug in ("development", "staging", "production"):
        open_v2(flow, Environment.objects.get(slug=slug))
    welcome = PromptFactory(slug="welcome-note", team=flow["team"], owner=flow["owner"], tier=1)
    decidable = open_for(flow, push(flow, welcome, "Welcome, {{ name }}."), production)
    assert selectors.waiting_for(flow["approver3"]) == [decidable]
    assert selectors.waiting_for(flow["approver3"], limit=1) == [decidable]


def test_the_inbox_asks_the_same_number_of_queries_for_one_request_or_many(flow, production):
    def queries_for_inbox():
        with CaptureQueriesContext(connection) as captured:
            selectors.waiting_for(flow["approver"])
        return len(captured)

    open_v2(flow, production)
    one = queries_for_inbox()
    for slug in ("development", "staging"):
        open_v2(flow, Environment.objects.get(slug=slug))
    assert len(selectors.waiting_for(flow["approver"])) == 3
    assert queries_for_inbox() == one
