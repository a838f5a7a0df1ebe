"""The model register in real Chromium, on a desktop and at a phone's 390 px: the risk person sees
the navigation's count of due reviews, lands on the due and overdue view, finds the overdue model in
red with the live prompts it carries, and signs its review: the stale sign-in asks for the password
again, restricting the model to tiers 2 and 3 names the Tier-0 prompt it affects (redrawn as the
choice changes), and the signed review records its method and time. No page scrolls sideways."""

import re

import pytest
from playwright.sync_api import expect

from risk.models import ModelReview
from tests.browser.journeys import assert_no_sideways_scroll
from tests.risk.conftest import overdue, register  # noqa: F401 - fixtures shared with the service tests

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

RED = "rgb(180, 35, 24)"  # --danger


@pytest.mark.parametrize("width", [1280, 390])
def test_risk_reviews_an_overdue_model_signing_with_the_password_again(
    signed_in, register, overdue, settings, width  # noqa: F811 - the fixtures imported above
):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 0  # every sign-in is already too old to sign with
    entry = overdue(9)
    page = signed_in("risk", width)
    if width < 860:  # the navigation is a menu on a phone (issue 17): open it
        page.locator(".nav-toggle-label").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.locator("#models-due-count")).to_have_text(re.compile(r"^1"))  # loaded by htmx
    assert_no_sideways_scroll(page)

    nav.get_by_role("link", name=re.compile("^Models")).click()
    expect(page.get_by_role("heading", name="Model register", level=1)).to_be_visible()
    expect(page.locator("#view-due")).to_have_attribute("aria-current", "page")
    row = page.locator("tr", has=page.get_by_role("link", name="offline-echo-1"))
    expect(row.locator(".badge.review-overdue")).to_have_text("Overdue 9 d")
    expect(row.locator(".review-cell")).to_have_css("color", RED)
    expect(row).to_contain_text("T0: 1")
    assert_no_sideways_scroll(page)

    row.get_by_role("link", name="offline-echo-1").click()
    live = page.locator("#live-prompts")
    expect(live).to_contain_text("loan-letter")
    expect(live).to_contain_text("faq-answer")
    expect(page.locator("#next-review dd")).to_have_css("color", RED)
    assert_no_sideways_scroll(page)

    page.locator("#review-button").click()
    expect(page.locator("#reauth-field")).to_be_visible()
    page.get_by_label("Findings").fill("Hallucinates interest rates under long contexts.")
    page.get_by_label("Evidence links").fill("https://evals.example/runs/77")
    page.get_by_label("Restrict to tiers").check()
    expect(page.locator("#affected-prompts")).to_contain_text("Choose the tiers")
    page.get_by_label("Tier 2").check()
    page.get_by_label("Tier 3").check()
    affected = page.locator("#affected-prompts")
    expect(affected).to_contain_text("This restriction affects 1 live prompt")
    expect(affected).to_contain_text("loan-letter")
    expect(affected).not_to_contain_text("faq-answer")
    assert_no_sideways_scroll(page)

    page.locator("#sign-review").click()  # no password typed: refused, nothing recorded
    expect(page.locator("#refusal")).to_contain_text("reauth_required")
    assert not ModelReview.objects.exists()
    page.get_by_label("Your password").fill(PASSWORD)
    page.locator("#sign-review").click()
    expect(page.get_by_text("It affects 1 live prompt.")).to_be_visible()
    history = page.locator("#review-history")
    expect(history).to_contain_text("Restrict to tiers (tiers 2, 3) by risk")
    expect(history).to_contain_text("signature: password entered at")  # plain words (issue 17)
    expect(history).to_contain_text("Affected live prompts: loan-letter (production, tier 0)")
    assert_no_sideways_scroll(page)

    review = ModelReview.objects.get()
    assert (review.auth_method, review.reviewer_name, review.allowed_tiers) == ("password", "risk", [2, 3])
    entry.refresh_from_db()
    assert entry.status == "restricted" and entry.next_review_due > entry.last_reviewed_at
