"""Monthly eval budgets per team: owners set them (audited), the 80% warning is shown and sent
once per team and month, new runs are refused at 100% with ``budget_exceeded`` on every channel
(service, API, browser, CI token, the nightly drift scheduler), and an owner's override with a
reason lets runs go on for the month (audited; nobody else may)."""

import json

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.actors import Actor
from core.errors import Conflict, PermissionDenied, ValidationFailed
from evals import budgets, drift, runner
from evals.gates import set_gate
from evals.models import BudgetOverride, BudgetWarning, EvalRun, TeamBudget
from evals.services import add_cases, create_suite, start_run
from registry.models import Environment
from registry.services import set_deployment
from tests.evals.fake_provider import ok
from tests.evals.spend import record_spend
from tests.factories import LLMModelFactory
from tests.webhook_receiver import Receiver
from webhooks import services as webhooks
from webhooks.models import Delivery

CASES = [{"vars": {"name": n}, "assertions": [{"type": "contains", "value": n}]} for n in ("Ada", "Grace", "Alan")]


@pytest.fixture
def suite(cast, version):
    owner = Actor(user=cast["owner"])
    made = create_suite(actor=owner, slug="core", name="Core", team=cast["team"])
    add_cases(actor=owner, suite=made, cases=CASES)
    return made


@pytest.fixture
def budget(cast):
    """payments may spend $10.00 a month on evals."""
    return budgets.set_budget(actor=Actor(user=cast["owner"]), team=cast["team"], monthly_usd="10")


def spend(cast, prompt, amount):
    record_spend(prompt, cast["author"], [amount], llm=cast["llm"])


def run_as(cast, who, prompt, version, suite, **kwargs):
    return start_run(actor=Actor(user=cast[who]), prompt=prompt, version=version, suite=suite, **kwargs)


# --- setting a budget -------------------------------------------------------------------------------
def test_an_owner_sets_changes_and_removes_the_budget_audited(cast):
    owner, team = Actor(user=cast["owner"]), cast["team"]
    assert budgets.set_budget(actor=owner, team=team, monthly_usd="250").monthly_usd == 250
    budgets.set_budget(actor=owner, team=team, monthly_usd="99.999")
    assert TeamBudget.objects.get(team=team).monthly_usd == pytest.approx(100)
    assert budgets.set_budget(actor=owner, team=team, monthly_usd="") is None
    assert not TeamBudget.objects.filter(team=team).exists()
    changes = list(AuditEvent.objects.filter(action="budget.set").order_by("sequence").values_list("data", flat=True))
    assert [(c["before_usd"], c["after_usd"]) for c in changes] == [
        (None, "250.00"), ("250.00", "100.00"), ("100.00", None)]


@pytest.mark.parametrize("amount", ["0", "-5", "lots", "NaN", "1e20"])
def test_a_budget_must_be_a_positive_amount(cast, amount):
    with pytest.raises(ValidationFailed) as refused:
        budgets.set_budget(actor=Actor(user=cast["owner"]), team=cast["team"], monthly_usd=amount)
    assert "monthly_usd" in refused.value.field_errors


@pytest.mark.parametrize(("who", "code"), [("approver", "role_too_low"), ("outsider", "not_team_member")])
def test_only_owners_and_admins_set_a_budget(cast, who, code):
    with pytest.raises(PermissionDenied) as refused:
        budgets.set_budget(actor=Actor(user=cast[who]), team=cast["team"], monthly_usd="10")
    assert refused.value.code == code
    assert budgets.set_budget(actor=Actor(user=cast["admin"]), team=cast["team"], monthly_usd="10")


def test_the_team_page_shows_the_budget(cast, prompt, budget, browser_for):
    spend(cast, prompt, 2.5)
    html = browser_for("viewer").get("/teams/payments/").content.decode()
    assert 'id="team-budget"' in html and "has spent $2.50 of its $10.00 eval budget" in html


