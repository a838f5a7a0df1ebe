"""Real Chromium through Playwright's sync API against pytest-django's live server.

Debian's Chromium at /usr/bin/chromium is used as is; Playwright never downloads a browser. A
test waits on conditions (locators, ``expect``), never on fixed sleeps.
"""

import os
import shutil

import pytest

from tests.conftest import need_service

# Playwright's sync API runs an event loop in this thread; the ORM calls made from fixtures and
# tests here are plain synchronous calls, so Django's async-safety guard is switched off.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery"  # the factories' password


@pytest.fixture(scope="package")  # ends with tests/browser: Playwright runs an event loop
def chromium():
    need_service("Chromium", os.path.exists(CHROMIUM) or shutil.which("chromium"), "apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser context (no cookies) on the live server."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def log_in(page):
    """``log_in("author")`` signs in through the login form and lands on the prompt list."""

    def sign_in(username, password=PASSWORD):
        from playwright.sync_api import expect

        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Prompts", level=1)).to_be_visible()
        return page

    return sign_in


@pytest.fixture
def signed_in(chromium, live_server):
    """``signed_in("owner", width=390)``: another person's browser (a context of its own, downloads
    accepted), signed in through the login form and on the prompt list. Every one closes with the
    test; ``javascript=False`` checks a page works without script."""
    from playwright.sync_api import expect

    contexts = []

    def sign_in(username, width=1280, javascript=True):
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": width, "height": 900}, java_script_enabled=javascript,
            accept_downloads=True,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Prompts", level=1)).to_be_visible()
        return page

    yield sign_in
    for context in contexts:
        context.close()
