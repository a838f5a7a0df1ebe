"""The review page, finished (issue 17): who can still approve, by name, from the approve
service's own rule; the navigation's pending count; a deploy that asks first, naming version and
environment; labels that follow the deploy; one password signature good for a few minutes; a
policy edit that says why; no form offered to a role that cannot submit it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import administration, browser_signing, selectors, services
from approvals.models import Approval, DeployRequest, TierPolicy
from audit.models import AuditEvent
from core import session_auth
from core.errors import ValidationFailed
from registry.models import Deployment

from .conftest import act


def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def dr(flow, production):
    return services.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="friendlier letter",
    )


def names(users):
    return [u.get_username() for u in users]


# --- who can still approve ------------------------------------------------------------------------
def test_who_can_still_sign_names_the_named_approvers_who_have_not_decided(flow, dr):
    assert names(selectors.who_can_still_sign(dr)) == ["approver", "approver2"]
    services.approve(actor=act(flow["approver"]), request=dr)
    assert names(selectors.who_can_still_sign(dr)) == ["approver2"]
    services.reject(actor=act(flow["approver2"]), request=dr, comment="not yet")
    assert selectors.who_can_still_sign(dr) == []


def test_who_can_still_sign_follows_the_services_rule_for_authors_and_requesters(flow, production):
    """The author of v2 is made a named approver: the approve service refuses them, so the page
    does not offer them either."""
    administration.set_named_approvers(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, approvers=["approver", "approver2", "owner"]
    )
    request = services.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="owner asks",
    )
    assert "owner" not in names(selectors.who_can_still_sign(request))  # the requester
    with pytest.raises(Exception) as refused:
        services.approve(actor=act(flow["owner"]), request=request)
    assert refused.value.code == "self_approval"


def test_nobody_can_still_sign_a_closed_request(flow, dr):
    services.withdraw_request(actor=act(flow["owner"]), request=dr)
    dr.refresh_from_db()
    assert selectors.who_can_still_sign(dr) == []


def test_the_request_page_names_who_can_still_approve(flow, dr):
    html = browser(flow["viewer"]).get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert "Can still approve:" in html and "approver2" in html
    services.approve(actor=act(flow["approver"]), request=dr)
    services.approve(actor=act(flow["approver2"]), request=dr)
    html = browser(flow["viewer"]).get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert "Nobody else can approve this request now." in html


# --- the pending count ----------------------------------------------------------------------------
def test_the_pending_count_is_what_the_person_could_approve_now(flow, dr):
    assert selectors.pending_count(flow["approver"]) == 1
    assert selectors.pending_count(flow["approver3"]) == 0  # a team approver, but not named on a tier-0 prompt
    assert selectors.pending_count(flow["author"]) == 0
    services.approve(actor=act(flow["approver"]), request=dr)
    assert selectors.pending_count(flow["approver"]) == 0
    assert selectors.pending_count(flow["approver2"]) == 1


def test_the_pending_count_of_someone_who_approves_for_no_team_is_one_query(flow, dr):
    with CaptureQueriesContext(connection) as queries:
        assert selectors.pending_count(flow["viewer"]) == 0
    assert len(queries) == 1


def test_only_people_who_can_act_fetch_the_navigation_counts(flow, dr):
    approver = browser(flow["approver"])
    assert 'hx-get="/approvals/pending-count/"' in approver.get("/").content.decode()
    fragment = approver.get("/approvals/pending-count/").content.decode()
    assert 'id="approvals-pending-count"' in fragment and ">1<" in fragment
    viewer_page = browser(flow["viewer"]).get("/").content.decode()
    assert "pending-count" not in viewer_page and "due-count" not in viewer_page
    assert browser(flow["viewer"]).get("/approvals/pending-count/").content.strip() == b""
    assert 'hx-get="/models/due-count/"' in browser(flow["admin"]).get("/").content.decode()


# --- deploy asks first; labels follow it ------------------------------------------------------------
def approved(flow, dr):
    services.approve(actor=act(flow["approver"]), request=dr)
    services.approve(actor=act(flow["approver2"]), request=dr)
    return dr


def test_a_deploy_asks_first_naming_version_and_environment_without_javascript(flow, dr):
    approved(flow, dr)
    owner = browser(flow["owner"])
    page = owner.get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert f'href="/approvals/requests/{dr.pk}/?confirm=deploy#confirm-deploy"' in page
    asked = owner.get(f"/approvals/requests/{dr.pk}/?confirm=deploy").content.decode()
    assert "Deploy v2 to Production?" in asked and "serves v1 now" in asked
    assert 'name="confirmed" value="yes"' in asked and "Deploy v2 to Production</button>" in asked
    unconfirmed = owner.post(f"/approvals/requests/{dr.pk}/deploy")
    assert unconfirmed.status_code == 200 and "Deploy v2 to Production?" in unconfirmed.content.decode()
    dr.refresh_from_db()
    assert dr.status != DeployRequest.DEPLOYED
    assert owner.post(f"/approvals/requests/{dr.pk}/deploy", {"confirmed": "yes"}).status_code == 302
    dr.refresh_from_db()
    assert dr.status == DeployRequest.DEPLOYED


def test_a_viewer_is_never_shown_the_confirmation(flow, dr):
    approved(flow, dr)
    html = browser(flow["viewer"]).get(f"/approvals/requests/{dr.pk}/?confirm=deploy").content.decode()
    assert "confirm-deploy-button" not in html and 'id="deploy-button"' not in html


def test_labels_follow_the_deploy(flow, dr):
    viewer = browser(flow["viewer"])
    before = viewer.get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert "Diff: v1 (live) → v2</h2>" in before
    services.deploy(actor=act(flow["owner"]), request=approved(flow, dr))
    after = viewer.get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert "Diff: v1 (was live) → v2 (live)" in after
    assert "v2 <span class=\"muted\">(this request's version)</span>" in after
    assert Deployment.objects.get(prompt=dr.prompt, environment=dr.environment).version == flow["v2"]


def test_decisions_are_worded_plainly(flow, dr, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    services.approve(actor=act(flow["approver"]), request=dr)
    html = browser(flow["approver"]).get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert "Withdraw my approval" in html and "You approved this request." in html
    assert "signature: signed in at" in html and "signed by session" not in html


# --- one password signature for a few minutes ---------------------------------------------------------
def age_session(client, *, minutes):
    session = client.session
    session_auth.stamp(session, timezone.now() - timedelta(minutes=minutes))
    session.save()


def age_password_signature(client, *, minutes):
    session = client.session
    session[browser_signing.SIGNED_AT_KEY] = (timezone.now() - timedelta(minutes=minutes)).isoformat()
    session.save()


@pytest.fixture
def two_requests(flow, production, dr):
    """``dr`` and a second open tier-0 request the approver can decide on (another prompt)."""
    from registry.models import Prompt

    from .conftest import push, run_suite

    other = Prompt.objects.create(
        slug="refund-letter", name="Refund letter", team=flow["team"], owner=flow["owner"], tier=0,
    )
    administration.set_named_approvers(actor=act(flow["owner"]), prompt=other, approvers=["approver", "approver2"])
    from evals.gates import set_gate

    set_gate(actor=act(flow["owner"]), prompt=other, suites=[{"suite": "core", "min_pass_rate": 0.9}],
             max_regression=0.1)
    v1 = push(flow, other, "Hello {{ name }}.")
    run_suite(flow, other, v1)
    second = services.open_request(
        actor=act(flow["owner"]), prompt=other, version=v1, environment=production, rationale="first refund letter",
    )
    return dr, second


def test_a_password_signature_signs_the_next_decision_within_the_window(flow, two_requests, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 60
    settings.PROMPTLEDGER_SIGNATURE_WINDOW = 300
    first, second = two_requests
    approver = flow["approver"]
    approver.set_password("correct horse")
    approver.save()
    client = browser(approver)
    age_session(client, minutes=30)
    assert client.post(f"/approvals/requests/{first.pk}/approve", {"password": "correct horse"}).status_code == 302
    signed = Approval.objects.get(request=first, user=approver)
    assert signed.auth_method == "password"
    # Two minutes later (older than the sign-in age, within the window): no password asked.
    age_password_signature(client, minutes=2)
    assert 'name="password"' not in client.get(f"/approvals/requests/{second.pk}/").content.decode()
    assert client.post(f"/approvals/requests/{second.pk}/approve", {"comment": "fine"}).status_code == 302
    again = Approval.objects.get(request=second, user=approver)
    # Recorded as what it is: the password signature, at the time the password was typed.
    assert again.auth_method == "password"
    assert timedelta(minutes=1) < timezone.now() - again.authenticated_at < timedelta(minutes=3)
    event = AuditEvent.objects.filter(action="deploy_request.approved", target_id=str(second.pk)).get()
    assert event.data["auth_method"] == "password"


def test_the_password_is_asked_again_after_the_window(flow, two_requests, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 60
    settings.PROMPTLEDGER_SIGNATURE_WINDOW = 300
    first, second = two_requests
    approver = flow["approver"]
    approver.set_password("correct horse")
    approver.save()
    client = browser(approver)
    age_session(client, minutes=30)
    assert client.post(f"/approvals/requests/{first.pk}/approve", {"password": "correct horse"}).status_code == 302
    age_password_signature(client, minutes=6)
    assert 'name="password"' in client.get(f"/approvals/requests/{second.pk}/").content.decode()
    refused = client.post(f"/approvals/requests/{second.pk}/approve", {"comment": "fine"})
    assert refused.status_code == 403 and "reauth_required" in refused.content.decode()
    assert not Approval.objects.filter(request=second, user=approver).exists()


def test_the_service_refuses_a_password_signature_older_than_the_window(flow, dr, settings):
    from approvals.services import Signature

    settings.PROMPTLEDGER_SIGNATURE_WINDOW = 300
    stale = Signature("password", timezone.now() - timedelta(minutes=6))
    with pytest.raises(Exception) as refused:
        services.approve(actor=act(flow["approver"]), request=dr, signature=stale)
    assert refused.value.code == "reauth_required"


# --- tidy: a policy edit says why; no form a role cannot submit -----------------------------------------
def test_a_policy_edit_needs_a_reason(flow):
    with pytest.raises(ValidationFailed) as refused:
        administration.update_policy(actor=act(flow["admin"]), tier=1, required_approvals=2, reason="  ")
    assert refused.value.field_errors == {"reason": ["this field is required"]}
    assert TierPolicy.objects.get(tier=1).version == 1
    administration.update_policy(actor=act(flow["admin"]), tier=1, required_approvals=2, reason="two eyes")
    event = AuditEvent.objects.get(action="tier_policy.updated")
    assert event.data["reason"] == "two eyes"


def test_the_policies_page_refuses_an_edit_without_a_reason(flow):
    answer = browser(flow["admin"]).post("/approvals/policies/", {
        "tier": 1, "tier1-required_approvals": 2, "tier1-allowed_model_statuses": ["approved"],
    })
    assert answer.status_code == 400 and "this field is required" in answer.content.decode()
    assert TierPolicy.objects.get(tier=1).version == 1


def test_the_policies_page_says_plainly_when_no_approval_is_needed(flow):
    html = browser(flow["viewer"]).get("/approvals/policies/").content.decode()
    assert "0 approvals" not in html and html.count("No approval needed") == 2


def test_a_viewer_is_offered_no_new_version_form(flow):
    viewer = browser(flow["viewer"])
    assert "/versions/new/" not in viewer.get("/prompts/loan-letter/").content.decode()
    assert "/versions/new/" not in viewer.get("/prompts/loan-letter/versions/2/").content.decode()
    assert viewer.get("/prompts/loan-letter/versions/new/").status_code == 403
    assert "/versions/new/" in browser(flow["author"]).get("/prompts/loan-letter/").content.decode()