# --- the warning at 80% -------------------------------------------------------------------------------
def test_the_warning_at_80_percent_is_sent_once_a_month(
    cast, prompt, version, suite, budget, django_capture_on_commit_callbacks, eager
):
    receiver = Receiver()
    try:
        webhooks.create_subscription(
            actor=Actor(user=cast["owner"]), url=receiver.url, events=["budget.warning"], team=cast["team"]
        )
        spend(cast, prompt, 7.9)
        with django_capture_on_commit_callbacks(execute=True):
            quiet = run_as(cast, "author", prompt, version, suite)
        assert quiet.budget.state == "ok" and not BudgetWarning.objects.exists()
        spend(cast, prompt, 0.2)  # 8.10 of 10.00
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                run = run_as(cast, "author", prompt, version, suite)
            assert run.budget.state == "warning" and run.budget.percent == 81.0
        (request,) = receiver.wait_for(1)
        payload = json.loads(request["body"])
        assert payload["event"] == "budget.warning"
        assert {k: payload["data"][k] for k in ("team", "budget_usd", "spent_usd", "percent")} == {
            "team": "payments", "budget_usd": "10.00", "spent_usd": 8.1, "percent": 81.0}
        assert payload["data"]["month"] == timezone.localdate().strftime("%Y-%m")
        assert Delivery.objects.filter(event="budget.warning").count() == 1
        assert BudgetWarning.objects.count() == 1
        assert AuditEvent.objects.filter(action="budget.warning").count() == 1
    finally:
        receiver.stop()


def test_the_warning_is_sent_when_a_runs_own_results_cross_80_percent(
    cast, prompt, version, suite, fake_provider, django_capture_on_commit_callbacks
):
    LLMModelFactory(provider="openai", model_id="gpt-4o-mini-2024-07-18", owner=cast["owner"])
    budgets.set_budget(actor=Actor(user=cast["owner"]), team=cast["team"], monthly_usd="0.50")
    webhooks.create_subscription(actor=Actor(user=cast["owner"]), url="http://127.0.0.1:9/hook",
                                 events=["budget.warning"], team=cast["team"])
    fake_provider.script(*[ok(input_tokens=1_000_000, output_tokens=0)] * 3)  # $0.15 a case on gpt-4o-mini
    with django_capture_on_commit_callbacks(execute=False):
        run = run_as(cast, "author", prompt, version, suite,
                     model={"provider": "openai", "name": "gpt-4o-mini-2024-07-18"})
    assert run.budget.state == "ok"
    with django_capture_on_commit_callbacks(execute=False):
        runner.execute(run.pk)
    assert EvalRun.objects.get(pk=run.pk).summary["cost_usd"] == pytest.approx(0.45)
    warning = BudgetWarning.objects.get()
    assert warning.spent_usd == pytest.approx(0.45)
    assert Delivery.objects.filter(event="budget.warning").count() == 1


def test_the_api_says_so_when_a_run_starts_at_80_percent(cast, prompt, version, suite, budget, api_for):
    spend(cast, prompt, 8.0)
    answer = api_for("author").post("/api/v1/eval-runs/", {"prompt": "loan-letter", "version": 1, "suite": "core"},
                                    format="json")
    assert answer.status_code == 202
    assert answer["X-Promptledger-Budget"].startswith("warning; team=payments; month=")
    assert "percent=80.0" in answer["X-Promptledger-Budget"]


def test_the_page_warns_at_80_percent(cast, prompt, budget, browser_for):
    spend(cast, prompt, 8.5)
    html = browser_for("viewer").get("/costs/").content.decode()
    assert 'id="budget-notice-payments"' in html and "Budget warning: 85.0% spent" in html


def test_starting_a_run_in_the_browser_at_80_percent_says_so(cast, prompt, version, suite, budget, browser_for):
    spend(cast, prompt, 9.0)
    answer = browser_for("author").post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "core"}, follow=True)
    assert "Budget: Team payments has spent $9.00 of its $10.00 eval budget" in answer.content.decode()


# --- refusal at 100% -------------------------------------------------------------------------------------
def test_the_service_refuses_a_run_at_100_percent(cast, prompt, version, suite, budget):
    spend(cast, prompt, 10.0)
    with pytest.raises(budgets.BudgetExceeded) as refused:
        run_as(cast, "author", prompt, version, suite)
    assert refused.value.code == "budget_exceeded" and refused.value.status == 403
    assert "has spent $10.00 of its $10.00" in refused.value.detail
    assert not EvalRun.objects.filter(suite__slug="core").exists()


