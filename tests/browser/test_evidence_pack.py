"""Compliance in real Chromium: opens a deployed Tier-0 request from the request list, downloads its
evidence pack with the page's button, and the downloaded ZIP verifies offline under ``python -S``
with the server's key pinned; at a phone's 390 px the button fits the screen. A request still pending
offers no pack."""

import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from approvals import services as approvals
from audit import signing
from tests.approvals.conftest import act, flow, production  # noqa: F401 - the Tier-0 world
from tests.risk.evidence_world import deployed  # noqa: F401 - the deployed request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REPO = Path(__file__).resolve().parents[2]


def test_compliance_downloads_the_evidence_pack_of_a_deployed_request(
    page, log_in, flow, production, deployed, tmp_path  # noqa: F811 - the fixtures imported above
):
    pending = approvals.open_request(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, version=flow["v1"], environment=production,
        rationale="back to the first letter",
    )
    log_in("compliance")
    page.goto("/approvals/requests/?status=deployed")
    page.get_by_role("link", name=deployed.title, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(deployed.title)
    button = page.get_by_role("link", name="Download evidence pack")
    expect(button).to_be_visible()
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == f"evidence-request-{deployed.pk}.zip"
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    done = subprocess.run(
        [sys.executable, "-S", "-m", "audit.verify", str(path), "--public-key", signing.public_key_b64()],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"OK: evidence pack of deploy request #{deployed.pk}")

    # A phone: the button fits the screen. (The page itself is being restyled; its diff and timeline
    # tables are not this test's.)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    box = page.get_by_role("link", name="Download evidence pack").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box

    page.goto(f"/approvals/requests/{pending.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(pending.title)
    expect(page.get_by_role("link", name="Download evidence pack")).to_have_count(0)
