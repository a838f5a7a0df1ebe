"""Audit streams in real Chromium, on a desktop and at a phone's 390 px: an admin finds them from the
webhooks page, creates one to a local SIEM receiver, sees how far behind it is, and sees it up to
date once a batch is delivered. No page scrolls sideways."""

import re

import pytest
from playwright.sync_api import expect

from tests.webhooks.siem_receiver import SiemReceiver
from webhooks import audit_stream
from webhooks.models import AuditStream

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def assert_no_sideways_scroll(page):
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url} is {width}px wide in a {inner}px window"


@pytest.fixture
def siem():
    receiver = SiemReceiver()
    yield receiver
    receiver.stop()


@pytest.mark.parametrize("width", [1280, 390])
def test_an_admin_creates_an_audit_stream_and_sees_its_lag_then_it_up_to_date(chromium, live_server, cast, siem,
                                                                             width):
    context = chromium.new_context(base_url=live_server.url, viewport={"width": width, "height": 860})
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Prompts", level=1)).to_be_visible()

        page.goto("/settings/webhooks/")
        page.get_by_role("link", name="Audit streams (SIEM)").click()
        expect(page.get_by_role("heading", name="No audit streams yet")).to_be_visible()
        assert_no_sideways_scroll(page)
        page.get_by_role("link", name="Create the first audit stream").click()
        expect(page.get_by_role("heading", name="New audit stream", level=1)).to_be_visible()
        assert_no_sideways_scroll(page)

        page.get_by_label("Name").fill("splunk-prod")
        page.get_by_label("Receiver URL").fill(siem.url)
        page.get_by_label("Format").select_option("splunk_hec")
        page.get_by_label("Token").fill("hec-browser-token")
        page.get_by_label("Events per batch").fill("500")
        page.get_by_role("button", name="Create audit stream").click()

        expect(page.get_by_role("heading", name=re.compile("splunk-prod"), level=1)).to_be_visible()
        stream = AuditStream.objects.get(name="splunk-prod")
        behind = audit_stream.head_sequence()
        expect(page.locator("#stream-status")).to_contain_text(f"{behind} events")
        expect(page.locator("#stream-status")).to_contain_text("Last success")
        expect(page.locator("#stream-status")).to_contain_text("never")
        assert "hec-browser-token" not in page.content()
        assert_no_sideways_scroll(page)

        audit_stream.run(stream.pk)  # what the worker does on beat's next tick
        # The status block refreshes itself (htmx, every 5 s): no reload.
        expect(page.locator("#stream-status")).to_contain_text(f"event {behind} acknowledged", timeout=15_000)
        expect(page.locator("#stream-status")).to_contain_text("0 events, 0 s")
        page.reload()
        expect(page.get_by_text("Up to date").first).to_be_visible()
        assert siem.acknowledged()[0]["headers"]["Authorization"] == "Splunk hec-browser-token"

        page.get_by_role("link", name="Audit streams").first.click()
        expect(page.get_by_role("link", name="splunk-prod")).to_be_visible()
        assert_no_sideways_scroll(page)
        page.get_by_role("link", name="splunk-prod").click()
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_text("Stream paused")).to_be_visible()
        assert not AuditStream.objects.get(pk=stream.pk).active
    finally:
        context.close()
