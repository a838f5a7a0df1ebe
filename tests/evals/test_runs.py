"""Suites, cases and runs over the API and through the runner (offline provider, in process)."""

import pytest

from audit.models import AuditEvent
from core.actors import Actor
from evals import runner
from evals.models import EvalItem, EvalResult, EvalRun, Suite
from registry.models import LLMModel

CASES = [
    {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
    {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
    {"vars": {"name": "Linus"}, "assertions": [{"type": "contains", "value": "nobody says this"}]},
]


@pytest.fixture
def suite(api_for, version):
    client = api_for("author")
    made = client.post(
        "/api/v1/suites/", {"slug": "letters-core", "name": "Letters", "team": "payments"}, format="json"
    )
    assert made.status_code == 201, made.json()
    added = client.post("/api/v1/suites/letters-core/cases/", CASES, format="json")
    assert added.status_code == 201, added.json()
    return Suite.objects.get(slug="letters-core")


def start(client, **overrides):
    body = {"prompt": "loan-letter", "version": 1, "suite": "letters-core", "trigger": "manual", **overrides}
    return client.post("/api/v1/eval-runs/", body, format="json")


def test_a_run_is_accepted_queued_and_completes(api_for, suite):
    client = api_for("author")
    response = start(client)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued"
    assert body["progress"] == {"total": 3, "done": 0, "percent": 0.0}
    assert body["recoveries"] == 0 and body["resumed_at"] is None
    runner.execute(body["id"])
    done = client.get(f"/api/v1/eval-runs/{body['id']}/").json()
    assert done["status"] == "completed"
    assert done["progress"]["done"] == 3
    assert done["pass_rate"] == pytest.approx(2 / 3)
    assert done["summary"]["assertions"]["contains"]["total"] == 3
    assert done["summary"]["latency_ms"]["p50"] is not None
    failures = client.get(f"/api/v1/eval-runs/{body['id']}/results/", {"passed": "false"}).json()["results"]
    assert [r["position"] for r in failures] == [3]
    assert failures[0]["verdicts"][0]["passed"] is False
    assert isinstance(failures[0]["case"], int)


def test_cases_upload_as_jsonl_and_download(api_for, suite):
    client = api_for("author")
    jsonl = '{"vars": {"name": "Ada"}, "assertions": [{"type": "equals", "value": "x"}]}\n\n'
    response = client.post("/api/v1/suites/letters-core/cases/", data=jsonl, content_type="application/x-ndjson")
    assert response.status_code == 201, response.json()
    assert response.json()[0]["position"] == 4
    download = client.get("/api/v1/suites/letters-core/cases/export", {"format": "jsonl"})
    assert download.status_code == 200
    assert len(download.content.decode().splitlines()) == 4
    bad = client.post("/api/v1/suites/letters-core/cases/", data="{oops\n", content_type="application/x-ndjson")
    assert bad.status_code == 400
    assert "line 1" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ({"vars": {"name": "A"}, "assertions": [{"type": "telepathy", "value": "x"}]}, "cases[0].assertions[0].type"),
        (
            {"vars": {"name": "A"}, "assertions": [{"type": "regex", "value": "(unclosed"}]},
            "cases[0].assertions[0].value",
        ),
        (
            {"vars": {"name": "A"}, "assertions": [{"type": "json_schema", "value": {"type": "nope"}}]},
            "cases[0].assertions[0].value",
        ),
    ],
    ids=["unknown-type", "bad-regex", "bad-schema"],
)
def test_bad_cases_are_refused_before_anything_is_stored(api_for, suite, case, field):
    response = api_for("author").post("/api/v1/suites/letters-core/cases/", [case], format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["field_errors"], response.json()
    assert suite.cases.count() == 3


def test_a_case_missing_a_required_variable_stops_the_run_before_it_starts(api_for, suite):
    client = api_for("author")
    added = client.post(
        "/api/v1/suites/letters-core/cases/", [{"vars": {}, "assertions": [{"type": "contains", "value": "x"}]}],
        format="json",
    )
    assert added.status_code == 201
    response = start(client)
    assert response.status_code == 400
    assert "cases[3].vars.name" in response.json()["field_errors"]
    assert not EvalRun.objects.exists()


def test_a_suite_of_zero_cases_and_an_unknown_model_are_refused(api_for, version):
    client = api_for("author")
    client.post("/api/v1/suites/", {"slug": "empty", "name": "Empty", "team": "payments"}, format="json")
    empty = start(client, suite="empty")
    assert empty.status_code == 400
    assert empty.json()["code"] == "empty_suite"
    client.post("/api/v1/suites/", {"slug": "one", "name": "One", "team": "payments"}, format="json")
    client.post("/api/v1/suites/one/cases/", CASES[:1], format="json")
    unknown = start(client, suite="one", model={"provider": "openai", "name": "gpt-imaginary"})
    assert unknown.status_code == 400
    assert "model.name" in unknown.json()["field_errors"]
    no_cases = client.post("/api/v1/suites/one/cases/", [], format="json")
    assert no_cases.status_code == 400
    assert not EvalRun.objects.exists()


def test_viewer_cannot_start_a_run_and_token_needs_evals_scope(api_for, suite):
    assert start(api_for("viewer")).status_code == 403
    refused = start(api_for("author", scopes=["prompts:read", "prompts:write"]))
    assert refused.status_code == 403
    assert refused.json()["code"] == "scope_missing"


def test_delivering_a_run_twice_writes_each_result_once(api_for, suite):
    run_id = start(api_for("author")).json()["id"]
    runner.execute(run_id)
    runner.execute(run_id)
    assert EvalResult.objects.filter(run_id=run_id).count() == 3


def test_a_dead_workers_lease_expires_and_its_cases_are_run_once(api_for, suite):
    from datetime import timedelta

    from django.utils import timezone

    client = api_for("author")
    run_id = start(client).json()["id"]
    crashed = runner.claim(run_id, 2, "dead-worker")
    assert len(crashed) == 2
    EvalItem.objects.filter(lease_token="dead-worker").update(lease_until=timezone.now() - timedelta(seconds=1))
    runner.execute(run_id)
    assert EvalRun.objects.get(pk=run_id).status == "completed"
    assert runner.write_result(crashed[0], "dead-worker", {"passed": True}) is False
    assert EvalResult.objects.filter(run_id=run_id).count() == 3
    assert EvalItem.objects.get(run_id=run_id, position=1).claims == 2
    shown = client.get(f"/api/v1/eval-runs/{run_id}/").json()  # the API says the run was taken back
    assert shown["recoveries"] == 1 and shown["resumed_at"] is not None


def test_cancelling_stops_the_run(api_for, suite):
    client = api_for("author")
    run_id = start(client).json()["id"]
    cancelled = client.post(f"/api/v1/eval-runs/{run_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    runner.execute(run_id)
    assert not EvalResult.objects.filter(run_id=run_id).exists()
    again = client.post(f"/api/v1/eval-runs/{run_id}/cancel")
    assert again.status_code == 409


def test_a_provider_failure_is_recorded_and_the_run_completes_with_errors(api_for, suite, cast, settings):
    settings.PROMPTLEDGER_PROVIDER_MAX_RETRIES = 0
    LLMModel.objects.create(
        provider="openai", model_id="gpt-4o-mini-2024-07-18", owner=cast["owner"], status="approved"
    )
    client = api_for("author")
    run_id = start(client, model={"provider": "openai", "name": "gpt-4o-mini-2024-07-18"}).json()["id"]
    # No OPENAI_API_KEY in the test environment: every case fails fast and is recorded.
    runner.execute(run_id)
    run = EvalRun.objects.get(pk=run_id)
    assert run.status == "completed_with_errors"
    assert run.summary["errors"] == 3
    assert all(r.error for r in run.results.all())


def test_compare_two_runs_of_a_suite(api_for, suite, cast, prompt):
    from registry.services import create_version
    from tests.factories import version_body

    client = api_for("author")
    first = start(client).json()["id"]
    runner.execute(first)
    body = version_body("Dear customer.")  # no longer mentions the name: regressions
    create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        messages=body["messages"],
        variables=body["variables"],
        model=body["model"],
        message="generic",
    )
    second = start(client, version=2).json()["id"]
    runner.execute(second)
    data = client.get(f"/api/v1/eval-runs/{second}/compare/", {"against": first}).json()
    assert [r["position"] for r in data["regressions"]] == [1, 2]
    assert data["pass_rate_delta"] == pytest.approx(-2 / 3)


def test_runs_are_audited(api_for, suite):
    run_id = start(api_for("author")).json()["id"]
    runner.execute(run_id)
    actions = list(AuditEvent.objects.filter(target_type="eval_run").values_list("action", flat=True))
    assert actions == ["eval_run.started", "eval_run.completed"]
    completed = AuditEvent.objects.get(action="eval_run.completed")
    assert completed.data["pass_rate"] == pytest.approx(2 / 3)
    assert completed.prompt == "loan-letter"


def test_runs_of_invisible_prompts_are_404(api_for, suite):
    run_id = start(api_for("author")).json()["id"]
    assert api_for("outsider").get(f"/api/v1/eval-runs/{run_id}/").status_code == 404


def test_each_item_snapshots_its_case_as_it_was_at_the_start(api_for, suite):
    from evals.models import Case, EvalItem

    run_id = start(api_for("author")).json()["id"]
    items = list(EvalItem.objects.filter(run_id=run_id).order_by("position"))
    cases = list(Case.objects.filter(suite__slug="letters-core").order_by("position"))
    assert [i.case_id for i in items] == [c.pk for c in cases]
    assert [i.snapshot for i in items] == [
        {"vars": c.vars, "expected": c.expected, "assertions": c.assertions} for c in cases
    ]
    assert {i.status for i in items} == {EvalItem.PENDING}


def test_a_run_whose_closing_step_failed_is_finished_by_the_reaper_once(api_for, suite, monkeypatch):
    from django.db import OperationalError

    run_id = start(api_for("author")).json()["id"]

    def connection_lost(run_id):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(runner.driving, "finalize", connection_lost)  # the worker's close fails...
    with pytest.raises(OperationalError):
        runner.execute(run_id)
    monkeypatch.undo()
    run = EvalRun.objects.get(pk=run_id)
    assert run.status == "running"  # ...after every case got its result
    assert run.results.count() == 3
    assert runner.reap() == [run_id]
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.pass_rate == pytest.approx(2 / 3)
    assert runner.reap() == []  # nothing left for it
    assert runner.finalize(run_id).status == "completed"  # closing again changes nothing
    assert AuditEvent.objects.filter(action="eval_run.completed", target_id=str(run_id)).count() == 1


def test_the_reaper_leaves_a_run_with_open_items_to_its_workers(api_for, suite):
    run_id = start(api_for("author")).json()["id"]
    assert runner.reap() == []
    assert EvalRun.objects.get(pk=run_id).status == "queued"


def test_a_provider_answer_with_a_nul_is_stored_with_a_replacement_character(api_for, suite, cast, fake_provider):
    from tests.evals.fake_provider import ok

    LLMModel.objects.create(
        provider="openai", model_id="gpt-4o-mini-2024-07-18", owner=cast["owner"], status="approved"
    )
    fake_provider.script(ok("Dear Ada\x00,"), ok("Dear Grace\x00,"), ok("x\x00"))
    client = api_for("author")
    run_id = start(client, model={"provider": "openai", "name": "gpt-4o-mini-2024-07-18"}).json()["id"]
    runner.execute(run_id)
    run = EvalRun.objects.get(pk=run_id)
    assert run.status == "completed"
    outputs = sorted(run.results.values_list("output", flat=True))
    assert outputs == ["Dear Ada\ufffd,", "Dear Grace\ufffd,", "x\ufffd"]
