"""Every page works under its Content-Security-Policy (no inline script, nothing from elsewhere),
and the API docs come from this server, so they load with no internet."""

import pytest
from playwright.sync_api import expect

# Serialized like every browser test: its flush then leaves the rows the next one restores.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _violations(page):
    seen = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    page.on("requestfailed", lambda request: seen.append(f"failed: {request.url}"))
    return seen


def test_the_api_docs_render_from_this_server_under_the_policy(page, live_server):
    seen = _violations(page)
    response = page.goto("/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Promptledger API")
    assert seen == []


def test_a_signed_in_page_with_htmx_and_a_chart_runs_under_the_policy(page, log_in, cast, prompt, version):
    seen = _violations(page)
    log_in("author")
    page.goto("/prompts/loan-letter/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert seen == []
