"""The review page finished and the pages a reviewer uses on a phone, in real Chromium (issue 17):
no page scrolls sideways at 390 px, the navigation is a menu there (with and without JavaScript),
a production deploy asks first naming the version and environment, the labels follow the deploy,
and the whole approval can be done with Tab, Enter and Space alone, with focus always visible.

With ``PROMPTLEDGER_SCREENSHOTS=DIR`` set, the request page, its deploy confirmation and the
navigation menu are also saved as PNGs in DIR at 1280 and 390 px (``docs/screens/`` holds the
committed ones); without it nothing is written."""

import re

import pytest
from playwright.sync_api import expect

from approvals import services
from approvals.models import Approval, DeployRequest
from evals.models import EvalRun
from registry.models import Deployment
from tests.approvals.conftest import act, flow, production  # noqa: F401 - fixtures shared with the service tests
from tests.browser.journeys import assert_no_sideways_scroll, shoot

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

@pytest.fixture
def request_for_v2(flow, production):  # noqa: F811 - the fixtures imported above
    return services.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v2"], environment=production,
        rationale="A friendlier opening line for every loan letter we send to customers",
    )


def test_the_reviewers_pages_do_not_scroll_sideways_at_390(signed_in, flow, request_for_v2):  # noqa: F811 - the fixture imported above
    run = EvalRun.objects.filter(version=flow["v2"]).first()
    page = signed_in("approver", width=390)
    for url in (
        "/", "/prompts/loan-letter/", f"/approvals/requests/{request_for_v2.pk}/", f"/evals/runs/{run.pk}/",
        "/prompts/loan-letter/diff/?from=1&to=2", "/approvals/", "/approvals/policies/",
    ):
        page.goto(url)
        expect(page.locator("h1")).to_be_visible()
        assert_no_sideways_scroll(page)
    # The diff is unified on a phone: the changed line shows once removed, once added, one above the other.
    page.goto("/prompts/loan-letter/diff/?from=1&to=2")
    changed = page.locator("table.diff tr.diff-replace").first
    old, new = changed.locator("td.text.old").bounding_box(), changed.locator("td.text.new").bounding_box()
    assert new["y"] >= old["y"] + old["height"] - 1 and old["width"] > 250, (old, new)
    # The tier policies list each requirement with one marker, not a bullet besides.
    page.goto("/approvals/policies/")
    assert page.locator(".check-list li").first.evaluate("el => getComputedStyle(el).listStyleType") == "none"
    # The audit log is another page's own work; the header and menu above it stay within the screen.
    page.goto("/audit/")
    header = page.locator(".site-header").evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert header[0] <= header[1]


def test_the_navigation_is_a_menu_at_390_that_opens_from_the_keyboard(signed_in, flow, request_for_v2):  # noqa: F811 - the fixture imported above
    page = signed_in("approver", width=390)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=re.compile("^Approvals"))).to_be_hidden()
    # The closed menu shows a dot once the pending count has loaded.
    dot = "el => getComputedStyle(el, '::after').content"
    expect(page.locator("#approvals-pending-count")).to_be_attached()
    assert page.locator(".nav-toggle-label").evaluate(dot) == '""'
    toggle = page.locator("#nav-toggle")
    for _ in range(6):
        page.keyboard.press("Tab")
        if toggle.evaluate("el => el === document.activeElement"):
            break
    expect(toggle).to_be_focused()
    outline = page.locator(".nav-toggle-label").evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Space")
    approvals = nav.get_by_role("link", name=re.compile("^Approvals"))
    expect(approvals).to_be_visible()
    expect(nav.locator("#approvals-pending-count")).to_have_text(re.compile(r"^1"))  # what waits for this approver
    shoot(page, "nav-menu")
    assert_no_sideways_scroll(page)
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name="Prompts")).to_be_focused()
    box = approvals.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    approvals.click()
    expect(page.get_by_role("heading", name="Approvals", level=1)).to_be_visible()
    expect(nav.get_by_role("link", name=re.compile("^Approvals"))).to_be_hidden()  # closed again on the next page


