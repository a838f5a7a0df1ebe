"""Quarterly reviews: signed like a Tier-0 approval (a stale sign-in asks for the password again,
and the review records how and when its reviewer authenticated), audited, and a restriction or a
retirement names every live prompt it affects."""

import datetime

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core import session_auth
from core.errors import DomainError
from registry.models import LLMModel
from risk import services
from risk.models import ModelProfile, ModelReview

from .conftest import act

pytestmark = pytest.mark.django_db


def _body(**overrides):
    due = (timezone.localdate() + datetime.timedelta(days=91)).isoformat()
    body = {"findings": "No new failure modes; jailbreak suite still at 100%.", "decision": "keep",
            "next_review_due": due, "evidence_links": "https://evals.example/runs/41\nhttps://status.example/x"}
    body.update(overrides)
    return body


def _stale(client, minutes=30):
    session = client.session
    session_auth.stamp(session, timezone.now() - datetime.timedelta(minutes=minutes))
    session.save()


def test_a_review_in_a_fresh_session_is_signed_by_the_session_and_audited(register, overdue, client):
    entry = overdue(20)
    client.force_login(register["risk"])
    page = client.get(f"/models/{entry.pk}/review/")
    assert page.status_code == 200 and b'id="reauth-field"' not in page.content
    before = timezone.now()
    answer = client.post(f"/models/{entry.pk}/review/", _body())
    assert answer.status_code == 302
    review = ModelReview.objects.get()
    assert (review.reviewer_name, review.decision, review.auth_method) == ("risk", "keep", "session")
    assert before - datetime.timedelta(minutes=1) < review.authenticated_at <= timezone.now()
    assert review.evidence_links == ["https://evals.example/runs/41", "https://status.example/x"]
    entry.refresh_from_db()
    assert entry.status == LLMModel.APPROVED and entry.last_reviewed_at == timezone.localdate()
    assert entry.next_review_due == timezone.localdate() + datetime.timedelta(days=91)
    event = AuditEvent.objects.get(action="model_review.signed")
    assert event.actor_username == "risk" and event.data["signature"]["method"] == "session"
    assert event.data["decision"] == "keep" and event.data["previous_due"] == review.previous_due.isoformat()
    html = client.get(f"/models/{entry.pk}/").content.decode()
    assert "Keep approved" in html and "signature: signed in at" in html and "https://evals.example/runs/41" in html


def test_a_stale_sign_in_asks_for_the_password_again(register, client, settings):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    entry = register["llm"]
    client.force_login(register["risk"])
    _stale(client)
    assert b'id="reauth-field"' in client.get(f"/models/{entry.pk}/review/").content
    refused = client.post(f"/models/{entry.pk}/review/", _body())
    assert refused.status_code == 403 and b"reauth_required" in refused.content
    wrong = client.post(f"/models/{entry.pk}/review/", _body(password="not-it"))
    assert wrong.status_code == 403 and b"reauth_failed" in wrong.content
    assert not ModelReview.objects.exists()
    signed = client.post(f"/models/{entry.pk}/review/", _body(password="correct-horse-battery"))
    assert signed.status_code == 302
    review = ModelReview.objects.get()
    assert review.auth_method == "password" and timezone.now() - review.authenticated_at < datetime.timedelta(minutes=1)
    # typing the password renewed this session's authentication: the next form asks nothing
    assert b'id="reauth-field"' not in client.get(f"/models/{entry.pk}/review/").content


def test_the_service_refuses_a_stale_signature_whatever_the_channel(register):
    from approvals.services import Signature

    old = Signature("session", timezone.now() - datetime.timedelta(hours=2))
    with pytest.raises(DomainError) as caught:
        services.record_review(actor=act(register["risk"]), llm_model=register["llm"], findings="ok",
                               decision="keep", next_review_due=_body()["next_review_due"], signature=old)
    assert caught.value.code == "reauth_required"


@pytest.mark.parametrize("who", ["owner", "viewer", "compliance"])
def test_only_the_risk_role_and_admins_sign_reviews(register, browser_for, who):
    client = browser_for(who)
    assert client.get(f"/models/{register['llm'].pk}/review/").status_code == 403
    refused = client.post(f"/models/{register['llm'].pk}/review/", _body())
    assert refused.status_code == 403 and not ModelReview.objects.exists()
    assert browser_for("admin").post(f"/models/{register['llm'].pk}/review/", _body()).status_code == 302


