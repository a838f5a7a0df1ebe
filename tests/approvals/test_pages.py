"""The approval pages through Django's test client: the inbox, the request page's checklist,
decisions with their refusals in the service's words, re-authentication, policies."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from approvals import services
from approvals.models import Approval, DeployRequest, TierPolicy

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


def test_the_inbox_lists_what_waits_for_a_named_approver_only(flow, dr):
    page = browser(flow["approver"]).get("/approvals/")
    assert page.status_code == 200
    assert f"/approvals/requests/{dr.pk}/" in page.content.decode()
    other = browser(flow["approver3"]).get("/approvals/").content.decode()
    assert "Nothing is waiting for you" in other
    mine = browser(flow["owner"]).get("/approvals/").content.decode()
    assert "friendlier letter" in mine  # under My requests


def test_the_request_page_shows_checklist_diff_gate_model_and_timeline(flow, dr):
    html = browser(flow["approver"]).get(f"/approvals/requests/{dr.pk}/").content.decode()
    for text in ("Checklist", "0 of 2", "insufficient_approvals", "Gate", "Passing", "Model register",
                 "Diff: v1 (live) → v2", "diff-replace", "deploy_request.opened", 'id="approve-button"'):
        assert text in html, text
    assert 'id="deploy-button"' not in html


def test_the_author_sees_no_approve_button_but_the_reason(flow, dr):
    html = browser(flow["author"]).get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert 'id="approve-button"' not in html
    assert "you authored content in this version" in html


def test_a_refused_action_shows_the_services_words_and_status(flow, dr):
    answer = browser(flow["author"]).post(f"/approvals/requests/{dr.pk}/approve", {"comment": ""})
    assert answer.status_code == 403
    assert "author_cannot_approve" in answer.content.decode()
    reject = browser(flow["approver"]).post(f"/approvals/requests/{dr.pk}/reject", {"comment": ""})
    assert reject.status_code == 400 and "comment_required" in reject.content.decode()
    early = browser(flow["owner"]).post(f"/approvals/requests/{dr.pk}/deploy")
    assert early.status_code == 403 and "insufficient_approvals" in early.content.decode()


def test_two_approvals_in_the_browser_then_deploy(flow, dr):
    for name in ("approver", "approver2"):
        answer = browser(flow[name]).post(f"/approvals/requests/{dr.pk}/approve", {"comment": "fine"})
        assert answer.status_code == 302
    page = browser(flow["owner"]).get(f"/approvals/requests/{dr.pk}/").content.decode()
    assert 'id="deploy-button"' in page
    # The deploy asks first (issue 17), then goes ahead once confirmed.
    asked = browser(flow["owner"]).post(f"/approvals/requests/{dr.pk}/deploy")
    assert asked.status_code == 200 and 'id="confirm-deploy-button"' in asked.content.decode()
    assert browser(flow["owner"]).post(f"/approvals/requests/{dr.pk}/deploy", {"confirmed": "yes"}).status_code == 302
    dr.refresh_from_db()
    assert dr.status == DeployRequest.DEPLOYED


def test_tier_0_asks_for_the_password_again_after_a_stale_sign_in(flow, dr, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 60
    approver = flow["approver"]
    approver.set_password("correct horse")
    approver.save()
    client = browser(approver)
    _age_session(client, minutes=10)
    assert 'name="password"' in client.get(f"/approvals/requests/{dr.pk}/").content.decode()
    stale = client.post(f"/approvals/requests/{dr.pk}/approve", {"comment": ""})
    assert stale.status_code == 403 and "reauth_required" in stale.content.decode()
    wrong = client.post(f"/approvals/requests/{dr.pk}/approve", {"password": "nope"})
    assert wrong.status_code == 403 and "reauth_failed" in wrong.content.decode()
    assert client.post(f"/approvals/requests/{dr.pk}/approve", {"password": "correct horse"}).status_code == 302
    assert Approval.objects.get(request=dr, user=approver).auth_method == "password"
    # The password renewed this session: the next signature within the window needs none.
    assert 'name="password"' not in client.get(f"/approvals/requests/{dr.pk}/").content.decode()


def _age_session(client, *, minutes):
    from core import session_auth

    session = client.session
    session_auth.stamp(session, timezone.now() - timedelta(minutes=minutes))
    session.save()


def test_an_old_session_stays_old_when_its_person_signs_in_elsewhere(flow, dr, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 60
    approver = flow["approver"]
    stolen = browser(approver)
    _age_session(stolen, minutes=120)
    browser(approver)  # the real person signs in on another machine: last_login is now
    refused = stolen.post(f"/approvals/requests/{dr.pk}/approve", {"comment": "from an old session"})
    assert refused.status_code == 403 and "reauth_required" in refused.content.decode()
    assert not Approval.objects.filter(request=dr).exists()


def test_opening_a_request_from_the_version_page(flow, production):
    client = browser(flow["owner"])
    assert 'id="request-deploy"' in client.get("/prompts/loan-letter/versions/2/").content.decode()
    missing = client.post("/approvals/new/loan-letter/2/", {"environment": "production", "rationale": ""})
    assert missing.status_code == 400
    made = client.post("/approvals/new/loan-letter/2/", {"environment": "production", "rationale": "go"})
    assert made.status_code == 302
    assert DeployRequest.objects.get().rationale == "go"
    assert 'id="request-deploy"' not in browser(flow["viewer"]).get("/prompts/loan-letter/versions/2/").content.decode()


def test_the_prompt_page_shows_named_approvers_open_requests_and_break_glass(flow, dr, production):
    html = browser(flow["viewer"]).get("/prompts/loan-letter/").content.decode()
    assert "approver2" in html and "friendlier letter" in html
    services.approve(actor=act(flow["approver"]), request=dr)
    services.approve(actor=act(flow["approver2"]), request=dr)
    services.deploy(actor=act(flow["owner"]), request=dr)
    client = browser(flow["owner"])
    refused = client.post("/approvals/break-glass/loan-letter/", {"environment": "production", "version": 1,
                                                                  "reason": "short"})
    assert refused.status_code == 400 and "10 characters" in refused.content.decode()
    done = client.post("/approvals/break-glass/loan-letter/", {"environment": "production", "version": 1,
                                                               "reason": "letters quote wrong amounts"})
    assert done.status_code == 302
    html = browser(flow["viewer"]).get("/prompts/loan-letter/").content.decode()
    assert "Break-glass rollback" in html and "letters quote wrong amounts" in html


@pytest.mark.parametrize("tier", ["abc", "-1", "7", ""])
def test_a_policy_post_for_no_such_tier_is_a_400_page(flow, tier):
    response = browser(flow["admin"]).post("/approvals/policies/", {"tier": tier})
    assert response.status_code == 400
    assert "0, 1, 2 or 3" in response.content.decode()


def test_policies_are_shown_to_all_and_edited_by_admins(flow):
    assert "Edit tier 0" not in browser(flow["owner"]).get("/approvals/policies/").content.decode()
    admin = browser(flow["admin"])
    assert "Edit tier 0" in admin.get("/approvals/policies/").content.decode()
    saved = admin.post("/approvals/policies/", {
        "tier": 1, "tier1-required_approvals": 2, "tier1-requires_gate": "on",
        "tier1-allowed_model_statuses": ["approved"], "tier1-reason": "two eyes on tier 1",
    })
    assert saved.status_code == 302
    policy = TierPolicy.objects.get(tier=1)
    assert (policy.required_approvals, policy.version, policy.named_approvers_only) == (2, 2, False)
    refused = browser(flow["owner"]).post("/approvals/policies/", {
        "tier": 1, "tier1-required_approvals": 0, "tier1-allowed_model_statuses": ["approved"], "tier1-reason": "r",
    })
    assert refused.status_code == 403
