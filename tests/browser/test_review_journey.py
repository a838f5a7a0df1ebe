"""The journey a prompt author takes in the browser, in real Chromium: sign in, narrow the list to
prompts touching PII, compare two versions, push a new version that fails validation, fix it,
and sign out."""

import re

import pytest
from playwright.sync_api import expect

from core.actors import Actor
from registry.models import PromptVersion
from registry.services import create_version
from tests.factories import PromptFactory, version_body

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def prompts(cast):
    """loan-letter (PII, two versions) and faq-answer (no personal data) in team payments."""
    author = Actor(user=cast["author"])
    loan = PromptFactory(slug="loan-letter", name="Loan decision letter", team=cast["team"], owner=cast["owner"],
                         tier=0, data_categories=["pii", "financial"], tags=["letters"])
    PromptFactory(slug="faq-answer", name="FAQ answerer", team=cast["team"], owner=cast["owner"], tier=3)
    create_version(actor=author, prompt=loan, **{**version_body("Write to {{ name }}."), "message": "first"})
    create_version(actor=author, prompt=loan,
                   **{**version_body("Write kindly to {{ name }}.\nSign as the bank."), "message": "kinder"})
    return loan


def test_author_filters_compares_and_pushes_a_fixed_version(page, log_in, prompts):
    log_in("author")
    results = page.locator("#prompt-results")
    expect(results.get_by_role("link", name="FAQ answerer")).to_be_visible()

    # Narrow to PII: htmx swaps the results and keeps the filter in the address.
    page.get_by_label("Data category").select_option("pii")
    expect(page).to_have_url(re.compile(r"data_category=pii"))
    expect(results.get_by_role("link", name="FAQ answerer")).to_have_count(0)
    expect(results).to_contain_text("1 prompt matches these filters")
    results.get_by_role("link", name="Loan decision letter").click()

    # The prompt page: tier, data and the timeline; compare v1 → v2.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Loan decision letter")
    expect(page.locator(".tier-0").first).to_have_text("Tier 0")
    expect(page.get_by_role("link", name="Version 2")).to_be_visible()
    page.get_by_label("From version").select_option("1")
    page.get_by_label("To version").select_option("2")
    page.get_by_role("button", name="Show diff").click()
    expect(page).to_have_url(re.compile(r"/prompts/loan-letter/diff/\?from=1&to=2"))
    diff = page.locator("table.diff")
    expect(diff.locator("tr.diff-replace").first).to_contain_text("kindly")
    expect(diff.locator("tr.diff-insert")).to_contain_text("Sign as the bank.")

    # A template using an undeclared variable: the error sits under that template.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="loan-letter").click()
    page.get_by_role("link", name="New version").click()
    template = page.get_by_label("Template of message 1")
    expect(template).to_have_value("Write kindly to {{ name }}.\nSign as the bank.")
    template.fill("Dear {{ customer }},\nWe decided on your loan.")
    page.get_by_label("Change note").fill("Address the customer directly")
    page.get_by_role("button", name="Save version").click()
    error = page.locator("#id_messages-0-content_errors")
    expect(error).to_contain_text("'customer' is not a declared variable (declared: name)")
    expect(page.get_by_label("Template of message 1")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Template of message 1")).to_have_value("Dear {{ customer }},\nWe decided on your loan.")
    expect(page.get_by_role("alert")).to_contain_text("1 problem to fix")
    assert PromptVersion.objects.filter(prompt=prompts).count() == 2

    # Fix it and save: the new version's page says so.
    page.get_by_label("Template of message 1").fill("Dear {{ name }},\nWe decided on your loan.")
    page.get_by_role("button", name="Save version").click()
    expect(page).to_have_url(re.compile(r"/prompts/loan-letter/versions/3/$"))
    expect(page.get_by_role("status")).to_contain_text("Version 3 saved.")
    expect(page.locator("pre.template")).to_have_text("Dear {{ name }},\nWe decided on your loan.")
    expect(page.get_by_text("Address the customer directly")).to_be_visible()

    # Sign out with the header's button; the list then asks to sign in again.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to Promptledger")).to_be_visible()


def test_keyboard_users_can_skip_to_content_and_see_focus(page, log_in, prompts):
    log_in("viewer")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    outline = skip.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    expect(page.get_by_role("link", name="Prompts", exact=True)).to_have_attribute("aria-current", "page")


def test_prompt_of_another_team_shows_a_not_found_page(page, log_in, prompts):
    log_in("outsider")
    response = page.goto("/prompts/loan-letter/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
