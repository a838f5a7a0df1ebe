"""The model reviews API: the risk role signs a review with its token (recorded as ``api_token``);
others are refused with the access table's code; bad input is a 400 naming the field."""

import datetime

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from risk.models import ModelReview

pytestmark = pytest.mark.django_db


def url(register):
    return f"/api/v1/llm-models/{register['llm'].pk}/reviews/"


def test_the_risk_role_signs_a_review_with_its_token(register, overdue, api_for):
    overdue(3)
    client = api_for("risk")
    answer = client.post(url(register), {"findings": "fine", "decision": "restrict", "allowed_tiers": [2, 3],
                                         "evidence_links": ["https://evals.example/1"]}, format="json")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["auth_method"] == "api_token" and body["reviewer_name"] == "risk"
    assert body["next_review_due"] == (timezone.localdate() + datetime.timedelta(days=91)).isoformat()
    assert [p["prompt"] for p in body["affected_prompts"]] == ["loan-letter"]
    listed = api_for("viewer").get(url(register)).json()
    assert [r["id"] for r in listed] == [body["id"]] and listed[0]["model"] == "offline:offline-echo-1"
    assert AuditEvent.objects.get(action="model_review.signed").data["signature"]["method"] == "api_token"


def test_others_are_refused(register, api_for):
    answer = api_for("owner").post(url(register), {"findings": "x", "decision": "keep"}, format="json")
    assert answer.status_code == 403 and answer.json()["code"] == "site_role_required"
    answer = api_for("risk", scopes=["prompts:read"]).post(url(register), {"findings": "x", "decision": "keep"},
                                                           format="json")
    assert answer.status_code == 403 and answer.json()["code"] == "scope_missing"
    assert not ModelReview.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"findings": "x", "decision": "shrug"}, "decision"),
    ({"findings": "x", "decision": "keep", "next_review_due": "2020-01-01"}, "next_review_due"),
    ({"findings": "x", "decision": "keep", "next_review_due": "soon"}, "next_review_due"),
    ({"findings": "x", "decision": "restrict", "allowed_tiers": [7]}, "allowed_tiers"),
    ({"findings": "x", "decision": "restrict"}, "allowed_tiers"),
    ({"findings": "x", "decision": "keep", "evidence_links": ["ftp://x"]}, "evidence_links"),
    ({"decision": "keep"}, "findings"),
])
def test_bad_input_is_a_400_naming_the_field(register, api_for, body, field):
    answer = api_for("risk").post(url(register), body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["field_errors"], answer.json()


def test_a_model_not_in_the_register_is_a_404(register, api_for):
    assert api_for("risk").get("/api/v1/llm-models/999999/reviews/").status_code == 404
