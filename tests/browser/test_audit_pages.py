"""The audit journeys in real Chromium: compliance filters the log, verifies the chain, downloads a
JSONL export that verifies offline; anyone on the team reads a prompt's History tab."""

import re

import pytest
from playwright.sync_api import expect

from audit import signing
from audit.services import write_checkpoint
from audit.verify import verify_file
from core.actors import Actor
from registry.models import Environment
from registry.services import create_version, set_deployment
from tests.factories import PromptFactory, version_body

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def deployed(cast):
    """loan-letter v1 by the author, deployed to production by the owner, under a signed checkpoint."""
    loan = PromptFactory(slug="loan-letter", name="Loan decision letter", team=cast["team"], owner=cast["owner"],
                         tier=1, data_categories=["pii"])
    version, _ = create_version(actor=Actor(user=cast["author"]), prompt=loan,
                                **{**version_body("Write to {{ name }}."), "message": "first"})
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=loan, environment=production, version=version)
    write_checkpoint()
    return loan


def test_compliance_filters_verifies_and_exports_the_audit_log(page, log_in, deployed, tmp_path):
    log_in("compliance")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(page.locator(".chain-panel")).to_contain_text("Not verified yet")

    # Filter to deployments: only the owner's deployment is left.
    page.get_by_label("Action").select_option("deployment.changed")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"action=deployment\.changed"))
    rows = page.locator("#event-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("v1 deployed to production")
    expect(rows.first.get_by_role("link", name="owner")).to_be_visible()
    rows.first.get_by_text("Details").click()
    expect(rows.first.locator("pre.json")).to_contain_text('"to_version": 1')

    # Verify the chain now; the page comes back with the same filter and the chain in green.
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_role("status")).to_contain_text("The audit chain verified")
    expect(page).to_have_url(re.compile(r"action=deployment\.changed"))
    expect(page.locator(".chain-ok")).to_contain_text(re.compile(r"Verified: events 1\.\.\d+, signed up to event \d+"))

    # Export what is shown as JSONL: the file verifies offline against this server's key.
    expect(page.locator(".verify-command")).to_contain_text(signing.public_key_b64())
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSONL").click()
    path = tmp_path / "export.jsonl"
    download.value.save_as(path)
    report = verify_file(str(path), public_key=signing.public_key_b64())
    assert report.ok, report.summary()
    assert report.count == 1

    # The export is itself in the log.
    page.get_by_label("Action").select_option("audit.exported")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("compliance")


def test_history_tab_shows_who_deployed(page, log_in, deployed):
    log_in("viewer")
    page.goto("/prompts/loan-letter/")
    tabs = page.get_by_role("navigation", name="Prompt sections")
    expect(tabs.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    history = tabs.get_by_role("link", name="History")
    history.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/prompts/loan-letter/history/$"))
    expect(tabs.get_by_role("link", name="History")).to_have_attribute("aria-current", "page")
    deployment = page.locator("tbody tr", has_text="deployment.changed")
    expect(deployment).to_contain_text("v1 deployed to production")
    expect(deployment.get_by_role("link", name="owner")).to_be_visible()
    expect(page.locator("tbody tr", has_text="version.created")).to_contain_text("author")
