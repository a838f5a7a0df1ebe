"""The demo's register is not empty: documents, signed reviews (one a restriction), and one model
whose quarterly review is overdue, loaded once however often ``bootstrap_demo`` runs."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from audit.models import AuditEvent
from registry.models import LLMModel
from risk import selectors
from risk.models import ModelProfile, ModelReview

pytestmark = pytest.mark.django_db


def test_the_demo_has_reviews_and_one_overdue_model(client):
    call_command("bootstrap_demo", stdout=StringIO())
    reviews = {r.llm_model.model_id: r for r in ModelReview.objects.select_related("llm_model")}
    assert set(reviews) == {"offline-echo-1", "claude-3-5-sonnet-20241022"}
    assert reviews["claude-3-5-sonnet-20241022"].allowed_tiers == [3]
    assert {r.auth_method for r in reviews.values()} == {"bootstrap_demo"}
    overdue = [m.model_id for m in selectors.register(view="due") if m.state == "overdue"]
    assert overdue == ["gpt-4o-mini-2024-07-18"]
    assert ModelProfile.objects.filter(suites__isnull=False).distinct().count() >= 2

    events, reviewed = AuditEvent.objects.count(), list(LLMModel.objects.values_list("pk", "updated_at"))
    call_command("bootstrap_demo", stdout=StringIO())
    assert AuditEvent.objects.count() == events and list(LLMModel.objects.values_list("pk", "updated_at")) == reviewed

    client.force_login(get_user_model().objects.get(username="risk"))
    html = client.get("/models/").content.decode()
    assert "gpt-4o-mini-2024-07-18" in html and "row-overdue" in html
