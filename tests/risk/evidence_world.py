"""A deployed Tier-0 request for the evidence pack tests (service, API, browser): the approvals'
``flow`` (v1 live in production, v2 by 'author', named approvers 'approver' and 'approver2') with a
third gate case that fails (so the gate's runs have a failing case, still above the 0.6 minimum), a
signed model review, and a request for v2 that 'approver' rejects and then withdraws, both named
approvers approve, and 'owner' deploys."""

import pytest

from approvals import services as approvals
from core.actors import Actor
from evals.gates import set_gate
from evals.models import Suite
from evals.services import add_cases
from registry.models import SiteRole
from risk.services import record_review
from tests.approvals.conftest import act, run_suite
from tests.factories import UserFactory

FAILING_CASE = {"vars": {"name": "Linus"}, "assertions": [{"type": "contains", "value": "Torvalds"}]}


def deploy_tier_0(flow, production):
    owner = act(flow["owner"])
    prompt = flow["v2"].prompt
    add_cases(actor=owner, suite=Suite.objects.get(slug="core"), cases=[FAILING_CASE])
    set_gate(actor=owner, prompt=prompt, suites=[{"suite": "core", "min_pass_rate": 0.6}], max_regression=0.1)
    run_suite(flow, prompt, flow["v1"])
    run_suite(flow, prompt, flow["v2"])
    risk = UserFactory(username="riskofficer")
    SiteRole.objects.create(user=risk, role=SiteRole.RISK)
    record_review(
        actor=Actor(user=risk), llm_model=flow["v2"].llm_model, findings="Echoes its input; fine for letters.",
        decision="keep", signature=approvals.Signature("password", act(risk).authenticated_at),
    )
    request = approvals.open_request(
        actor=owner, prompt=prompt, version=flow["v2"], environment=production, rationale="friendlier letter"
    )
    approvals.reject(actor=act(flow["approver"]), request=request, comment="say who it is from")
    approvals.withdraw_decision(actor=act(flow["approver"]), request=request)
    approvals.approve(actor=act(flow["approver"]), request=request, comment="reads well now")
    approvals.approve(actor=act(flow["approver2"]), request=request, comment="fine")
    approvals.deploy(actor=owner, request=request)
    request.refresh_from_db()
    return request


@pytest.fixture
def deployed(flow, production):
    return deploy_tier_0(flow, production)
