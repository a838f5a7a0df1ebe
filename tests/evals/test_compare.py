"""Comparing two runs of a suite with known results: per case the verdict change, whether the
output changed, and the cost, latency and token deltas; the sums; the page's filters and word diff;
the API's fields."""

import html
import re

import pytest

from core.actors import Actor
from evals import compare, runner, services
from evals.models import EvalResult
from registry.diffing import word_diff
from registry.services import create_version
from tests.factories import version_body

pytestmark = pytest.mark.django_db

CASES = [
    {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
    {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
    {"vars": {"name": "Linus"}, "assertions": [{"type": "contains", "value": "nobody says this"}]},
    {"vars": {"name": "Alan"}, "assertions": [{"type": "contains", "value": "Write to"}]},
]
V2 = "{% if name == 'Ada' %}Write to Ada.{% else %}Dear {{ name }}, nobody says this.{% endif %}"


@pytest.fixture
def runs(cast, prompt, version):
    """Run 1 on v1 ("Write to {{ name }}."), run 2 on v2: case 1 the same output, case 2 changed
    and still passing, case 3 an improvement, case 4 a regression; costs, latencies and tokens set
    to known figures."""
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="letters-core", name="Letters", team=cast["team"])
    services.add_cases(actor=author, suite=suite, cases=CASES)
    second, _ = create_version(actor=author, prompt=prompt, **{**version_body(V2), "message": "v2"})
    made = []
    for v in (version, second):
        run = services.start_run(actor=author, prompt=prompt, version=v, suite=suite)
        made.append(runner.execute(run.pk))
    before, now = made
    EvalResult.objects.filter(run=before).update(cost_usd=0.001, latency_ms=100, input_tokens=10, output_tokens=5)
    EvalResult.objects.filter(run=now).update(cost_usd=0.0015, latency_ms=80, input_tokens=12, output_tokens=7)
    EvalResult.objects.filter(run=now, position=4).update(latency_ms=150)
    return now, before


def test_each_case_has_its_verdict_change_output_change_and_deltas(runs):
    now, before = runs
    diff = compare.compare_runs(now, before)
    assert [(c["position"], c["verdict"], c["output_changed"]) for c in diff["cases"]] == [
        (1, "still_passing", False),
        (2, "still_passing", True),
        (3, "improvement", True),
        (4, "regression", True),
    ]
    first, last = diff["cases"][0], diff["cases"][3]
    assert first["deltas"] == {"cost_usd": 0.0005, "latency_ms": -20.0, "input_tokens": 2, "output_tokens": 2}
    assert last["deltas"]["latency_ms"] == 50.0
    assert (last["passed"], last["against_passed"]) == (False, True)


def test_the_sums_count_each_change_and_total_each_measure(runs):
    now, before = runs
    diff = compare.compare_runs(now, before)
    assert diff["counts"] == {
        "cases": 4, "changed_output": 3, "regression": 1, "improvement": 1, "still_failing": 0,
        "still_passing": 2, "only_in_run": 0, "only_in_against": 0,
    }
    assert diff["totals"]["run"] == {"cost_usd": 0.006, "latency_ms": 390.0, "input_tokens": 48, "output_tokens": 28}
    against = {"cost_usd": 0.004, "latency_ms": 400.0, "input_tokens": 40, "output_tokens": 20}
    assert diff["totals"]["against"] == against
    assert diff["totals"]["delta"] == {"cost_usd": 0.002, "latency_ms": -10.0, "input_tokens": 8, "output_tokens": 8}
    assert [e["position"] for e in diff["regressions"]] == [4]
    assert [e["position"] for e in diff["improvements"]] == [3]
    assert diff["pass_rate_delta"] == pytest.approx(0.0)


def test_filters_pick_changed_outputs_regressions_improvements_or_all(runs):
    cases = compare.compare_runs(*runs)["cases"]

    def positions(which):
        return [c["position"] for c in compare.filtered(cases, which)]

    assert positions("changed") == [2, 3, 4]
    assert positions("regressions") == [4]
    assert positions("improvements") == [3]
    assert positions("all") == [1, 2, 3, 4]


def test_word_diff_marks_the_words_that_changed_and_keeps_each_text_whole():
    left, right = word_diff("Write to Grace.", "Dear Grace, nobody says this.")
    assert "".join(t for _, t in left) == "Write to Grace."
    assert "".join(t for _, t in right) == "Dear Grace, nobody says this."
    assert [t for k, t in left if k == "delete"] == ["Write to"]
    assert right[:2] == [("insert", "Dear"), ("equal", " Grace")]
    assert word_diff("x" * 20_000, "y") is None  # too long to diff on a page


def test_the_page_shows_sums_and_changed_outputs_side_by_side_with_their_words_marked(client, cast, runs):
    now, before = runs
    client.force_login(cast["viewer"])
    body = html.unescape(client.get(f"/evals/runs/{now.pk}/compare/", {"against": before.pk}).content.decode())
    assert re.search(r'data-count="changed_output"><dt>Changed output</dt><dd class="big-number">3 ', body)
    assert re.search(r'data-count="regression"><dt>Regressions</dt><dd class="big-number delta-down">1<', body)
    assert '<span class="delta-down">+$0.0020</span>' in body
    assert '<span class="delta-up">−10 ms</span>' in body
    shown = re.findall(r'data-case="(\d+)"', body)
    assert shown == ["2", "3", "4"]  # changed outputs by default
    case2 = re.search(r'data-case="2".*?</li>', body, re.S).group(0)
    assert "<del>Write to</del>" in case2 and "<ins>Dear</ins>" in case2
    assert case2.index("compare-before") < case2.index("compare-now")
    assert 'aria-current="page">Changed output <span class="count">3</span>' in body


@pytest.mark.parametrize(
    ("show", "cases"), [("regressions", ["4"]), ("improvements", ["3"]), ("all", ["1", "2", "3", "4"])]
)
def test_the_page_filters_cases(client, cast, runs, show, cases):
    now, before = runs
    client.force_login(cast["viewer"])
    body = client.get(f"/evals/runs/{now.pk}/compare/", {"against": before.pk, "show": show}).content.decode()
    assert re.findall(r'data-case="(\d+)"', body) == cases


def test_the_api_adds_counts_totals_and_cases_to_the_comparison(api_for, runs):
    now, before = runs
    data = api_for("viewer").get(f"/api/v1/eval-runs/{now.pk}/compare/", {"against": before.pk}).json()
    assert data["counts"]["changed_output"] == 3 and data["counts"]["regression"] == 1
    assert data["totals"]["delta"]["latency_ms"] == -10.0
    assert data["cases"][3] == {
        "case": data["regressions"][0]["case"], "position": 4, "verdict": "regression", "passed": False,
        "against_passed": True, "output_changed": True,
        "deltas": {"cost_usd": 0.0005, "latency_ms": 50.0, "input_tokens": 2, "output_tokens": 2},
    }


def test_a_run_page_offers_the_comparison_with_another_version_of_its_prompt(client, cast, prompt, runs):
    now, before = runs
    again = services.start_run(actor=Actor(user=cast["author"]), prompt=prompt, version=now.version, suite=now.suite)
    runner.execute(again.pk)  # a rerun of v2: newer than both, but the same content
    client.force_login(cast["viewer"])
    body = client.get(f"/evals/runs/{again.pk}/").content.decode()
    assert f'href="/evals/runs/{again.pk}/compare/?against={before.pk}">Compare with run {before.pk}</a>' in body
