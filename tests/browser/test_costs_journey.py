"""An owner's eval costs in real Chromium, on a desktop and at a phone's 390 px: from the Evals
tabs to the cost page, the SVG bar chart of the team's spend, a monthly budget set through the
form, and the 80% warning that follows (on the page and in its gauge), then the chart by model.
No page scrolls sideways."""

import datetime

import pytest
from playwright.sync_api import expect

from evals import costs
from evals.models import TeamBudget
from tests.browser.journeys import assert_no_sideways_scroll
from tests.evals.spend import record_spend
from tests.factories import LLMModelFactory, PromptFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def spent(cast, prompt):
    """payments spent $42.00 this month: loan-letter $30.00 on the offline model, faq $12.00 on
    gpt-4o-mini; and $5.00 last month."""
    when = costs.month_bounds(costs.this_month())[0] + datetime.timedelta(hours=1)
    openai = LLMModelFactory(provider="openai", model_id="gpt-4o-mini-2024-07-18")
    faq = PromptFactory(slug="faq-answer-with-a-rather-long-slug-for-phones", team=cast["team"], owner=cast["owner"])
    record_spend(prompt, cast["author"], [10.0, 20.0], llm=cast["llm"], when=when)
    record_spend(faq, cast["author"], [12.0], llm=openai, when=when)
    record_spend(prompt, cast["author"], [5.0], llm=cast["llm"],
                 when=costs.month_bounds(costs.add_months(costs.this_month(), -1))[0] + datetime.timedelta(days=2))


@pytest.mark.parametrize("width", [1280, 390])
def test_an_owner_sees_the_cost_chart_and_a_budget_warning(signed_in, cast, spent, width):
    page = signed_in("owner", width)
    page.goto("/evals/")
    page.get_by_role("navigation", name="Evals sections").get_by_role("link", name="Costs").click()
    expect(page.get_by_role("heading", name="Costs", level=1)).to_be_visible()
    chart = page.locator("#cost-chart")
    expect(chart.locator("li")).to_have_count(1)  # grouped by team: payments
    expect(chart).to_contain_text("payments")
    expect(chart).to_contain_text("$47.00")
    expect(chart.locator("svg rect")).to_have_attribute("width", "1000.0")
    expect(page.locator("#budget-notice-payments")).to_have_count(0)
    assert_no_sideways_scroll(page)

    page.get_by_label("Monthly budget of payments (USD; empty removes it)").fill("50")
    page.get_by_role("button", name="Save budget").click()
    expect(page.get_by_text("Team payments's eval budget is $50.00 a month.")).to_be_visible()
    notice = page.locator("#budget-notice-payments")
    expect(notice).to_contain_text("Budget warning: 84.0% spent")
    expect(notice).to_contain_text("has spent $42.00 of its $50.00 eval budget")
    row = page.locator("#budget-payments")
    expect(row.locator(".gauge-fill")).to_have_attribute("width", "840.0")
    expect(row.locator(".budget-state")).to_have_text("84.0% · warning")
    assert TeamBudget.objects.get(team=cast["team"]).monthly_usd == 50
    assert_no_sideways_scroll(page)

    page.get_by_label("Group by").select_option("model")
    page.get_by_role("button", name="Apply").click()
    expect(chart.locator("li")).to_have_count(2)
    expect(chart.locator("li").first).to_contain_text("offline:offline-echo-1")
    expect(chart.locator("li").first).to_contain_text("$35.00")
    expect(page.locator("#cost-table")).to_contain_text("gpt-4o-mini-2024-07-18")
    assert_no_sideways_scroll(page)

    page.goto("/teams/payments/")
    expect(page.locator("#team-budget")).to_contain_text("has spent $42.00 of its $50.00 eval budget")
    assert_no_sideways_scroll(page)
