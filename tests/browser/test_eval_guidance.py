"""Evals that guide, in real Chromium at desktop and phone width: the Run picker offers the suites
that fit the version (the gate suite first and selected) and shows why the others are disabled; the
comparison of two runs shows the changed outputs side by side (stacked on a phone) with the words
that changed, sums at the top and filters. Neither page scrolls sideways at 390 px."""

import os
import re
import threading
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from core.actors import Actor
from evals import gates, queueing, runner, services
from evals.models import EvalRun, Suite
from registry.services import create_version
from tests.factories import version_body

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

FITS = [
    {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
    {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
    {"vars": {"name": "Linus"}, "assertions": [{"type": "contains", "value": "Write to"}]},
]
ACCOUNTS = [{"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]}] * 2 + [
    {"vars": {"name": f"N{i}", "account": f"AC-{i}"}, "assertions": [{"type": "contains", "value": "N"}]}
    for i in range(3)
]
LONG_NAME = "Pneumonoultramicroscopicsilicovolcanoconiosis-" * 3  # a long unbroken word must wrap, not widen


@pytest.fixture
def suites(cast, version, monkeypatch):
    monkeypatch.setattr(queueing, "enqueue", lambda run_id, copies=1: None)  # the test plays the worker
    author = Actor(user=cast["author"])
    for slug, name, cases in (("letters-core", "Letters", FITS), ("accounts", "Accounts", ACCOUNTS)):
        made = services.create_suite(actor=author, slug=slug, name=name, team=cast["team"])
        services.add_cases(actor=author, suite=made, cases=cases)
    gates.set_gate(actor=Actor(user=cast["owner"]), prompt=version.prompt,
                   suites=[{"suite": "letters-core", "min_pass_rate": 0.9}])


def work_on(run_id):
    def work():
        try:
            runner.execute(run_id)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()


SCREENS = os.environ.get("PROMPTLEDGER_SCREENSHOTS")  # a folder: each journey's pages are saved there


def shoot(page, name):
    if SCREENS:
        Path(SCREENS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENS) / f"{name}-{page.viewport_size['width']}.png"), full_page=True)


def assert_no_sideways_scroll(page):
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url} is {width}px wide in a {inner}px window"


def assert_inside_the_window(page, selector):
    wide = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector + ', ' + selector + ' *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .map(e => e.tagName + '.' + e.className)""",
        selector,
    )
    assert not wide, f"wider than the window: {wide}"


@pytest.mark.parametrize("width", [1280, 390])
def test_the_run_picker_selects_the_gate_suite_and_says_why_others_cannot_run(page, log_in, suites, width):
    page.set_viewport_size({"width": width, "height": 900})
    log_in("author")
    page.goto("/prompts/loan-letter/versions/1/")
    evals = page.get_by_role("region", name="Evals")
    picker = evals.get_by_label("Suite")
    expect(picker).to_have_value("letters-core")
    expect(picker.locator("optgroup").first).to_have_attribute("label", "Gate suites of this prompt")
    expect(picker.locator('option[value="accounts"]')).to_be_disabled()
    expect(picker.locator('option[value="letters-core"]')).to_be_enabled()
    why = evals.locator("#unfit-suites")
    expect(why.locator("summary")).to_have_text("1 suite cannot run on v1: why")
    why.locator("summary").click()
    expect(why.locator("li")).to_have_text("Accounts: 3 of 5 cases need variable `account`, which v1 does not declare.")
    assert_no_sideways_scroll(page)
    shoot(page, "run-picker")
    evals.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/evals/runs/\d+/$"))
    assert EvalRun.objects.get().suite.slug == "letters-core"


