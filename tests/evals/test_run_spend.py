"""The spend roll-up (``RunSpend``) that the costs page and budgets read: kept by the database's
own triggers, it must always equal the sum of the results it stands for, per run and month, in
any ``TIME_ZONE``, whoever wrote the results (the ORM one by one or in bulk, the runner's batched
SQL, an UPDATE that moves results in time, a delete of some results or of the whole run)."""

import datetime

import pytest
from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.test import override_settings
from django.utils import timezone

from core.actors import Actor
from evals import costs
from evals.models import Case, EvalResult, EvalRun, RunSpend
from tests.evals.spend import record_spend


def live(**filters):
    """Per (run, month in the current zone): cost and results summed from the results themselves."""
    rows = (
        EvalResult.objects.filter(**filters).annotate(month=TruncMonth("created_at"))
        .values("run", "month").annotate(cost=Sum("cost_usd"), n=Count("id")).order_by()
    )
    return {(r["run"], r["month"].date() if hasattr(r["month"], "date") else r["month"]): (round(r["cost"], 9), r["n"])
            for r in rows}


def rolled(**filters):
    rows = (
        RunSpend.objects.filter(results__gt=0, **filters).annotate(month=TruncMonth("bucket"))
        .values("run", "month").annotate(cost=Sum("cost_usd"), n=Sum("results")).order_by()
    )
    return {(r["run"], r["month"].date() if hasattr(r["month"], "date") else r["month"]): (round(r["cost"], 9), r["n"])
            for r in rows}


@pytest.fixture
def llm(cast):
    return cast["llm"]


def test_every_insert_is_rolled_up_one_by_one_and_in_bulk(cast, prompt, llm):
    run = record_spend(prompt, cast["author"], [0.5, 0.25, 1.0], llm=llm)
    more = [Case.objects.create(suite=run.suite, position=10 + i, vars={}, assertions=[]) for i in range(40)]
    EvalResult.objects.bulk_create(
        EvalResult(run=run, case=case, position=case.position, passed=True, cost_usd=0.01) for case in more
    )
    assert rolled() == live()
    assert rolled()[(run.pk, costs.this_month())] == (pytest.approx(2.15), 43)


def test_moving_results_in_time_moves_their_spend(cast, prompt, llm):
    last_month = costs.month_bounds(costs.add_months(costs.this_month(), -1))[0] + datetime.timedelta(days=3)
    run = record_spend(prompt, cast["author"], [2.0, 3.0], llm=llm)
    EvalResult.objects.filter(run=run, position=1).update(created_at=last_month)
    assert rolled() == live() == {
        (run.pk, costs.this_month()): (3.0, 1),
        (run.pk, costs.add_months(costs.this_month(), -1)): (2.0, 1),
    }
    EvalResult.objects.filter(run=run).update(cost_usd=1.5)
    assert rolled() == live()


def test_deleting_results_or_the_whole_run_takes_their_spend_away(cast, prompt, llm):
    kept = record_spend(prompt, cast["author"], [1.0], llm=llm)
    run = record_spend(prompt, cast["author"], [0.5, 0.25, 0.125], llm=llm)
    EvalResult.objects.filter(run=run, position=2).delete()
    assert rolled() == live()
    assert rolled()[(run.pk, costs.this_month())] == (0.625, 2)
    EvalRun.objects.filter(pk=run.pk).delete()
    assert rolled() == live() == {(kept.pk, costs.this_month()): (1.0, 1)}
    assert not RunSpend.objects.filter(run_id=run.pk).exists()


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu", "UTC"])
def test_months_are_exact_in_any_time_zone(cast, prompt, llm, zone):
    """Quarter-hour buckets: a result written one minute either side of midnight on the 1st, in a
    zone 5:30, -3:30 or 5:45 off UTC, counts in the right month of that zone."""
    run = record_spend(prompt, cast["author"], [1.0, 2.0, 4.0], llm=llm)
    with override_settings(TIME_ZONE=zone), timezone.override(zone):
        first = costs.month_bounds(costs.this_month())[0]
        for position, when in ((1, first - datetime.timedelta(minutes=1)), (2, first),
                               (3, first + datetime.timedelta(minutes=14, seconds=59))):
            EvalResult.objects.filter(run=run, position=position).update(created_at=when)
        assert rolled() == live() == {
            (run.pk, costs.add_months(costs.this_month(), -1)): (1.0, 1),
            (run.pk, costs.this_month()): (6.0, 2),
        }
        actor = Actor(user=cast["admin"])
        report = costs.spend_report(actor, costs.cost_query(actor, group_by="team", since=costs.add_months(
            costs.this_month(), -1).strftime("%Y-%m")))
        assert [(r["month"], r["cost_usd"], r["results"]) for r in report] == [
            (costs.this_month().strftime("%Y-%m"), 6.0, 2),
            (costs.add_months(costs.this_month(), -1).strftime("%Y-%m"), 1.0, 1),
        ]


def test_the_runners_batched_write_is_rolled_up(cast, prompt, version, monkeypatch):
    """``runner.write_results`` (on PostgreSQL one statement from arrays, the statement-level
    trigger summing the whole batch in one upsert; on SQLite a bulk insert), and the single-result
    path it falls back to."""
    from evals import queueing, runner, services

    monkeypatch.setattr(queueing, "enqueue", lambda run_id, copies=1: None)
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="batched", name="Batched", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": f"n{i}"}, "assertions": [{"type": "contains", "value": "n"}]} for i in range(33)
    ])
    run = services.start_run(actor=author, prompt=prompt, version=version, suite=suite)
    EvalRun.objects.filter(pk=run.pk).update(status=EvalRun.RUNNING, started_at=timezone.now())
    items = runner.claim(run.pk, 33, "w")
    batch = [(item, {"passed": True, "cost_usd": 0.001 * item.position}) for item in items[:32]]
    assert runner.write_results("w", batch) == 32
    assert runner.write_result(items[32], "w", {"passed": False, "cost_usd": 1.0}) is True
    assert RunSpend.objects.filter(run=run).count() == 1
    assert rolled() == live()
    cost = sum(0.001 * item.position for item in items[:32]) + 1.0
    assert rolled()[(run.pk, costs.this_month())] == (pytest.approx(cost), 33)
