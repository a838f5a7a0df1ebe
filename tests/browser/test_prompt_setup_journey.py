"""Setting a prompt up in real Chromium, from a team with no prompt at all: the owner creates a prompt
with its first version, names its approvers, sets its gate, runs the gate's suite from the version
page, watches today's verdict turn to a pass, deploys it to staging once the approver has approved, and
stops it there with the kill switch, after a confirmation that names what stops; then serves it
again. The same pages at a phone's 390 px scroll no sideways.

With ``PROMPTLEDGER_SCREENSHOTS=DIR`` set, the pages are also saved as PNGs in DIR at 1280 and
390 px (``docs/screens/`` in the repository holds the committed ones); without it nothing is
written."""

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from core.actors import Actor
from evals import queueing, runner
from evals import services as evals
from evals.models import EvalRun, Gate
from registry.models import Deployment, Prompt
from tests.browser.journeys import SCREENS, assert_no_sideways_scroll, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

@pytest.fixture
def team_with_a_suite(cast, monkeypatch):
    """Team payments (owner, approver, author, viewer) with no prompt, a registered model, and a suite
    whose cases fit a prompt with a ``name`` variable. The test plays the worker."""
    monkeypatch.setattr(queueing, "enqueue", lambda run_id, copies=1: None)
    author = Actor(user=cast["author"])
    suite = evals.create_suite(actor=author, slug="letters-core", name="Letters core", team=cast["team"])
    evals.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
        {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
    ])
    assert not Prompt.objects.exists()
    return cast


def work_on(run_id):
    """The worker's code in its own thread, as a Celery worker would run it."""

    def work():
        try:
            runner.execute(run_id)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive()