@pytest.mark.parametrize("width", [1280, 390])
def test_compare_shows_changed_outputs_side_by_side_with_sums_and_filters(page, log_in, cast, prompt, version, suites,
                                                                         width):
    author = Actor(user=cast["author"])
    content = (
        "{% if name == 'Ada' %}Write to Ada.{% else %}Dear {{ name }}, " + LONG_NAME + " nobody says this.{% endif %}"
    )
    second, _ = create_version(actor=author, prompt=prompt, **{**version_body(content), "message": "v2"})
    letters = Suite.objects.get(slug="letters-core")
    first = services.start_run(actor=author, prompt=prompt, version=version, suite=letters)
    work_on(first.pk)
    run = services.start_run(actor=author, prompt=prompt, version=second, suite=letters)
    work_on(run.pk)

    page.set_viewport_size({"width": width, "height": 900})
    log_in("viewer")
    page.goto(f"/evals/runs/{run.pk}/")
    page.get_by_role("link", name=f"Compare with run {first.pk}").click()
    expect(page).to_have_url(re.compile(rf"/compare/\?against={first.pk}$"))
    sums = page.get_by_role("region", name=re.compile(rf"^Run {run.pk}"))
    expect(sums.locator('[data-count="changed_output"] dd')).to_contain_text("2")
    expect(sums.locator('[data-count="regression"] dd')).to_have_text("1")
    cases = page.get_by_role("region", name="Cases")
    expect(cases.locator(".compare-case")).to_have_count(2)  # changed outputs only, by default
    grace = cases.locator('[data-case="2"]')
    expect(grace.locator(".compare-before .compare-output")).to_have_text("Write to Grace.")
    expect(grace.locator(".compare-now ins").first).to_have_text("Dear")
    expect(grace.locator(".compare-before del").first).to_have_text("Write to")
    before = grace.locator(".compare-before").bounding_box()
    now = grace.locator(".compare-now").bounding_box()
    if width >= 1000:
        assert before["x"] < now["x"] and abs(before["y"] - now["y"]) < 2, "side by side"
    else:
        assert before["y"] + before["height"] <= now["y"] + 1, "stacked on a phone"
    assert_no_sideways_scroll(page)
    shoot(page, "run-compare")

    cases.get_by_role("link", name=re.compile(r"^Regressions")).click()
    expect(page).to_have_url(re.compile(r"show=regressions"))
    rows = page.get_by_role("region", name="Cases").locator(".compare-case")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-case", "3")
    expect(rows.first).to_contain_text("regression")
    page.get_by_role("region", name="Cases").get_by_role("link", name=re.compile(r"^All cases")).click()
    expect(page.get_by_role("region", name="Cases").locator(".compare-case")).to_have_count(3)
    assert_no_sideways_scroll(page)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_request_page_shows_each_gate_suites_changed_outputs_and_links_the_comparison(
    page, log_in, cast, prompt, version, suites, width
):
    from approvals import services as approvals
    from registry.models import Environment
    from registry.services import set_deployment

    owner = Actor(user=cast["owner"])
    production = Environment.objects.get(slug="production")
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    second, _ = create_version(
        actor=Actor(user=cast["author"]), prompt=prompt,
        **{**version_body("Dear {{ name }}, " + LONG_NAME + " here is your letter."), "message": "v2"},
    )
    letters = Suite.objects.get(slug="letters-core")
    runs = []
    for v in (version, second):
        runs.append(services.start_run(actor=owner, prompt=prompt, version=v, suite=letters))
        work_on(runs[-1].pk)
    dr = approvals.open_request(actor=owner, prompt=prompt, version=second, environment=production, rationale="v2")

    page.set_viewport_size({"width": width, "height": 900})
    log_in("approver")
    page.goto(f"/approvals/requests/{dr.pk}/")
    evidence = page.locator("#gate-comparisons")
    expect(evidence.locator(".gate-comparison-sums")).to_contain_text("3 of 3 outputs changed")
    expect(evidence.locator("li.compare-case")).to_have_count(3)
    expect(evidence.locator("li.compare-case").first.locator(".compare-now ins").first).to_have_text("Dear")
    # The rest of the request page (its timeline) is another change's to narrow: this part stays inside.
    assert_inside_the_window(page, "#gate-comparisons")
    if SCREENS:
        evidence.screenshot(path=str(Path(SCREENS) / f"request-gate-comparisons-{width}.png"))
    evidence.get_by_role("link", name="Open the comparison of letters-core").click()
    expect(page).to_have_url(re.compile(rf"/evals/runs/{runs[1].pk}/compare/\?against={runs[0].pk}$"))
    expect(page.get_by_role("region", name="Cases").locator(".compare-case")).to_have_count(3)
