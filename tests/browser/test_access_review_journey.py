"""Compliance in real Chromium, on a desktop and at a phone's 390 px: opens the access review from the
audit log, reads who may approve what, downloads the CSV, signs the review off (the stale sign-in
asks for the password again) and sees it in the history; then filters the audit log to one deploy
request and reads the export panel's account of what it would export. No page scrolls sideways.

With ``PROMPTLEDGER_SCREENSHOTS=DIR`` set, the pages are also saved as PNGs in DIR at 1280 and
390 px (``docs/screens/`` holds the committed ones); without it nothing is written."""

import csv
import io
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from approvals import administration
from approvals import services as approvals
from core.actors import Actor
from registry.models import Environment
from registry.services import create_version
from risk.models import AccessReviewSignOff
from tests.browser.journeys import assert_no_sideways_scroll, shoot
from tests.factories import PromptFactory, version_body

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def acting(user, request_id):
    return Actor(user=user, request_id=request_id, authenticated_at=timezone.now())


@pytest.fixture
def deployed(cast):
    """loan-letter (tier 1, no gate) v2 requested, approved and deployed to production (request A),
    and v1 requested for staging (request B, open)."""
    administration.update_policy(actor=Actor.for_system(), tier=1, requires_gate=False, reason="test")
    loan = PromptFactory(slug="loan-letter", team=cast["team"], owner=cast["owner"], tier=1)
    made = []
    for content in ("Write to {{ name }}.", "Dear {{ name }},"):
        body = version_body(content)
        made.append(create_version(actor=acting(cast["author"], f"r-{content[:4]}"), prompt=loan,
                                   messages=body["messages"], variables=body["variables"], model=body["model"],
                                   message=content)[0])
    production, staging = (Environment.objects.get(slug=s) for s in ("production", "staging"))
    a = approvals.open_request(actor=acting(cast["author"], "r-open-a"), prompt=loan, version=made[1],
                               environment=production, rationale="friendlier")
    approvals.approve(actor=acting(cast["approver"], "r-approve-a"), request=a)
    a.refresh_from_db()
    approvals.deploy(actor=acting(cast["author"], "r-deploy-a"), request=a)
    approvals.open_request(actor=acting(cast["author"], "r-open-b"), prompt=loan, version=made[0],
                           environment=staging, rationale="try it")
    return {**cast, "a": a}


@pytest.mark.parametrize("width", [1280, 390])
def test_compliance_reviews_access_signs_it_off_and_follows_one_deploy_request(
    signed_in, deployed, settings, tmp_path, width
):
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 0  # every sign-in is already too old to sign with
    page = signed_in("compliance", width)
    page.goto("/audit/")
    expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    assert_no_sideways_scroll(page)

    page.locator("#access-review-link").click()
    expect(page.get_by_role("heading", name="Access review", level=1)).to_be_visible()
    approver = page.locator('#access-review tr[data-user="approver"]')
    expect(approver.locator(".team-roles")).to_contain_text("payments: approver")
    expect(approver.locator(".can-approve")).to_contain_text("payments tier 1: every prompt")
    expect(page.locator('#access-review tr[data-user="author"] .can-approve')).to_have_text("nothing")
    expect(page.locator('#approvers tr[data-team="payments"][data-tier="0"]')).to_contain_text("no prompt of this tier")
    assert_no_sideways_scroll(page)

    with page.expect_download() as download:
        page.locator("#export-csv").click()
    path = tmp_path / "access-review.csv"
    download.value.save_as(path)
    rows = {row["username"]: row for row in csv.DictReader(io.StringIO(path.read_text()))}
    assert rows["approver"]["team_roles"] == "payments:approver"
    assert rows["compliance"]["site_roles"] == "compliance"

    fingerprint = page.locator("#report-fingerprint").inner_text()
    expect(page.locator("#reauth-field")).to_be_visible()
    page.get_by_label("Comment").fill("Every account justified; nobody to remove this quarter.")
    page.get_by_label("Your password").fill(PASSWORD)
    page.locator("#sign-off-button").click()
    expect(page.get_by_role("status")).to_contain_text("signed off")
    expect(page.locator("#signoff-history")).to_contain_text("Every account justified")
    shoot(page, "access-review")
    signed = AccessReviewSignOff.objects.get()
    assert (signed.reviewer_name, signed.auth_method, signed.fingerprint) == ("compliance", "password", fingerprint)
    assert_no_sideways_scroll(page)

    page.goto("/audit/")
    page.get_by_label("Deploy request").fill(str(deployed["a"].pk))
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"deploy_request={deployed['a'].pk}"))
    rows = page.locator("#event-results tbody tr")
    expect(rows).to_have_count(4)  # opened, approved, deployed, and the pointer move of the deploy
    expect(page.locator("#export-summary")).to_contain_text(f"4 events: about deploy request #{deployed['a'].pk}")
    expect(page.locator("#export-jsonl")).to_have_attribute("href", re.compile(rf"deploy_request={deployed['a'].pk}"))
    shoot(page, "audit-log-deploy-request")
    assert_no_sideways_scroll(page)
