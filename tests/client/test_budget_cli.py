"""A team over its month's eval budget: ``promptledger eval`` (what CI runs) fails the job naming
``budget_exceeded`` and why, and the client raises ``BudgetExceeded`` (a ``Forbidden``) so a
caller can tell it from other refusals. Against a live server (run with ``PYTHONPATH=sdk`` until
the SDK copy in use has ``BudgetExceeded``)."""

import pytest

from core.actors import Actor
from evals import budgets
from evals import services as eval_services
from registry.services import issue_token
from tests.client.test_cli import cli
from tests.evals.spend import record_spend

CASES = [{"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]}]


@pytest.fixture
def over_budget(transactional_db, live_server, cast, prompt, version):
    owner = Actor(user=cast["owner"])
    suite = eval_services.create_suite(actor=owner, slug="letters-core", name="Letters", team=cast["team"])
    eval_services.add_cases(actor=owner, suite=suite, cases=CASES)
    budgets.set_budget(actor=owner, team=cast["team"], monthly_usd="5")
    record_spend(prompt, cast["author"], [5.0], llm=cast["llm"])
    _, token = issue_token(actor=Actor.for_system(), user=cast["author"], scopes=["prompts:read", "evals:run"])
    return {"url": live_server.url, "token": token}


def test_the_cli_fails_a_ci_run_naming_budget_exceeded(over_budget):
    done = cli("eval", "loan-letter", "--suite", "letters-core", "--version", "1", "--trigger", "ci",
               url=over_budget["url"], token=over_budget["token"])
    assert done.returncode == 2
    assert "budget_exceeded, HTTP 403" in done.stderr
    assert "has spent $5.00 of its $5.00 eval budget" in done.stderr and "New runs are refused" in done.stderr


def test_the_client_raises_budget_exceeded(over_budget):
    from promptledger.client import BudgetExceeded, Client, Forbidden

    client = Client(over_budget["url"], over_budget["token"])
    with pytest.raises(BudgetExceeded) as refused:
        client.post_json("eval-runs/", {"prompt": "loan-letter", "version": 1, "suite": "letters-core"},
                         accept=(202,))
    assert isinstance(refused.value, Forbidden) and refused.value.code == "budget_exceeded"
