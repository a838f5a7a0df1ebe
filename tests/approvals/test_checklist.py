"""The checklist: each requirement of a request under the policy in force now, in the order a deploy
checks them, each with the error code a deploy refused on it carries; a refused deploy names the
first unmet one; what is live is compared with what was live when the request was opened."""

import pytest

from approvals import administration, requirements, services
from approvals.models import DeployRequest
from audit.models import AuditEvent
from registry.models import Environment, LLMModel
from registry.services import set_deployment

from .conftest import act, push
from .steps import approve_by, deploy, open_v2, refused

TIER_0 = [
    ("state", "stale_request"),
    ("rejections", "rejected"),
    ("base", "stale_request"),
    ("approvals", "insufficient_approvals"),
    ("gate", "gate_failed"),
    ("model", "model_not_approved"),
    ("model_review", "model_review_overdue"),  # the model risk register's (risk/deploy_checks.py)
]


def items_of(request, flow):
    return requirements.checklist(request, actor=act(flow["owner"]))


def shape(items):
    return [(item.key, item.code) for item in items]


def test_a_tier_0_deploy_checks_state_rejections_base_approvals_gate_then_model(flow, production):
    request = open_v2(flow, production)
    services.reject(actor=act(flow["approver"]), request=request, comment="wrong tone")
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.RESTRICTED)
    set_deployment(actor=act(flow["owner"]), prompt=request.prompt, environment=production, version=flow["v2"])
    request.refresh_from_db()
    items = items_of(request, flow)
    assert shape(items) == TIER_0
    assert {item.key: item.met for item in items} == {
        "state": True, "rejections": False, "base": False, "approvals": False, "gate": True, "model": False,
        "model_review": True,
    }
    refusals = [(item.key, item.error().code, item.error().status) for item in items if not item.met]
    assert refusals == [
        ("rejections", "rejected", 409), ("base", "stale_request", 409),
        ("approvals", "insufficient_approvals", 403), ("model", "model_not_approved", 403),
    ]
    assert requirements.first_unmet(items).key == "rejections"


@pytest.mark.parametrize(
    ("tier", "keys"),
    [
        (1, ["state", "rejections", "base", "approvals", "gate", "model", "model_review"]),
        (2, ["state", "rejections", "base", "gate", "model", "model_review"]),
        (3, ["state", "rejections", "base", "model", "model_review"]),
    ],
)
def test_lower_tiers_leave_out_what_their_policy_does_not_ask_for(flow, production, tier, keys):
    request = open_v2(flow, production)
    prompt = request.prompt
    prompt.tier = tier
    prompt.save()
    assert [item.key for item in items_of(request, flow)] == keys


def test_a_policy_edit_changes_the_checklist_of_open_requests(flow, production):
    request = open_v2(flow, production)
    administration.update_policy(
        actor=act(flow["admin"]), tier=0, requires_gate=False, required_approvals=3, reason="test"
    )
    items = {item.key: item for item in items_of(request, flow)}
    assert list(items) == ["state", "rejections", "base", "approvals", "model", "model_review"]
    assert items["approvals"].label.startswith("3 approvals from named approvers")
    assert items["approvals"].detail == "0 of 3 (none)"


def test_a_tier_change_checks_state_rejections_and_approvals_only(flow):
    request = services.open_tier_change(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, target_tier=2, rationale="no longer customer-facing"
    )
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.RETIRED)
    items = items_of(request, flow)
    assert shape(items) == [TIER_0[0], TIER_0[1], TIER_0[3]]
    assert requirements.first_unmet(items).key == "approvals"


def test_a_refused_deploy_names_the_first_unmet_requirement(flow, production):
    request = open_v2(flow, production)
    services.reject(actor=act(flow["approver"]), request=request, comment="wrong tone")
    LLMModel.objects.filter(pk=flow["llm"].pk).update(status=LLMModel.RESTRICTED)
    refused("rejected", deploy, flow, request)
    services.withdraw_decision(actor=act(flow["approver"]), request=request)
    refused("insufficient_approvals", deploy, flow, request)
    approve_by(flow, request, "approver", "approver2")
    refused("model_not_approved", deploy, flow, request)
    services.withdraw_request(actor=act(flow["owner"]), request=request)
    error = refused("stale_request", deploy, flow, request)
    assert error.detail == "this request was withdrawn"


def test_every_checklist_item_names_the_code_a_deploy_refused_on_it_carries_met_or_not(flow, production):
    """The API documents ``code`` as "the error code a deploy refused on this requirement carries"
    (approvals/api/serializers.py); every item keeps it when met, as 'approvals' and 'state' do."""
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    items = items_of(request, flow)
    assert all(item.met for item in items)
    assert shape(items) == TIER_0


def test_the_approvals_item_says_when_a_prompt_has_no_named_approvers(flow, production):
    administration.set_named_approvers(actor=act(flow["owner"]), prompt=flow["v2"].prompt, approvers=[])
    request = open_v2(flow, production)
    item = next(i for i in items_of(request, flow) if i.key == "approvals")
    assert not item.met
    assert item.detail == "0 of 2 (none); this prompt has no named approvers yet: its owner must name them"


def test_showing_the_checklist_does_not_audit_the_gate_but_deploying_does(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    before = AuditEvent.objects.filter(action="gate.evaluated").count()
    items_of(request, flow)
    assert AuditEvent.objects.filter(action="gate.evaluated").count() == before
    deploy(flow, request)
    evaluated = AuditEvent.objects.filter(action="gate.evaluated").order_by("-sequence").first()
    assert AuditEvent.objects.filter(action="gate.evaluated").count() == before + 1
    assert evaluated.data["environment"] == "production" and evaluated.data["passed"] is True


# -- what is live, compared with what was live when the request was opened ------------------------


def test_a_request_opened_with_nothing_live_is_stale_once_something_goes_live(flow):
    staging = Environment.objects.get(slug="staging")
    request = open_v2(flow, staging)
    assert request.base_version is None
    approve_by(flow, request, "approver", "approver2")
    set_deployment(actor=act(flow["owner"]), prompt=request.prompt, environment=staging, version=flow["v1"])
    error = refused("stale_request", deploy, flow, request)
    assert error.status == 409
    assert error.detail == "v1 went live in staging after this request was opened against nothing; open a new request"


def test_a_request_is_stale_when_the_pointer_moved_even_to_the_version_it_asks_for(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    set_deployment(actor=act(flow["owner"]), prompt=request.prompt, environment=production, version=flow["v2"])
    error = refused("stale_request", deploy, flow, request)
    assert error.detail.startswith("v2 went live in production after this request was opened against v1")
    request.refresh_from_db()
    assert request.status == DeployRequest.APPROVED  # nothing was moved or recorded by the refused deploy


def test_another_environment_moving_leaves_the_request_deployable(flow, production):
    request = open_v2(flow, production)
    approve_by(flow, request, "approver", "approver2")
    v3 = push(flow, request.prompt, "Hi {{ name }}.")
    set_deployment(actor=act(flow["owner"]), prompt=request.prompt, environment=Environment.objects.get(
        slug="staging"), version=v3)
    assert deploy(flow, request).status == DeployRequest.DEPLOYED