def test_the_menu_opens_without_javascript(signed_in, flow):  # noqa: F811 - the fixture imported above
    page = signed_in("viewer", width=390, javascript=False)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Audit")).to_be_hidden()
    page.get_by_text("Menu", exact=True).click()
    expect(nav.get_by_role("link", name="Audit")).to_be_visible()
    assert_no_sideways_scroll(page)


def test_a_production_deploy_asks_first_and_the_labels_follow_it(signed_in, flow, request_for_v2):  # noqa: F811 - the fixture imported above
    for name in ("approver", "approver2"):
        services.approve(actor=act(flow[name]), request=request_for_v2)
    page = signed_in("owner")
    page.goto(f"/approvals/requests/{request_for_v2.pk}/")
    expect(page.locator("#diff-title")).to_have_text("Diff: v1 (live) → v2")
    shoot(page, "request-detail")
    page.get_by_role("link", name="Deploy…").click()
    confirm = page.get_by_role("region", name="Deploy v2 to Production?")
    expect(confirm).to_contain_text("serves v1 now")
    shoot(page, "deploy-confirm")
    assert Deployment.objects.get(prompt=flow["v2"].prompt, environment__slug="production").version == flow["v1"]
    confirm.get_by_role("button", name="Deploy v2 to Production").click()
    expect(page.get_by_role("status")).to_contain_text("Deployed.")
    expect(page.locator("#diff-title")).to_have_text("Diff: v1 (was live) → v2 (live)")
    expect(page.locator("#live-now")).to_contain_text("v2 (this request's version)")
    assert Deployment.objects.get(prompt=flow["v2"].prompt, environment__slug="production").version == flow["v2"]


def test_cancelling_the_confirmation_deploys_nothing(signed_in, flow, request_for_v2):  # noqa: F811 - the fixture imported above
    for name in ("approver", "approver2"):
        services.approve(actor=act(flow[name]), request=request_for_v2)
    page = signed_in("owner", width=390)
    page.goto(f"/approvals/requests/{request_for_v2.pk}/")
    shoot(page, "request-detail")
    page.get_by_role("link", name="Deploy…").click()
    expect(page.get_by_role("button", name="Deploy v2 to Production")).to_be_visible()
    assert_no_sideways_scroll(page)
    shoot(page, "deploy-confirm")
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("button", name="Deploy v2 to Production")).to_have_count(0)
    request_for_v2.refresh_from_db()
    assert request_for_v2.status != DeployRequest.DEPLOYED


def tab_to(page, locator, *, limit=80):
    """Press Tab until ``locator`` has the focus; each stop must show where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("el => el === document.activeElement"):
            style = locator.evaluate(
                "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
            )
            assert style[0] != "none" and style[1] != "0px", f"no visible focus on {locator}: {style}"
            return
    raise AssertionError(f"{locator} never got the focus after {limit} Tabs")


def test_the_whole_approval_with_the_keyboard_alone(signed_in, flow, request_for_v2, settings):  # noqa: F811 - the fixture imported above
    services.approve(actor=act(flow["approver2"]), request=request_for_v2)
    settings.PROMPTLEDGER_REAUTH_MAX_AGE = 0  # every sign-in is already too old: the password is asked
    page = signed_in("approver")
    # From the inbox, by the keyboard only.
    tab_to(page, page.get_by_role("link", name="Approvals", exact=False).first)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Approvals", level=1)).to_be_visible()
    link = page.get_by_role("link", name="loan-letter v2 to production", exact=True)
    tab_to(page, link)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Decisions")).to_be_visible()
    tab_to(page, page.get_by_label("Comment"))
    page.keyboard.type("Read the diff and the gate")
    tab_to(page, page.get_by_label("Your password"))
    page.keyboard.type(PASSWORD)
    tab_to(page, page.get_by_role("button", name="Approve"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Approved.")
    assert Approval.objects.get(request=request_for_v2, user=flow["approver"]).auth_method == "password"
    # Deploy, confirmed, still by the keyboard alone.
    tab_to(page, page.get_by_role("link", name="Deploy…"))
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Deploy v2 to Production")
    tab_to(page, confirm)
    page.keyboard.press("Space")
    expect(page.get_by_role("status")).to_contain_text("Deployed.")
    request_for_v2.refresh_from_db()
    assert request_for_v2.status == DeployRequest.DEPLOYED
