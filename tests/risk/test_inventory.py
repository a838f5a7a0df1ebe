"""The data inventory: every visible prompt by data category with tier, team, owner, pinned model,
where it is live, named approvers and last gate result; one click from "which prompts touch PHI in
production?" to the list; the same rows as CSV (formula-safe) and JSON."""

import csv
import io

import pytest

from approvals import administration
from evals.gates import evaluate_gate
from tests.factories import PromptFactory

from .conftest import act, push

pytestmark = pytest.mark.django_db


@pytest.fixture
def inventory(register):
    loan, faq = (register["live"][s]["prompt"] for s in ("loan-letter", "faq-answer"))
    loan.data_categories = ["pii", "phi"]
    loan.save()
    administration.set_named_approvers(actor=act(register["owner"]), prompt=loan, approvers=["approver"])
    triage = PromptFactory(slug="claim-triage", name="=HYPERLINK(1)", team=register["team"], owner=register["owner"],
                           tier=1, data_categories=["phi"])
    push(register, triage, "Triage {{ name }}.")  # written, never deployed
    evaluate_gate(actor=act(register["owner"]), prompt=loan, version=register["live"]["loan-letter"]["v1"],
                  environment=register["production"], record_decision=True)
    return {**register, "loan": loan, "faq": faq, "triage": triage}


def test_one_click_lists_the_prompts_touching_phi_in_production(inventory, browser_for):
    client = browser_for("compliance")
    page = client.get("/models/inventory/").content.decode()
    assert '?category=phi&environment=production"' in page  # the one click
    html = client.get("/models/inventory/?category=phi&environment=production").content.decode()
    assert 'data-prompt="loan-letter"' in html and 'data-prompt="claim-triage"' not in html
    assert 'data-prompt="faq-answer"' not in html and "1 prompt" in html
    for text in ("offline-echo-1", "production v1", "approver", "passed", "payments · owner", "PHI"):
        assert text in html, text
    everywhere = client.get("/models/inventory/?category=phi").content.decode()
    assert 'data-prompt="claim-triage"' in everywhere and "Not live" in everywhere
    undeclared = client.get("/models/inventory/?category=undeclared").content.decode()
    assert 'data-prompt="faq-answer"' in undeclared and 'data-prompt="loan-letter"' not in undeclared


def test_the_csv_export_has_every_column_and_is_safe_in_a_spreadsheet(inventory, browser_for):
    answer = browser_for("compliance").get("/models/inventory/export/?format=csv&category=phi")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    by_slug = {row["prompt"]: row for row in rows}
    assert set(by_slug) == {"loan-letter", "claim-triage"}
    loan = by_slug["loan-letter"]
    assert (loan["tier"], loan["team"], loan["data_categories"], loan["model"]) == ("0", "payments", "pii phi",
                                                                                   "offline-echo-1")
    assert loan["live"] == "production:v1" and loan["named_approvers"] == "approver"
    assert loan["last_gate"].startswith("passed v1 production")
    assert by_slug["claim-triage"]["name"] == "'=HYPERLINK(1)"


def test_the_json_export_says_its_filters(inventory, browser_for):
    body = browser_for("compliance").get("/models/inventory/export/?format=json&tier=2").json()
    assert body["filters"]["tier"] == 2 and body["count"] == 1
    (item,) = body["prompts"]
    assert item["prompt"] == "faq-answer" and item["data_categories"] == [] and item["last_gate"] is None


def test_people_see_only_the_prompts_they_can_read(inventory, browser_for):
    html = browser_for("outsider").get("/models/inventory/").content.decode()
    assert "0 prompts" in html and "loan-letter" not in html
    assert browser_for("outsider").get("/models/inventory/export/?format=json").json()["count"] == 0


@pytest.mark.parametrize(("query", "field"), [
    ("category=secrets", "category"), ("environment=moon", "environment"), ("tier=9", "tier"), ("tier=x", "tier"),
])
def test_an_unknown_filter_is_a_400_naming_it(inventory, browser_for, query, field):
    for url in (f"/models/inventory/?{query}", f"/models/inventory/export/?format=csv&{query}"):
        answer = browser_for("compliance").get(url)
        assert answer.status_code == 400 and field.encode() in answer.content


def test_an_unknown_export_format_is_a_400(inventory, browser_for):
    answer = browser_for("compliance").get("/models/inventory/export/?format=xlsx")
    assert answer.status_code == 400 and b"xlsx" in answer.content
