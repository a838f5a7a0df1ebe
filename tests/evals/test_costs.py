"""Eval spend per team, model, prompt and month: the numbers (known costs, summed by the
database), the JSON API, the CSV download with spreadsheet formulas neutralised, the page with its
chart, and who sees which team's spend."""

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.actors import Actor
from evals import costs
from tests.evals.spend import record_spend
from tests.factories import LLMModelFactory, PromptFactory

THIS = costs.this_month()
LAST = costs.add_months(THIS, -1)
RANGE = {"since": LAST.strftime("%Y-%m"), "until": THIS.strftime("%Y-%m")}


def mid(month):
    return costs.month_bounds(month)[0] + datetime.timedelta(days=10)


@pytest.fixture
def spent(cast, prompt):
    """payments: loan-letter 0.50 + 0.25 this month and 2.00 last month (offline), faq 1.00 this
    month (openai); growth: growth-mail 4.00 this month (offline)."""
    offline = cast["llm"]
    openai = LLMModelFactory(provider="openai", model_id="gpt-4o-mini-2024-07-18")
    faq = PromptFactory(slug="faq", team=cast["team"], owner=cast["owner"])
    mail = PromptFactory(slug="growth-mail", team=cast["other_team"], owner=cast["outsider"])
    author, outsider = cast["author"], cast["outsider"]
    record_spend(prompt, author, [0.5, 0.25], llm=offline, when=mid(THIS))
    record_spend(prompt, author, [2.0], llm=offline, when=mid(LAST))
    record_spend(faq, author, [1.0], llm=openai, when=mid(THIS))
    record_spend(mail, outsider, [4.0], llm=offline, when=mid(THIS))
    return {"faq": faq, "mail": mail}


def report(actor_user, **params):
    actor = Actor(user=actor_user)
    return costs.spend_report(actor, costs.cost_query(actor, **{**RANGE, **params}))


def test_spend_per_team_and_month_is_summed_from_every_result(cast, spent):
    rows = report(cast["admin"], group_by="team")
    assert [(r["team"], r["month"], r["cost_usd"], r["runs"], r["results"]) for r in rows] == [
        ("growth", THIS.strftime("%Y-%m"), 4.0, 1, 1),
        ("payments", THIS.strftime("%Y-%m"), 1.75, 2, 3),
        ("payments", LAST.strftime("%Y-%m"), 2.0, 1, 1),
    ]


def test_spend_per_model_and_per_prompt(cast, spent):
    by_model = {(r["provider"], r["model"], r["month"]): r["cost_usd"] for r in report(cast["admin"], group_by="model")}
    assert by_model == {
        ("offline", "offline-echo-1", THIS.strftime("%Y-%m")): 4.75,
        ("openai", "gpt-4o-mini-2024-07-18", THIS.strftime("%Y-%m")): 1.0,
        ("offline", "offline-echo-1", LAST.strftime("%Y-%m")): 2.0,
    }
    by_prompt = {(r["prompt"], r["team"], r["month"]): r["cost_usd"] for r in report(cast["admin"], group_by="prompt")}
    assert by_prompt == {
        ("growth-mail", "growth", THIS.strftime("%Y-%m")): 4.0,
        ("faq", "payments", THIS.strftime("%Y-%m")): 1.0,
        ("loan-letter", "payments", THIS.strftime("%Y-%m")): 0.75,
        ("loan-letter", "payments", LAST.strftime("%Y-%m")): 2.0,
    }


def test_the_month_range_and_the_team_filter_narrow_the_sum(cast, spent):
    only_this = report(cast["admin"], group_by="team", since=THIS.strftime("%Y-%m"), team="payments")
    assert [(r["team"], r["cost_usd"]) for r in only_this] == [("payments", 1.75)]
    assert report(cast["admin"], since=costs.add_months(LAST, -3).strftime("%Y-%m"),
                  until=costs.add_months(LAST, -1).strftime("%Y-%m")) == []


def test_the_report_is_one_query_however_many_results(cast, spent):
    actor = Actor(user=cast["compliance"])
    query = costs.cost_query(actor, group_by="prompt", **RANGE)
    actor.site_roles  # noqa: B018 - the actor's roles are read once per request, before the report
    with CaptureQueriesContext(connection) as captured:
        costs.spend_report(actor, query)
    assert len(captured.captured_queries) == 1
    assert "GROUP BY" in captured.captured_queries[0]["sql"].upper()