def test_an_owner_sets_a_prompt_up_from_an_empty_team_and_uses_the_kill_switch(signed_in, team_with_a_suite):
    page = signed_in("owner")
    expect(page.get_by_role("heading", name="No prompts yet")).to_be_visible()
    shoot(page, "prompt-list-empty")
    page.get_by_role("link", name="New prompt").first.click()
    expect(page.get_by_role("heading", name="New prompt", level=1)).to_be_visible()

    # A mistake first: the template uses a variable it does not declare. Nothing is saved.
    page.get_by_label("Slug").fill("claim-reply")
    page.get_by_label("Name").fill("Claim reply")
    page.get_by_label("Risk tier").select_option("1")
    page.get_by_label("Tags").fill("claims, email")
    page.get_by_label("PII").check()
    page.get_by_label("Template of message 1").fill("Reply to {{ name }} about claim {{ claim_id }}.")
    page.get_by_label("Variables").fill('{"name": {"type": "string", "required": true}}')
    page.get_by_label("Change note").fill("first draft")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_role("alert")).to_contain_text("The prompt was not created")
    expect(page.locator("#id_messages-0-content_errors")).to_contain_text("claim_id")
    assert not Prompt.objects.exists()
    expect(page.get_by_label("Slug")).to_have_value("claim-reply")  # what was typed is kept
    shoot(page, "prompt-new-error")

    page.get_by_label("Template of message 1").fill("Reply to {{ name }} about their claim.")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_role("status")).to_contain_text("Prompt claim-reply created with version 1.")
    expect(page.get_by_role("heading", name=re.compile("^Claim reply"), level=1)).to_be_visible()
    prompt = Prompt.objects.get(slug="claim-reply")
    assert prompt.tier == 1 and prompt.tags == ["claims", "email"] and prompt.data_categories == ["pii"]

    # Settings: name the approvers.
    page.get_by_role("navigation", name="Prompt sections").get_by_role("link", name="Settings").click()
    approvers = page.get_by_role("region", name="Approvers")
    approvers.get_by_label("Approver (approver)").check()
    approvers.get_by_label("Owner (owner)").check()
    approvers.get_by_role("button", name="Save approvers").click()
    expect(page.get_by_role("status")).to_contain_text("Approvers saved.")
    expect(page.get_by_role("region", name="Approvers").get_by_label("Approver (approver)")).to_be_checked()
    shoot(page, "prompt-settings")

    # The gate: one suite at 90%, with today's verdict.
    page.get_by_role("navigation", name="Prompt sections").get_by_role("link", name="Gate").click()
    verdict = page.get_by_role("region", name="Today's verdict")
    expect(verdict).to_contain_text("the tier-1 policy requires a gate suite, and none is configured")
    gate = page.get_by_role("region", name="Suites and thresholds")
    gate.get_by_label("Letters core").check()
    gate.get_by_label("Minimum pass rate for letters-core").fill("2")
    gate.get_by_role("button", name="Save the gate").click()
    expect(page.locator("#id_rate_0_errors")).to_contain_text("from 0 to 1")
    page.get_by_role("region", name="Suites and thresholds").get_by_label(
        "Minimum pass rate for letters-core").fill("0.9")
    page.get_by_role("button", name="Save the gate").click()
    expect(page.get_by_role("status")).to_contain_text("Gate saved.")
    expect(page.get_by_role("region", name="Today's verdict")).to_contain_text(
        "no finished run of 'letters-core' on this content hash")
    assert [s.suite.slug for s in Gate.objects.get(prompt=prompt).suites.all()] == ["letters-core"]
    shoot(page, "prompt-gate")

    # An eval run from the version page's Run picker; the verdict turns to a pass.
    page.goto("/prompts/claim-reply/versions/1/")
    run_panel = page.get_by_role("region", name="Evals")
    run_panel.get_by_label("Suite").select_option("letters-core")
    run_panel.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/evals/runs/\d+/$"))
    work_on(EvalRun.objects.get().pk)
    expect(page.locator("h1 .run-status")).to_have_text("Completed", timeout=15_000)
    page.goto("/prompts/claim-reply/gate/")
    expect(page.get_by_role("region", name="Today's verdict")).to_contain_text("meets the gate")
    expect(page.get_by_role("region", name="Today's verdict").get_by_text("Fails")).to_have_count(0)

    # Deploy v1 to staging through the approval flow (tier 1: a passing gate and one approval by
    # someone who neither wrote the version nor asked for the deploy).
    page.goto("/prompts/claim-reply/versions/1/")
    page.get_by_role("link", name="Request deploy").click()
    page.get_by_label("Environment").select_option("staging")
    page.get_by_label("Rationale").fill("first release")
    page.get_by_role("button", name="Open request").click()
    expect(page.locator(".requirement[data-key=approvals]")).to_contain_text("0 of 1")
    expect(page.locator("#deploy-button")).to_have_count(0)
    approver = signed_in("approver")
    approver.get_by_role("link", name="Approvals").first.click()
    approver.get_by_role("link", name="claim-reply v1 to staging", exact=True).click()
    approver.get_by_label("Comment").fill("Reads well; the gate passed")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("Approved.")).to_be_visible()
    page.reload()
    expect(page.locator(".requirement[data-key=approvals]")).to_contain_text("1 of 1")
    page.locator("#deploy-button").click()
    page.get_by_role("button", name="Deploy v1 to Staging").click()  # the deploy asks first (issue 17)
    expect(page.get_by_role("status")).to_contain_text("Deployed.")
    page.goto("/prompts/claim-reply/")
    staging = page.get_by_role("row", name=re.compile("^Staging"))
    expect(staging).to_contain_text("v1")
    expect(staging).to_contain_text("Serving")

    # The kill switch: a confirmation that names what stops, and a reason it requires.
    staging.get_by_role("link", name=re.compile("^Stop serving")).click()
    expect(page.get_by_role("heading", name="Stop serving claim-reply in Staging?")).to_be_visible()
    stops = page.get_by_role("region", name="What stops")
    expect(stops).to_contain_text("v1")
    expect(stops).to_contain_text("423")
    expect(stops).to_contain_text("prompt_disabled")
    shoot(page, "kill-switch-confirm")
    page.get_by_role("button", name="Stop serving in Staging").click()
    expect(page.locator("#id_reason_errors")).to_contain_text("required")
    assert not Deployment.objects.get(prompt=prompt, environment__slug="staging").disabled
    page.get_by_label("Reason").fill("quotes the wrong claim number")
    page.get_by_role("button", name="Stop serving in Staging").click()
    expect(page.get_by_role("status")).to_contain_text("Kill switch on: claim-reply is no longer served in Staging")
    staging = page.get_by_role("row", name=re.compile("^Staging"))
    expect(staging).to_contain_text("Disabled")
    expect(staging).to_contain_text("quotes the wrong claim number")
    pointer = Deployment.objects.get(prompt=prompt, environment__slug="staging")
    assert pointer.disabled and pointer.disabled_reason == "quotes the wrong claim number"
    shoot(page, "prompt-detail-kill-switched")

    # And on again.
    staging.get_by_role("link", name=re.compile("^Serve again")).click()
    expect(page.get_by_role("heading", name="Serve claim-reply in Staging again?")).to_be_visible()
    page.get_by_label("Reason").fill("fixed the claim number")
    page.get_by_role("button", name="Serve again in Staging").click()
    expect(page.get_by_role("status")).to_contain_text("Kill switch off")
    expect(page.get_by_role("row", name=re.compile("^Staging"))).to_contain_text("Serving")

    # The same pages on a phone: nothing scrolls sideways.
    phone = signed_in("owner", width=390)
    for url, name in [
        ("/", "prompt-list"),
        ("/new-prompt/", "prompt-new"),
        ("/prompts/claim-reply/", "prompt-detail"),
        ("/prompts/claim-reply/settings/", "prompt-settings"),
        ("/prompts/claim-reply/gate/", "prompt-gate"),
        ("/prompts/claim-reply/kill-switch/?environment=staging&disabled=true", "kill-switch-confirm"),
    ]:
        phone.goto(url)
        expect(phone.locator("h1")).to_be_visible()
        assert_no_sideways_scroll(phone)
        shoot(phone, name)
        if name == "prompt-detail":  # the kill switch is within reach, not behind a sideways-scrolled table
            box = phone.get_by_role("link", name="Stop serving in Staging").bounding_box()
            assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= 390, box
    if SCREENS:  # the desktop shots of the pages not taken above
        for url, name in [
            ("/", "prompt-list"), ("/new-prompt/", "prompt-new"), ("/prompts/claim-reply/", "prompt-detail"),
        ]:
            page.goto(url)
            shoot(page, name)


def test_a_viewer_is_offered_none_of_the_setup_forms(signed_in, team_with_a_suite):
    page = signed_in("viewer", width=390)
    expect(page.get_by_role("heading", name="No prompts yet")).to_be_visible()
    expect(page.get_by_role("link", name="New prompt")).to_have_count(0)
    expect(page.get_by_text("ask a team owner")).to_be_visible()
    assert_no_sideways_scroll(page)