def test_the_api_refuses_a_run_at_100_percent_also_for_ci(cast, prompt, version, suite, budget, api_for):
    spend(cast, prompt, 12.0)
    ci = api_for("author", scopes=["prompts:read", "evals:run"])
    for trigger in ("manual", "ci"):
        answer = ci.post("/api/v1/eval-runs/", {"prompt": "loan-letter", "version": 1, "suite": "core",
                                                "trigger": trigger}, format="json")
        assert answer.status_code == 403
        assert answer.json()["code"] == "budget_exceeded" and "New runs are refused" in answer.json()["detail"]
    assert not EvalRun.objects.filter(suite__slug="core").exists()


def test_the_browser_refuses_a_run_at_100_percent(cast, prompt, version, suite, budget, browser_for):
    spend(cast, prompt, 10.5)
    answer = browser_for("author").post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "core"}, follow=True)
    html = answer.content.decode()
    assert answer.redirect_chain[-1][0] == "/prompts/loan-letter/versions/1/"
    assert "The run was not started (budget_exceeded)" in html
    assert not EvalRun.objects.filter(suite__slug="core").exists()


def test_a_scheduled_drift_run_is_skipped_and_reported(cast, prompt, version, suite, budget, environments,
                                                      django_capture_on_commit_callbacks):
    owner = Actor(user=cast["owner"])
    set_gate(actor=owner, prompt=prompt, suites=[{"suite": "core", "min_pass_rate": 0.9}])
    set_deployment(actor=owner, prompt=prompt, environment=Environment.objects.get(slug="production"),
                   version=version)
    spend(cast, prompt, 10.0)
    with django_capture_on_commit_callbacks(execute=False):
        assert drift.schedule_drift_runs() == []
    skipped = AuditEvent.objects.get(action="drift.skipped")
    assert skipped.data["code"] == "budget_exceeded" and skipped.data["suite"] == "core"
    assert not EvalRun.objects.filter(suite__slug="core").exists()


# --- the owner's override ------------------------------------------------------------------------------
def test_an_owner_overrides_the_month_with_a_reason_and_runs_go_on(cast, prompt, version, suite, budget, browser_for):
    spend(cast, prompt, 11.0)
    answer = browser_for("owner").post("/costs/teams/payments/override/",
                                       {"reason": "Incident 42 needs the full attack suite re-run."}, follow=True)
    assert "may go on past the budget" in answer.content.decode()
    override = BudgetOverride.objects.get()
    assert override.created_by == cast["owner"] and override.reason.startswith("Incident 42")
    event = AuditEvent.objects.get(action="budget.overridden")
    assert event.actor_username == "owner" and event.data["reason"].startswith("Incident 42")
    run = run_as(cast, "author", prompt, version, suite)
    assert run.budget.state == "overridden"
    html = browser_for("viewer").get("/costs/").content.decode()
    assert "Over budget, runs allowed this month" in html and "Incident 42 needs" in html


@pytest.mark.parametrize(("who", "code"), [("approver", "role_too_low"), ("viewer", "role_too_low"),
                                           ("outsider", "not_team_member")])
def test_nobody_but_owners_and_admins_overrides(cast, budget, who, code):
    with pytest.raises(PermissionDenied) as refused:
        budgets.override_budget(actor=Actor(user=cast[who]), team=cast["team"], reason="please")
    assert refused.value.code == code
    assert not BudgetOverride.objects.exists()


def test_an_override_needs_a_reason_a_budget_and_a_person_and_happens_once(cast, prompt, api_for):
    owner, team = Actor(user=cast["owner"]), cast["team"]
    with pytest.raises(ValidationFailed) as no_budget:
        budgets.override_budget(actor=owner, team=team, reason="needed")
    assert no_budget.value.code == "no_budget"
    budgets.set_budget(actor=owner, team=team, monthly_usd="5")
    spend(cast, prompt, 3.75)  # 75%
    with pytest.raises(Conflict) as early:
        budgets.override_budget(actor=owner, team=team, reason="needed")
    assert early.value.code == "budget_not_reached" and "75%" in early.value.detail
    spend(cast, prompt, 0.25)  # 80%: the warning, and where the page offers the form
    with pytest.raises(ValidationFailed) as no_reason:
        budgets.override_budget(actor=owner, team=team, reason="  ")
    assert "reason" in no_reason.value.field_errors
    with pytest.raises(PermissionDenied) as system:
        budgets.override_budget(actor=Actor.for_system(), team=team, reason="cron")
    assert system.value.code == "not_a_person"
    budgets.override_budget(actor=owner, team=team, reason="needed")
    with pytest.raises(Conflict) as twice:
        budgets.override_budget(actor=Actor(user=cast["admin"]), team=team, reason="again")
    assert twice.value.code == "budget_overridden"
    assert AuditEvent.objects.filter(action="budget.overridden").count() == 1


