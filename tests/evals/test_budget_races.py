"""Two runs starting at once, with real threads on PostgreSQL: past 80% they send one warning
between them (the (team, month) row decides), and at 99% both start, because the check reads
what results have cost so far and reserves nothing (docs/costs.md says so plainly)."""

import threading

import pytest
from django.db import connection

from core.actors import Actor
from evals import budgets
from evals.models import BudgetWarning, EvalRun
from evals.services import add_cases, create_suite, start_run
from tests.evals.spend import record_spend
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db(transaction=True)

CASES = [{"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]}]


@pytest.fixture
def at(postgres, cast, prompt, version):
    """``at(spent)``: payments has a $10.00 budget and spent ``spent`` this month; a suite to run."""
    owner = Actor(user=cast["owner"])
    suite = create_suite(actor=owner, slug="core", name="Core", team=cast["team"])
    add_cases(actor=owner, suite=suite, cases=CASES)
    budgets.set_budget(actor=owner, team=cast["team"], monthly_usd="10")
    webhooks.create_subscription(actor=owner, url="http://127.0.0.1:9/hook", events=["budget.warning"],
                                 team=cast["team"])

    def spend(amount):
        record_spend(prompt, cast["author"], [amount], llm=cast["llm"])
        return suite

    return spend


def start_together(cast, prompt, version, suite, n=2):
    """``n`` threads start a run each once all are ready; returns what each got (a run or an error)."""
    barrier, outcomes = threading.Barrier(n), [None] * n

    def start(i):
        try:
            barrier.wait(timeout=10)
            outcomes[i] = start_run(actor=Actor(user=cast["author"]), prompt=prompt, version=version, suite=suite)
        except Exception as exc:  # noqa: BLE001 - the test reports what each thread got
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_two_runs_starting_at_once_past_80_percent_send_one_warning(at, cast, prompt, version):
    suite = at(8.5)
    outcomes = start_together(cast, prompt, version, suite, n=4)
    assert all(isinstance(o, EvalRun) for o in outcomes), outcomes
    assert BudgetWarning.objects.count() == 1
    assert Delivery.objects.filter(event="budget.warning").count() == 1


def test_two_runs_starting_at_once_at_99_percent_both_start(at, cast, prompt, version):
    suite = at(9.9)
    outcomes = start_together(cast, prompt, version, suite)
    assert all(isinstance(o, EvalRun) for o in outcomes), outcomes  # no reservation: both run
    at(0.1)  # their results (or any others) bring the month to 100%: the next is refused
    with pytest.raises(budgets.BudgetExceeded):
        start_run(actor=Actor(user=cast["author"]), prompt=prompt, version=version, suite=suite)
