"""Gates: thresholds on the exact content hash, regressions against what is live, audited."""

import pytest

from audit.models import AuditEvent
from core.actors import Actor
from evals import runner
from registry.models import Environment
from registry.services import create_version, set_deployment
from tests.factories import version_body

CASES = [{"vars": {"name": n}, "assertions": [{"type": "contains", "value": n}]} for n in ("Ada", "Grace", "Alan")]


@pytest.fixture
def gated(api_for, version):
    client = api_for("owner")
    client.post("/api/v1/suites/", {"slug": "core", "name": "Core", "team": "payments"}, format="json")
    client.post("/api/v1/suites/core/cases/", CASES, format="json")
    return client


def gate_of(client, number, environment="production"):
    response = client.get(f"/api/v1/prompts/loan-letter/versions/{number}/gate", {"environment": environment})
    assert response.status_code == 200, response.json()
    return response.json()


def run(client, number):
    run_id = client.post(
        "/api/v1/eval-runs/", {"prompt": "loan-letter", "version": number, "suite": "core"}, format="json"
    ).json()["id"]
    runner.execute(run_id)
    return run_id


def test_tier_1_without_gate_suites_fails_with_no_gate_configured(gated):
    result = gate_of(gated, 1)
    assert result["passed"] is False
    assert [c["code"] for c in result["checks"]] == ["no_gate_configured"]


def test_gate_passes_on_a_run_of_the_same_content_hash(gated):
    put = gated.put(
        "/api/v1/prompts/loan-letter/gate",
        {"suites": [{"suite": "core", "min_pass_rate": 0.9}], "max_regression": 0.05},
        format="json",
    )
    assert put.status_code == 200, put.json()
    assert gate_of(gated, 1)["checks"][0]["code"] == "no_run"
    run(gated, 1)
    result = gate_of(gated, 1)
    assert result["passed"] is True, result
    assert AuditEvent.objects.filter(action="gate.evaluated").count() == 2
    assert AuditEvent.objects.filter(action="gate.updated").count() == 1


def test_below_threshold_and_regression_against_live_fail(gated, cast, prompt, version):
    gated.put(
        "/api/v1/prompts/loan-letter/gate",
        {"suites": [{"suite": "core", "min_pass_rate": 0.3}], "max_regression": 0.1},
        format="json",
    )
    run(gated, 1)
    set_deployment(
        actor=Actor(user=cast["owner"]),
        prompt=prompt,
        environment=Environment.objects.get(slug="production"),
        version=version,
    )
    body = version_body()
    create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        messages=[{"role": "system", "content": "Hi."}],
        variables=body["variables"],
        model=body["model"],
        message="drops the name",
    )
    run(gated, 2)
    result = gate_of(gated, 2)
    assert result["passed"] is False
    assert result["checks"][0]["code"] == "below_threshold"
    gated.put(
        "/api/v1/prompts/loan-letter/gate",
        {"suites": [{"suite": "core", "min_pass_rate": 0.0}], "max_regression": 0.1},
        format="json",
    )
    result = gate_of(gated, 2)
    assert result["checks"][0]["code"] == "regression"
    assert "below v1 live in production" in result["checks"][0]["detail"]


def test_gate_config_errors_and_permissions(gated, api_for):
    bad = gated.put(
        "/api/v1/prompts/loan-letter/gate", {"suites": [{"suite": "core", "min_pass_rate": 2}]}, format="json"
    )
    assert bad.status_code == 400
    assert "suites[0].min_pass_rate" in bad.json()["field_errors"]
    unknown = gated.put(
        "/api/v1/prompts/loan-letter/gate", {"suites": [{"suite": "nope", "min_pass_rate": 1}]}, format="json"
    )
    assert unknown.status_code == 400
    author = api_for("author").put("/api/v1/prompts/loan-letter/gate", {"suites": []}, format="json")
    assert author.status_code == 403


def test_whether_a_gate_is_required_is_the_tier_policys(gated, cast, prompt):
    """Tier 2's default policy requires a gate: with none configured the gate fails; once an admin
    turns requires_gate off for tier 2, the same prompt passes without one (no rule hard-coded)."""
    from approvals.administration import update_policy

    prompt.tier = 2
    prompt.save(update_fields=["tier"])
    refused = gate_of(gated, 1)
    assert refused["passed"] is False
    assert refused["checks"][0]["code"] == "no_gate_configured"
    assert "tier-2 policy requires" in refused["checks"][0]["detail"]
    update_policy(actor=Actor(user=cast["admin"]), tier=2, requires_gate=False, reason="test")
    allowed = gate_of(gated, 1)
    assert allowed["passed"] is True and allowed["checks"][0]["code"] == "no_gate_configured"
