"""The data inventory in real Chromium, as compliance uses it: one click from the inventory to the
prompts touching PHI in production, then that list downloaded as CSV, at a desktop's and a phone's
width, without sideways scrolling."""

import csv
import io
import re

import pytest
from playwright.sync_api import expect

from tests.browser.journeys import assert_no_sideways_scroll
from tests.risk.conftest import register  # noqa: F401 - fixtures shared with the service tests
from tests.risk.test_inventory import inventory  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.mark.parametrize("width", [1280, 390])
def test_compliance_finds_the_prompts_touching_phi_in_production_and_downloads_them(
    signed_in, inventory, width  # noqa: F811 - the fixture imported above
):
    page = signed_in("compliance", width)
    page.goto("/models/inventory/")
    expect(page.get_by_role("heading", name="Data inventory", level=1)).to_be_visible()
    page.get_by_role("navigation", name="In production, by category").get_by_role("link", name="PHI").click()
    expect(page).to_have_url(re.compile(r"category=phi&environment=production"))
    rows = page.locator("#inventory tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-prompt", "loan-letter")
    expect(page.locator("#inventory-count")).to_contain_text("1 prompt")
    assert_no_sideways_scroll(page)

    with page.expect_download() as download:
        page.locator("#export-csv").click()
    assert download.value.suggested_filename == "data-inventory.csv"
    table = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [row["prompt"] for row in table] == ["loan-letter"]
    assert set(table[0]["data_categories"].split()) == {"phi", "pii"} and "production" in table[0]["live"]
