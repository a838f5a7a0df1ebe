"""A run's summary is counted by the database (on PostgreSQL the verdicts too), with the rule the
Python tally keeps for SQLite: an assertion counts under its name, or its type when it has none."""

import pytest

from core.actors import Actor
from evals import runner, services
from evals.runner import finishing


def verdict(kind, passed, name=None):
    return {"type": kind, "name": name, "passed": passed, "score": 1.0 if passed else 0.0, "reason": "",
            "weight": 1.0, "details": {}}


@pytest.fixture
def run(cast, prompt, version, monkeypatch):
    monkeypatch.setattr(services.queueing, "enqueue", lambda run_id, copies=1: None)
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="summary", name="Summary", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": f"n{i}"}, "assertions": [{"type": "contains", "value": "n"}]} for i in range(4)
    ])
    return services.start_run(actor=author, prompt=prompt, version=version, suite=suite)


def test_the_summary_counts_what_the_results_hold(run):
    items = runner.claim(run.pk, 10, "w")
    fields = [
        {"passed": True, "latency_ms": 10.0, "input_tokens": 5, "output_tokens": 2, "cost_usd": 0.001,
         "verdicts": [verdict("contains", True), verdict("regex", True, name="tone")]},
        {"passed": False, "latency_ms": 30.0, "input_tokens": 7, "output_tokens": 3, "cost_usd": 0.002,
         "verdicts": [verdict("contains", False, name=""), verdict("regex", False, name="tone")]},
        {"passed": False, "error": "rate_limited: slow down", "verdicts": []},
        {"passed": True, "latency_ms": 20.0, "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.0005,
         "verdicts": [verdict("contains", True), verdict("llm_judge", True, name="polite")]},
    ]
    assert runner.write_results("w", list(zip(items, fields, strict=True))) == 4
    summary = finishing.summarize(run)
    assert summary == {
        "done": 4, "passed": 2, "failed": 2, "errors": 1,
        "assertions": {
            "contains": {"passed": 2, "total": 3, "pass_rate": 2 / 3},
            "polite": {"passed": 1, "total": 1, "pass_rate": 1.0},
            "tone": {"passed": 1, "total": 2, "pass_rate": 0.5},
        },
        "input_tokens": 13, "output_tokens": 6, "cost_usd": 0.0035,
        "latency_ms": {"p50": 20.0, "p95": 29.0},
    }
    assert finishing._tally(run) == dict(finishing._tally_in_python(run))


def test_a_run_without_results_sums_to_zero(run):
    assert finishing.summarize(run) == {
        "done": 0, "passed": 0, "failed": 0, "errors": 0, "assertions": {}, "input_tokens": 0, "output_tokens": 0,
        "cost_usd": 0.0, "latency_ms": {"p50": None, "p95": None},
    }