# --- who sees what --------------------------------------------------------------------------------
def test_a_viewer_sees_only_their_own_teams_spend(api_for, spent):
    body = api_for("viewer", scopes=["prompts:read"]).get("/api/v1/costs/", RANGE).json()
    assert {row["team"] for row in body["rows"]} == {"payments"}
    assert body["total_usd"] == 3.75


@pytest.mark.parametrize("who", ["compliance", "admin"])
def test_compliance_and_admins_see_every_teams_spend(api_for, spent, who):
    body = api_for(who).get("/api/v1/costs/", RANGE).json()
    assert {row["team"] for row in body["rows"]} == {"payments", "growth"}
    assert body["total_usd"] == 7.75


def test_an_outsider_sees_their_team_and_gets_404_for_another(api_for, browser_for, spent):
    client = api_for("outsider")
    assert {row["team"] for row in client.get("/api/v1/costs/", RANGE).json()["rows"]} == {"growth"}
    hidden = client.get("/api/v1/costs/", {"team": "payments"})
    assert hidden.status_code == 404 and hidden.json()["code"] == "team_not_found"
    assert browser_for("outsider").get("/costs/", {"team": "payments"}).status_code == 404
    assert browser_for("outsider").get("/costs/export/", {"team": "payments"}).status_code == 404


def test_bad_filters_are_a_400_naming_the_field(api_for, cast):
    client = api_for("viewer")
    for params, field in (({"group_by": "colour"}, "group_by"), ({"since": "2026-13"}, "since"),
                          ({"until": "soon"}, "until"), ({"since": "2026-12", "until": "2026-01"}, "since"),
                          ({"since": "2020-01", "until": "2026-12"}, "since")):
        answer = client.get("/api/v1/costs/", params)
        assert answer.status_code == 400, params
        assert field in answer.json()["field_errors"], params


def test_a_token_needs_the_read_scope(api_for, cast):
    answer = api_for("admin", scopes=["evals:run"]).get("/api/v1/costs/")
    assert answer.status_code == 403 and answer.json()["code"] == "scope_missing"


def test_the_api_documents_the_cost_report():
    from tests.routes import api_schema

    schema = api_schema()
    operation = schema["paths"]["/api/v1/costs/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"group_by", "team", "since", "until"}


# --- CSV and the page -----------------------------------------------------------------------------
def test_the_csv_export_has_every_row_and_neutralises_formulas(cast, spent, browser_for):
    hostile = LLMModelFactory(provider="openai", model_id="=HYPERLINK(\"http://evil.test\")")
    record_spend(spent["faq"], cast["author"], [0.125], llm=hostile, when=mid(THIS))
    answer = browser_for("compliance").get("/costs/export/", {**RANGE, "group_by": "model"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert "attachment" in answer["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["provider", "model", "month", "cost_usd", "runs", "results"]
    assert len(rows) == 1 + 4
    cells = {row[1]: row for row in rows[1:]}
    assert "'=HYPERLINK(\"http://evil.test\")" in cells
    assert cells["'=HYPERLINK(\"http://evil.test\")"][3] == "0.125000"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_the_page_shows_the_table_and_the_svg_chart(cast, spent, browser_for):
    answer = browser_for("viewer").get("/costs/", {**RANGE, "group_by": "prompt"})
    assert answer.status_code == 200
    html = answer.content.decode()
    assert 'id="cost-chart"' in html and "<svg" in html and 'id="cost-table"' in html
    assert "loan-letter (payments)" in html and "$2.75" in html and "growth-mail" not in html
    assert "Download CSV" in html
    assert 'href="/costs/"' in browser_for("viewer").get("/evals/").content.decode()  # the Evals tab


def test_the_page_with_no_spend_says_what_to_do(cast, browser_for):
    html = browser_for("viewer").get("/costs/").content.decode()
    assert "No eval spend" in html and "start a run from a prompt version" in html


def test_a_bad_month_on_the_page_is_said_and_the_default_range_shown(cast, browser_for):
    answer = browser_for("viewer").get("/costs/", {"since": "someday"})
    assert answer.status_code == 400 and "since must be a month" in answer.content.decode()