@pytest.mark.parametrize(("field", "value"), [
    ("next_review_due", "2020-01-01"), ("next_review_due", "soon"), ("evidence_links", "javascript:alert(1)"),
    ("findings", ""), ("decision", "shrug"),
])
def test_bad_input_is_a_400_naming_the_field(register, client, field, value):
    client.force_login(register["risk"])
    answer = client.post(f"/models/{register['llm'].pk}/review/", _body(**{field: value}))
    assert answer.status_code == 400, answer.content[:300]
    assert f'id="id_{field}_errors"'.encode() in answer.content or field.encode() in answer.content
    assert not ModelReview.objects.exists()


def test_restricting_needs_tiers_and_names_the_field(register, client):
    client.force_login(register["risk"])
    answer = client.post(f"/models/{register['llm'].pk}/review/", _body(decision="restrict"))
    assert answer.status_code == 400 and b"choose at least one tier" in answer.content


def test_retiring_shows_every_live_prompt_it_affects(register, client):
    entry = register["llm"]
    client.force_login(register["risk"])
    preview = client.get(f"/models/{entry.pk}/affected/?decision=retire").content.decode()
    assert "affects 2 live prompts" in preview and "loan-letter" in preview and "faq-answer" in preview
    answer = client.post(f"/models/{entry.pk}/review/", _body(decision="retire", next_review_due=""), follow=True)
    assert "It affects 2 live prompts" in answer.content.decode()
    review = ModelReview.objects.get()
    assert sorted(p["prompt"] for p in review.affected_prompts) == ["faq-answer", "loan-letter"]
    entry.refresh_from_db()
    assert entry.status == LLMModel.RETIRED and entry.next_review_due is None
    assert "Affected live prompts: loan-letter (production, tier 0)" in answer.content.decode()
    event = AuditEvent.objects.get(action="model_review.signed")
    assert len(event.data["affected_prompts"]) == 2


def test_restricting_to_tiers_2_and_3_affects_the_tier_0_prompt_only(register, client):
    entry = register["llm"]
    client.force_login(register["risk"])
    preview = client.get(f"/models/{entry.pk}/affected/?decision=restrict&allowed_tiers=2&allowed_tiers=3")
    assert "loan-letter" in preview.content.decode() and "faq-answer" not in preview.content.decode()
    client.post(f"/models/{entry.pk}/review/", _body(decision="restrict", allowed_tiers=["2", "3"]))
    review = ModelReview.objects.get()
    assert [p["prompt"] for p in review.affected_prompts] == ["loan-letter"]
    assert ModelProfile.objects.get(llm_model=entry).allowed_tiers == [2, 3]
    entry.refresh_from_db()
    assert entry.status == LLMModel.RESTRICTED


def test_a_signed_review_cannot_be_changed(register, postgres):
    from django.db import IntegrityError, InternalError, transaction

    from approvals.services import Signature
    from registry.models import ImmutableRowError

    review = services.record_review(
        actor=act(register["risk"]), llm_model=register["llm"], findings="fine", decision="keep",
        next_review_due=_body()["next_review_due"], signature=Signature("password", timezone.now()),
    )
    with pytest.raises(ImmutableRowError):
        review.save()
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        ModelReview.objects.filter(pk=review.pk).update(findings="rewritten")


def test_a_session_signed_in_at_the_idp_signs_at_the_idp_not_with_a_password(register, client, settings):
    """The same rule as a deploy decision (approvals.browser_signing): a stale SSO session is sent
    to the IdP, and a local password typed there signs nothing."""
    from approvals.services.signatures import remember_idp_authentication

    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 300
    entry = register["llm"]
    client.force_login(register["risk"])
    session = client.session
    remember_idp_authentication(session, at=timezone.now() - datetime.timedelta(hours=2), amr=["pwd"])
    session.save()
    refused = client.post(f"/models/{entry.pk}/review/", _body(password="correct-horse-battery"))
    assert refused.status_code == 403 and b"reauth_required" in refused.content
    assert b"identity provider" in refused.content
    assert not ModelReview.objects.exists()
