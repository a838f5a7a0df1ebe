"""The API docs (Swagger UI at /api/docs/, Redoc at /api/redoc/) render from this server alone: every
request the page makes goes to this host (no CDN, no Google Fonts), and the page runs under its
Content-Security-Policy without a violation."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

# Serialized like every browser test: its flush then leaves the rows the next one restores.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DOCS = {
    "/api/docs/": ".swagger-ui .info .title",
    "/api/redoc/": "h1",
}


def _origin(url):
    """The origin a request goes to; a blob: URL's is the page's that made it."""
    if url.startswith("blob:"):
        url = url[len("blob:"):]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.mark.parametrize("path", sorted(DOCS))
def test_the_api_docs_load_nothing_from_another_host_and_break_no_policy(page, live_server, path):
    requested, console = [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))

    response = page.goto(path)
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(DOCS[path]).first).to_contain_text("Promptledger API")
    page.wait_for_load_state("networkidle")

    elsewhere = [url for url in requested if not url.startswith("data:") and _origin(url) != live_server.url]
    assert elsewhere == [], f"requests that left {live_server.url}: {elsewhere}"
    assert any(url.endswith(".js") for url in requested)  # the page's own script files, from here
    violations = [line for line in console if "Content Security Policy" in line or line.startswith("pageerror")]
    assert violations == []
