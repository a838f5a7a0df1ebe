"""A deploy of a Tier-0 or Tier-1 prompt on a model whose quarterly review is overdue is refused with
``model_review_overdue`` on every channel (the service, the API the CLI speaks, the browser); Tier 2
and 3 only warn by default, and the rule per tier is a setting of its own."""

import pytest

from approvals import services as approvals
from approvals.models import DeployRequest
from audit.models import AuditEvent
from core.actors import Actor
from core.errors import DomainError
from registry.models import Deployment
from risk import services

from .conftest import act, open_request

pytestmark = pytest.mark.django_db


def _live_version(register, slug):
    pointer = Deployment.objects.get(prompt=register["live"][slug]["prompt"], environment=register["production"])
    return pointer.version.number


def test_a_tier_0_deploy_on_a_model_in_review_deploys(register):
    request = open_request(register, "loan-letter")
    approvals.deploy(actor=act(register["owner"]), request=request)
    assert _live_version(register, "loan-letter") == 2


def test_an_overdue_review_refuses_a_tier_0_deploy_in_the_service(register, overdue):
    overdue(1)
    request = open_request(register, "loan-letter")
    with pytest.raises(DomainError) as caught:
        approvals.deploy(actor=act(register["owner"]), request=request)
    assert caught.value.code == "model_review_overdue" and caught.value.status == 403
    assert "1 day overdue" in caught.value.detail
    assert _live_version(register, "loan-letter") == 1


def test_an_overdue_review_refuses_a_tier_0_deploy_over_the_api(register, overdue, api_for):
    overdue(5)
    request = open_request(register, "loan-letter")
    client = api_for("owner")
    answer = client.post(f"/api/v1/deploy-requests/{request.pk}/deploy")
    assert answer.status_code == 403 and answer.json()["code"] == "model_review_overdue"
    assert "5 days overdue" in answer.json()["detail"]
    detail = client.get(f"/api/v1/deploy-requests/{request.pk}/").json()
    assert detail["deployable"] is False
    assert _live_version(register, "loan-letter") == 1 and not AuditEvent.objects.filter(
        action="deploy_request.deployed").exists()


def test_an_overdue_review_refuses_a_tier_0_deploy_in_the_browser(register, overdue, browser_for):
    overdue(5)
    request = open_request(register, "loan-letter")
    client = browser_for("owner")
    page = client.get(f"/approvals/requests/{request.pk}/").content.decode()
    assert 'data-key="model_review"' in page and "model_review_overdue" in page
    answer = client.post(f"/approvals/requests/{request.pk}/deploy")
    assert answer.status_code == 403 and b"model_review_overdue" in answer.content
    request.refresh_from_db()
    assert request.status != DeployRequest.DEPLOYED and _live_version(register, "loan-letter") == 1


def test_tier_2_warns_but_deploys_and_the_warning_is_kept(register, overdue, api_for):
    overdue(5)
    request = open_request(register, "faq-answer")
    answer = api_for("owner").post(f"/api/v1/deploy-requests/{request.pk}/deploy")
    assert answer.status_code == 200 and answer.json()["status"] == "deployed"
    assert _live_version(register, "faq-answer") == 2
    check = AuditEvent.objects.get(action="deploy_request.deployed").data["checks"]["model_review"]
    assert check["met"] is True and check["detail"].startswith("Warning:") and "tier 2 only warns" in check["detail"]


def test_the_rule_per_tier_is_a_setting_admins_change(register, overdue):
    overdue(5)
    with pytest.raises(DomainError) as refused:
        services.update_risk_policy(actor=act(register["risk"]), tier=2, overdue_review="refuse")
    assert refused.value.code == "site_role_required"
    services.update_risk_policy(actor=act(register["admin"]), tier=2, overdue_review="refuse")
    assert AuditEvent.objects.get(action="risk_policy.updated").data["overdue_review"] == {
        "before": "warn", "after": "refuse"}
    request = open_request(register, "faq-answer")
    with pytest.raises(DomainError) as caught:
        approvals.deploy(actor=act(register["owner"]), request=request)
    assert caught.value.code == "model_review_overdue"


def test_the_policy_page_saves_for_admins_only(register, browser_for):
    assert browser_for("admin").post("/models/policy/", {"tier": "3", "overdue_review": "refuse"}).status_code == 302
    assert browser_for("owner").post("/models/policy/", {"tier": "3", "overdue_review": "warn"}).status_code == 403
    page = browser_for("viewer").get("/models/policy/").content.decode()
    assert page.count("Refuse the deploy") == 3 and "<select" not in page
    assert browser_for("admin").post("/models/policy/", {"tier": "7", "overdue_review": "refuse"}).status_code == 400


def test_a_model_restricted_to_tiers_refuses_the_other_tiers(register):
    from django.utils import timezone

    from approvals.services import Signature

    services.record_review(
        actor=act(register["risk"]), llm_model=register["llm"], findings="hallucinates rates", decision="restrict",
        allowed_tiers=[3], next_review_due=timezone.localdate() + timezone.timedelta(days=30),
        signature=Signature("password", timezone.now()),
    )
    request = open_request(register, "faq-answer")
    with pytest.raises(DomainError) as caught:
        approvals.deploy(actor=act(register["owner"]), request=request)
    assert caught.value.code == "model_restricted"


def test_break_glass_is_not_held_back_by_an_overdue_review(register, overdue):
    """Rolling back at once stays possible: break-glass is the emergency path, reviewed afterwards."""
    overdue(5)
    live = register["live"]["loan-letter"]
    system = Actor.for_system("t")
    from registry.services import set_deployment

    set_deployment(actor=system, prompt=live["prompt"], environment=register["production"], version=live["v2"])
    approvals.break_glass_rollback(actor=act(register["owner"]), prompt=live["prompt"],
                                   environment=register["production"], version=live["v1"], reason="v2 is wrong")
    assert _live_version(register, "loan-letter") == 1
