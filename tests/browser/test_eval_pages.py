"""The evals journey in real Chromium: an author starts a run from a version page, watches its
progress update live (htmx polling) until it finishes, and filters the results to the failures;
the prompt page then draws its pass-rate chart."""

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from core.actors import Actor
from evals import queueing, runner, services
from evals.models import EvalRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CASES = [
    {"vars": {"name": "Ada"}, "expected": "Write to Ada.", "assertions": [{"type": "contains", "value": "Ada"}]},
    {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
    {"vars": {"name": "Linus"}, "assertions": [{"type": "contains", "value": "nobody says this", "name": "tone"}]},
]


@pytest.fixture
def suite(cast, version, monkeypatch):
    """Suite letters-core (three cases, the last one fails on the offline echo). The broker is left
    out: the test plays the worker, so it decides when the run makes progress."""
    monkeypatch.setattr(queueing, "enqueue", lambda run_id, copies=1: None)
    author = Actor(user=cast["author"])
    made = services.create_suite(actor=author, slug="letters-core", name="Letters", team=cast["team"])
    services.add_cases(actor=author, suite=made, cases=CASES)
    return made


def work_on(run_id):
    """Run the worker's code in its own thread, as a Celery worker would (Playwright's event loop
    owns this one)."""

    def work():
        try:
            runner.execute(run_id)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()


def test_author_runs_a_suite_watches_it_finish_and_filters_to_failures(page, log_in, suite):
    log_in("author")
    page.goto("/prompts/loan-letter/versions/1/")
    evals = page.get_by_role("region", name="Evals")
    expect(evals).to_contain_text("This version has not been evaluated yet.")
    evals.get_by_label("Suite").select_option("letters-core")
    evals.get_by_role("button", name="Run").click()

    # The run page: queued, polling for progress.
    expect(page).to_have_url(re.compile(r"/evals/runs/\d+/$"))
    run = EvalRun.objects.get()
    expect(page.get_by_role("status")).to_contain_text(f"Run {run.pk} queued: 3 cases of letters-core.")
    progress = page.locator("#run-live")
    expect(progress).to_contain_text("0 of 3 cases done")
    expect(progress).to_contain_text("waiting for a worker")
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()

    # A worker picks it up; the page notices by itself and shows the results.
    work_on(run.pk)
    expect(page.locator("h1 .run-status")).to_have_text("Completed", timeout=15_000)
    expect(progress).to_contain_text("3 of 3 cases done")
    expect(page.locator("#run-live")).not_to_have_attribute("hx-trigger", re.compile("every"))
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    summary = page.get_by_role("region", name="Summary")
    expect(summary).to_contain_text("67%")
    results = page.get_by_role("region", name="Results")
    expect(results.locator("tbody tr")).to_have_count(3)

    # Only the failures: output against expected and each assertion's verdict with its reason.
    results.get_by_role("link", name=re.compile(r"^Failures")).click()
    expect(page).to_have_url(re.compile(r"\?passed=false$"))
    rows = page.get_by_role("region", name="Results").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Fail")
    expect(rows.first.locator(".result-output")).to_have_text("Write to Linus.")
    expect(rows.first.locator(".verdict-no")).to_contain_text("tone")
    expect(rows.first.locator(".verdict-no")).to_contain_text("nobody says this")

    # The prompt page draws the pass rate per version with the vendored Chart.js.
    page.goto("/prompts/loan-letter/")
    charts = page.locator(".pass-rate-charts")
    expect(charts).to_be_visible()
    page.wait_for_function("() => window.Chart && Chart.getChart('pass-rate-by-version')")
    bars = page.evaluate("() => Chart.getChart('pass-rate-by-version').data.datasets[0].data")
    assert bars == [66.7]
    expect(page.locator(".chart-table")).not_to_have_attribute("open", "")


def test_viewer_sees_no_run_button_and_no_cancel(page, log_in, cast, prompt, version, suite):
    run = services.start_run(actor=Actor(user=cast["author"]), prompt=prompt, version=version, suite=suite)
    log_in("viewer")
    page.goto("/prompts/loan-letter/versions/1/")
    evals = page.get_by_role("region", name="Evals")
    expect(evals.get_by_role("link", name=f"Run {run.pk}")).to_be_visible()
    expect(evals.get_by_role("button", name="Run")).to_have_count(0)
    evals.get_by_role("link", name=f"Run {run.pk}").click()
    expect(page.locator("#run-live")).to_contain_text("0 of 3 cases done")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