def test_the_page_offers_the_override_exactly_when_the_service_takes_it(cast, prompt, budget, browser_for, api_for):
    owner = browser_for("owner")
    spend(cast, prompt, 7.5)  # 75% of 10
    assert "Override for" not in owner.get("/costs/").content.decode()
    early = api_for("owner").post("/api/v1/teams/payments/budget/override", {"reason": "ahead of time"}, format="json")
    assert early.status_code == 409 and early.json()["code"] == "budget_not_reached"
    spend(cast, prompt, 0.5)  # 80%
    assert "Override for" in owner.get("/costs/").content.decode()
    owner.post("/costs/teams/payments/override/", {"reason": "the quarterly attack suite"})
    assert BudgetOverride.objects.count() == 1
    assert "Override for" not in owner.get("/costs/").content.decode()  # once a month


def test_the_page_offers_the_forms_only_to_owners(cast, prompt, budget, browser_for):
    spend(cast, prompt, 10.0)
    owner_html = browser_for("owner").get("/costs/").content.decode()
    assert "Save budget" in owner_html and "Override for" in owner_html
    viewer_html = browser_for("viewer").get("/costs/").content.decode()
    assert "Save budget" not in viewer_html and "Override for" not in viewer_html
    assert "Budget spent: new runs are refused" in viewer_html
    refused = browser_for("approver").post("/costs/teams/payments/budget/", {"monthly_usd": "1000"})
    assert refused.status_code == 403
    assert TeamBudget.objects.get().monthly_usd == 10


def test_an_admin_picks_a_team_to_give_it_a_budget(cast, browser_for):
    admin = browser_for("admin")
    html = admin.get("/costs/").content.decode()
    assert "Save budget" not in html and "choose it in the Team filter" not in html  # no budget anywhere yet
    assert "Choose a team in the Team filter above to set its budget." in html
    chosen = admin.get("/costs/", {"team": "growth"}).content.decode()
    assert "Monthly budget of growth" in chosen and "Save budget" in chosen
    admin.post("/costs/teams/growth/budget/", {"monthly_usd": "75"})
    assert TeamBudget.objects.get(team=cast["other_team"]).monthly_usd == 75


def test_the_api_reads_sets_and_overrides_a_budget(cast, prompt, api_for):
    owner = api_for("owner")
    assert owner.get("/api/v1/teams/payments/budget").json()["state"] == "none"
    put = owner.put("/api/v1/teams/payments/budget", {"monthly_usd": "20"}, format="json")
    assert put.status_code == 200 and put.json()["budget_usd"] == "20.00"
    spend(cast, prompt, 21.0)
    status = api_for("viewer").get("/api/v1/teams/payments/budget").json()
    assert (status["state"], status["spent_usd"], status["percent"]) == ("exceeded", 21.0, 105.0)
    bad = owner.put("/api/v1/teams/payments/budget", {"monthly_usd": "-1"}, format="json")
    assert bad.status_code == 400 and "monthly_usd" in bad.json()["field_errors"]
    low = api_for("approver").put("/api/v1/teams/payments/budget", {"monthly_usd": "999"}, format="json")
    assert low.status_code == 403 and low.json()["code"] == "role_too_low"
    assert api_for("outsider").get("/api/v1/teams/payments/budget").status_code == 404
    refused = api_for("viewer").post("/api/v1/teams/payments/budget/override", {"reason": "x"}, format="json")
    assert refused.status_code == 403
    made = owner.post("/api/v1/teams/payments/budget/override", {"reason": "quarter-end audit"}, format="json")
    assert made.status_code == 201 and made.json()["state"] == "overridden"
    assert made.json()["override_reason"] == "quarter-end audit"
    again = owner.post("/api/v1/teams/payments/budget/override", {"reason": "again"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "budget_overridden"
    assert AuditEvent.objects.filter(action="budget.set").count() == 1
    assert AuditEvent.objects.filter(action="budget.overridden").count() == 1
