"""Settings in real Chromium, on a desktop and at a phone's 390 px: an author makes an API token,
sees its secret once, and revokes it; an owner adds a member to their team. No page scrolls
sideways."""

import re

import pytest
from playwright.sync_api import expect

from registry.models import APIToken, Membership
from registry.services.tokens import hash_token
from tests.browser.journeys import assert_no_sideways_scroll, main_navigation
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

WIDTHS = [1280, 390]


@pytest.mark.parametrize("width", WIDTHS)
def test_an_author_makes_a_token_sees_it_once_and_revokes_it(signed_in, cast, width):
    page = signed_in("author", width)
    assert_no_sideways_scroll(page)
    main_navigation(page).get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="New token")).to_be_visible()
    expect(page.get_by_label("Expires in (days)")).to_have_value("90")
    assert_no_sideways_scroll(page)

    page.get_by_label("Name").fill("ci pipeline")
    page.get_by_role("checkbox", name=re.compile(r"^prompts:read\b")).check()
    page.get_by_role("checkbox", name=re.compile(r"^deploy\b")).check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret")
    expect(secret).to_have_text(re.compile(r"^pl_\S{40,}$"))
    expect(page.get_by_role("alert")).to_contain_text("shown this once")
    token = APIToken.objects.get(user=cast["author"])
    assert hash_token(secret.inner_text()) == token.key_hash and token.scopes == ["deploy", "prompts:read"]
    row = page.locator("tbody tr", has_text=token.prefix)
    expect(row).to_contain_text("never")
    expect(row).to_contain_text("Active")
    assert_no_sideways_scroll(page)

    page.goto("/settings/tokens/")  # the page again: the secret is gone for good
    expect(page.locator("#token-secret")).to_have_count(0)
    row = page.locator("tbody tr", has_text=token.prefix)
    row.get_by_role("button", name=re.compile("^Revoke")).click()
    expect(page.get_by_role("status")).to_contain_text("revoked: it stops working at once")
    expect(page.locator("tbody tr", has_text=token.prefix)).to_contain_text("Revoked")
    expect(page.locator("tbody tr", has_text=token.prefix).get_by_role("button")).to_have_count(0)
    assert_no_sideways_scroll(page)
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.parametrize("width", WIDTHS)
def test_an_owner_adds_a_member_to_their_team(signed_in, cast, width):
    UserFactory(username="newbie")
    page = signed_in("owner", width)
    main_navigation(page).get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Teams").click()
    assert_no_sideways_scroll(page)
    page.get_by_role("link", name="Payments").click()
    expect(page.get_by_role("heading", name="Payments", level=1)).to_be_visible()
    assert_no_sideways_scroll(page)

    page.get_by_label("Username").fill("newbie")
    page.get_by_label("Role", exact=True).select_option("author")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_contain_text("newbie is now author of Payments.")
    expect(page.get_by_label("Role of newbie", exact=True)).to_have_value("author")
    assert_no_sideways_scroll(page)
    assert Membership.objects.get(team=cast["team"], user__username="newbie").role == "author"

    page.get_by_label("Username").fill("nobody-here")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator(".field-errors")).to_contain_text("no active user 'nobody-here'")
    assert_no_sideways_scroll(page)
