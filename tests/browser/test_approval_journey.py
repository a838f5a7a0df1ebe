"""A Tier-0 deploy in real Chromium: the owner opens a request from the version page, two named
approvers approve it in two separate browser sessions, the owner deploys it. The author sees no
approve button, and the API refuses the author with ``author_cannot_approve``."""

import pytest
from playwright.sync_api import expect

from approvals.models import DeployRequest
from registry.models import Deployment
from tests.approvals.conftest import flow, production  # noqa: F401 - fixtures shared with the service tests

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def session(chromium, live_server, username):
    """A separate browser context (its own cookies), signed in as ``username``."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Prompts", level=1)).to_be_visible()
    return context, page


def test_tier_0_request_approved_by_two_named_approvers_in_two_sessions_then_deployed(
    chromium, live_server, flow, api_for  # noqa: F811 - the fixture imported above
):
    owner_ctx, owner = session(chromium, live_server, "owner")
    owner.goto("/prompts/loan-letter/versions/2/")
    owner.get_by_role("link", name="Request deploy").click()
    owner.get_by_label("Environment").select_option("production")
    owner.get_by_label("Rationale").fill("Friendlier opening line")
    owner.get_by_role("button", name="Open request").click()
    expect(owner.get_by_text("Request opened.")).to_be_visible()
    expect(owner.locator(".requirement[data-key=approvals]")).to_contain_text("0 of 2")
    expect(owner.locator("#deploy-button")).to_have_count(0)
    request_url = owner.url
    request_id = DeployRequest.objects.get().pk

    author_ctx, author = session(chromium, live_server, "author")
    author.goto(request_url)
    expect(author.get_by_role("heading", name="Decisions")).to_be_visible()
    expect(author.locator("#approve-button")).to_have_count(0)
    expect(author.locator("#cannot-decide")).to_contain_text("you authored content in this version")
    refused = api_for("author").post(f"/api/v1/deploy-requests/{request_id}/approve", {}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "author_cannot_approve"

    contexts = [owner_ctx, author_ctx]
    for name in ("approver", "approver2"):
        ctx, approver = session(chromium, live_server, name)
        contexts.append(ctx)
        approver.get_by_role("link", name="Approvals").click()
        approver.get_by_role("link", name="loan-letter v2 to production", exact=True).click()
        approver.get_by_label("Comment").fill(f"Reviewed by {name}")
        approver.get_by_role("button", name="Approve").click()
        expect(approver.get_by_text("Approved.")).to_be_visible()
        expect(approver.locator(".decision-list")).to_contain_text(f"Reviewed by {name}")

    owner.reload()
    expect(owner.locator(".requirement[data-key=approvals]")).to_contain_text("2 of 2")
    owner.locator("#deploy-button").click()
    owner.get_by_role("button", name="Deploy v2 to Production").click()  # the deploy asks first (issue 17)
    expect(owner.get_by_text("Deployed.")).to_be_visible()
    expect(owner.locator(".request-state")).to_contain_text("Deployed")
    timeline = owner.locator("#timeline-title + .table-wrap")
    for action in ("deploy_request.opened", "deploy_request.approved", "deploy_request.deployed"):
        expect(timeline).to_contain_text(action)
    pointer = Deployment.objects.get(prompt__slug="loan-letter", environment__slug="production")
    assert pointer.version.number == 2
    for ctx in contexts:
        ctx.close()
