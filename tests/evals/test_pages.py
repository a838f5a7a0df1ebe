"""The evals browser pages through Django's test client: runs, suites and their cases, starting a
run from a version page, a run's progress and results, comparing runs and the prompt page's chart.
Runs execute in process with ``runner.execute`` (the offline provider echoes the prompt)."""

import html
import io
import json
import re

import pytest

from core.actors import Actor
from evals import runner, services
from evals.models import Case, EvalRun, Suite
from registry.services import create_version
from tests.factories import PromptFactory, version_body

CASES = [
    {"vars": {"name": "Ada"}, "expected": "Write to Ada.", "assertions": [{"type": "contains", "value": "Ada"}]},
    {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "Grace"}]},
    {"vars": {"name": "Linus"}, "assertions": [{"type": "contains", "value": "nobody says this"}]},
]


@pytest.fixture
def as_user(client, cast):
    def sign_in(username):
        client.force_login(cast[username])
        return client

    return sign_in


@pytest.fixture
def suite(cast, version):
    author = Actor(user=cast["author"])
    made = services.create_suite(actor=author, slug="letters-core", name="Letters", team=cast["team"])
    services.add_cases(actor=author, suite=made, cases=CASES)
    return made


def run_of(cast, prompt, version, suite, username="author", execute=True):
    run = services.start_run(actor=Actor(user=cast[username]), prompt=prompt, version=version, suite=suite)
    return runner.execute(run.pk) if execute else run


def text(response):
    return html.unescape(response.content.decode())


def upload(client, name, body, **extra):
    handle = io.BytesIO(body.encode())
    handle.name = name
    return client.post("/evals/suites/letters-core/cases/upload/", {"file": handle, **extra})


# --- access ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/evals/", "/evals/suites/", "/evals/suites/new/", "/evals/runs/1/"])
def test_evals_pages_send_anonymous_visitors_to_the_login_page(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_nav_links_evals_to_the_runs_list_and_marks_it_current(as_user):
    body = text(as_user("viewer").get("/evals/"))
    assert '<a href="/evals/" aria-current="page">Evals</a>' in body
    assert "No runs yet" in body


def test_run_of_another_team_is_a_not_found_page(as_user, cast, prompt, version, suite):
    run = run_of(cast, prompt, version, suite)
    response = as_user("outsider").get(f"/evals/runs/{run.pk}/")
    assert response.status_code == 404
    assert "Not found" in text(response)


# --- runs list -------------------------------------------------------------------------------------


def test_runs_list_is_newest_first_and_filters_by_status(as_user, cast, prompt, version, suite):
    first = run_of(cast, prompt, version, suite)
    queued = run_of(cast, prompt, version, suite, execute=False)
    client = as_user("viewer")
    body = text(client.get("/evals/"))
    assert body.index(f"#{queued.pk}") < body.index(f"#{first.pk}")
    assert "0/3" in body  # the queued run's progress
    body = text(client.get("/evals/", {"status": "completed"}))
    assert f"#{first.pk}" in body and f"#{queued.pk}<" not in body
    assert "1 run matches these filters" in body
    partial = client.get("/evals/", {"suite": "letters-core"}, HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and f"#{first.pk}" in text(partial)


def test_runs_list_hides_runs_of_prompts_the_user_cannot_see(as_user, cast, prompt, version, suite):
    run = run_of(cast, prompt, version, suite)
    assert f"#{run.pk}" not in text(as_user("outsider").get("/evals/"))


# --- suites ----------------------------------------------------------------------------------------


def test_suites_list_shows_team_and_shared_suites_with_case_counts(as_user, cast, suite):
    Suite.objects.create(slug="shared-injection", name="Prompt injection")
    Suite.objects.create(slug="growth-only", name="Growth's", team=cast["other_team"])
    body = text(as_user("viewer").get("/evals/suites/"))
    assert "letters-core" in body and "shared-injection" in body and "growth-only" not in body
    row = re.search(r"letters-core</span></th>.*?<td class=\"num\">(\d+)</td>", body, re.S)
    assert row.group(1) == "3"
    assert "New suite" not in body  # viewers author nothing


def test_author_creates_a_suite_for_their_team(as_user, cast, db):
    client = as_user("author")
    form = text(client.get("/evals/suites/new/"))
    assert '<option value="payments">Payments</option>' in form
    assert "Shared (every team" not in form  # shared suites are for admins
    response = client.post("/evals/suites/new/", {"name": "Letters", "slug": "letters", "team": "payments"})
    assert response.status_code == 302 and response["Location"] == "/evals/suites/letters/"
    assert Suite.objects.get(slug="letters").team == cast["team"]
    again = client.post("/evals/suites/new/", {"name": "Letters", "slug": "letters", "team": "payments"})
    assert again.status_code == 400
    assert "already taken" in text(again)


def test_suite_page_lists_cases_and_links_to_the_api_export(as_user, suite):
    client = as_user("viewer")
    body = text(client.get("/evals/suites/letters-core/"))
    assert '"name": "Grace"' in body
    assert "Write to Ada." in body
    assert 'value="nobody says this"' in body
    assert 'href="/api/v1/suites/letters-core/cases/export?format=jsonl"' in body
    assert "Upload cases" not in body  # viewers cannot add cases
    export = client.get("/api/v1/suites/letters-core/cases/export", {"format": "jsonl"})
    assert export.status_code == 200
    assert [json.loads(line)["vars"]["name"] for line in export.content.decode().splitlines()] == [
        "Ada",
        "Grace",
        "Linus",
    ]


def test_author_uploads_cases_as_jsonl_and_as_json(as_user, suite):
    client = as_user("author")
    jsonl = '{"vars": {"name": "Edsger"}, "assertions": [{"type": "contains", "value": "E"}]}\n\n'
    response = upload(client, "more.jsonl", jsonl)
    assert response.status_code == 302
    as_json = json.dumps([{"vars": {"name": "Barbara"}, "assertions": [{"type": "regex", "value": "B.*"}]}])
    assert upload(client, "more.json", as_json).status_code == 302
    assert list(suite.cases.order_by("position").values_list("vars__name", flat=True)) == [
        "Ada",
        "Grace",
        "Linus",
        "Edsger",
        "Barbara",
    ]
    assert "letters-core gained 1 case." in text(client.get("/evals/suites/letters-core/"))


def test_upload_errors_name_the_line_and_write_nothing(as_user, suite):
    client = as_user("author")
    good = '{"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "A"}]}'
    bad = '{"vars": {"name": "Ada"}, "assertions": [{"type": "containz", "value": "A"}]}'
    response = upload(client, "cases.jsonl", f"{good}\n\n{bad}\n")
    assert response.status_code == 400
    body = text(response)
    assert re.search(
        r"<strong>Line 3</strong> <code>assertions\[0\]\.type</code>: 'containz' is not an assertion", body
    )
    broken = upload(client, "cases.jsonl", f"{good}\n{{not json\n")
    assert "line 2: not valid JSON" in text(broken)
    wrong = upload(client, "cases.txt", good)
    assert "choose a .jsonl, .json or .csv file" in text(wrong)
    assert Case.objects.filter(suite=suite).count() == 3


def test_viewer_cannot_upload_cases(as_user, suite):
    response = upload(
        as_user("viewer"), "cases.jsonl", '{"vars": {}, "assertions": [{"type": "contains", "value": "A"}]}'
    )
    assert response.status_code == 403
    assert Case.objects.filter(suite=suite).count() == 3


# --- starting a run from a version page ------------------------------------------------------------


def test_version_page_offers_run_only_to_those_who_may_run(as_user, cast, suite):
    Suite.objects.create(slug="growth-only", name="Growth's", team=cast["other_team"])
    Suite.objects.create(slug="shared-injection", name="Prompt injection")
    body = text(as_user("author").get("/prompts/loan-letter/versions/1/"))
    assert 'action="/evals/prompts/loan-letter/versions/1/run/"' in body
    assert '<option value="letters-core" selected>' in body and '<option value="shared-injection" disabled>' in body
    assert "growth-only" not in body
    viewer = text(as_user("viewer").get("/prompts/loan-letter/versions/1/"))
    assert "/run/" not in viewer
    assert "This version has not been evaluated yet." in viewer


def test_run_button_starts_a_manual_run_and_shows_its_page(as_user, suite):
    client = as_user("author")
    response = client.post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "letters-core", "trigger": "manual"})
    run = EvalRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evals/runs/{run.pk}/"
    assert (run.trigger, run.status, run.total) == ("manual", "queued", 3)
    body = text(client.get(response["Location"]))
    assert f"Run {run.pk} queued: 3 cases of letters-core." in body
    assert f'hx-get="/evals/runs/{run.pk}/progress/" hx-trigger="every 1s"' in body
    assert "0 of 3 cases done" in body


def test_viewer_cannot_start_a_run(as_user, suite):
    response = as_user("viewer").post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "letters-core"})
    assert response.status_code == 403
    assert not EvalRun.objects.exists()


def test_a_run_that_cannot_start_says_why(as_user, cast, version):
    services.create_suite(actor=Actor(user=cast["author"]), slug="empty", name="Empty", team=cast["team"])
    client = as_user("author")
    response = client.post("/evals/prompts/loan-letter/versions/1/run/", {"suite": "empty"})
    assert response.status_code == 400
    assert "The run was not started:</strong> suite 'empty' has no cases" in text(response)
    assert 'href="/prompts/loan-letter/versions/1/"' in text(response)
    assert not EvalRun.objects.exists()


# --- a run's page ----------------------------------------------------------------------------------


def test_progress_partial_polls_until_the_run_finishes_then_reloads_the_page(as_user, cast, prompt, version, suite):
    run = run_of(cast, prompt, version, suite, execute=False)
    client = as_user("viewer")
    live = client.get(f"/evals/runs/{run.pk}/progress/", HTTP_HX_REQUEST="true")
    assert live.status_code == 200 and 'hx-trigger="every 1s"' in text(live)
    runner.execute(run.pk)
    done = client.get(f"/evals/runs/{run.pk}/progress/", HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and done["HX-Refresh"] == "true"


def test_finished_run_shows_summary_and_filters_to_failures(as_user, cast, prompt, version, suite):
    run = run_of(cast, prompt, version, suite)
    client = as_user("viewer")
    body = text(client.get(f"/evals/runs/{run.pk}/"))
    assert f"/evals/runs/{run.pk}/progress/" not in body and 'hx-trigger="every' not in body  # it polls nothing
    assert re.search(r"Pass rate</dt><dd class=\"big-number\">67%", body)
    assert "Latency p95" in body and "Tokens" in body
    assert re.search(r"<code>contains</code></th><td class=\"num\">2 / 3</td>", body)
    assert body.count('class="result-pass"') == 2 and body.count('class="result-fail"') == 1
    failures = text(client.get(f"/evals/runs/{run.pk}/", {"passed": "false"}))
    assert failures.count('class="result-fail"') == 1 and 'class="result-pass"' not in failures
    assert "Write to Linus." in failures
    assert "nobody says this" in failures  # the failing assertion's reason
    assert f'href="/evals/runs/{run.pk}/?passed=false" aria-current="page">Failures' in failures


def test_creator_cancels_a_queued_run_and_viewer_may_not(as_user, cast, prompt, version, suite):
    run = run_of(cast, prompt, version, suite, execute=False)
    viewer = as_user("viewer")
    assert "Cancel run" not in text(viewer.get(f"/evals/runs/{run.pk}/"))
    assert viewer.post(f"/evals/runs/{run.pk}/cancel/").status_code == 403
    author = as_user("author")
    assert "Cancel run" in text(author.get(f"/evals/runs/{run.pk}/"))
    response = author.post(f"/evals/runs/{run.pk}/cancel/", follow=True)
    assert f"Run {run.pk} cancelled." in text(response)
    run.refresh_from_db()
    assert run.status == EvalRun.CANCELLED


def test_compare_shows_regressions_improvements_and_the_delta(as_user, cast, prompt, version, suite):
    base = run_of(cast, prompt, version, suite)
    second, _ = create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        **{**version_body("Dear customer, nobody says this."), "message": "v2"},
    )
    run = run_of(cast, prompt, second, suite)
    client = as_user("viewer")
    body = text(client.get(f"/evals/runs/{run.pk}/compare/", {"against": base.pk, "show": "regressions"}))
    assert f'<option value="{base.pk}" selected>' in body
    assert re.findall(r'data-case="(\d+)"', body) == ["1", "2"]
    regression = re.sub(r"</?(del|ins)>", "", re.search(r'data-case="1".*?</li>', body, re.S).group(0))
    assert "Dear customer, nobody says this." in regression and "Write to Ada." in regression
    assert "-33 pts" in body
    assert re.search(r'data-count="improvement"><dt>Improvements</dt><dd class="big-number delta-up">1<', body)
    other = Suite.objects.create(slug="other", name="Other", team=cast["team"])
    services.add_cases(actor=Actor(user=cast["author"]), suite=other, cases=CASES[:1])
    foreign = run_of(cast, prompt, version, other)
    refused = client.get(f"/evals/runs/{run.pk}/compare/", {"against": foreign.pk})
    assert refused.status_code == 400 and "runs of different suites cannot be compared" in text(refused)


# --- the prompt page's chart ------------------------------------------------------------------------


def test_prompt_page_embeds_pass_rate_per_version_and_over_time(as_user, cast, prompt, version, suite):
    run_of(cast, prompt, version, suite)
    second, _ = create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        **{**version_body("To {{ name }}: nobody says this"), "message": "v2"},
    )
    run_of(cast, prompt, second, suite)
    run_of(cast, prompt, second, suite, execute=False)  # unfinished runs are left out
    body = as_user("viewer").get("/prompts/loan-letter/").content.decode()
    data = json.loads(re.search(r'<script id="pass-rate-data" type="application/json">(.*?)</script>', body).group(1))
    assert data["versions"] == [
        {"version": 1, "pass_rate": pytest.approx(0.6667, abs=1e-4), "runs": 1},
        {"version": 2, "pass_rate": 1.0, "runs": 1},
    ]
    assert [s["suite"] for s in data["over_time"]["suites"]] == ["letters-core"]
    assert len(data["over_time"]["days"]) == 1
    assert "vendor/chartjs/chart.umd.min.js" in body and "js/pass-rate-chart.js" in body
    assert "<summary>Pass rates as a table</summary>" in body


def test_pass_rate_chart_is_one_query(cast, prompt, version, suite, django_assert_num_queries):
    from evals.views import pass_rate_chart

    for _ in range(3):
        run_of(cast, prompt, version, suite)
    with django_assert_num_queries(1):
        chart = pass_rate_chart(prompt)
    assert chart["versions"][0]["runs"] == 3


def test_prompt_page_without_runs_says_so_and_loads_no_chart(as_user, cast, version):
    PromptFactory(slug="quiet", team=cast["team"], owner=cast["owner"])
    body = text(as_user("viewer").get("/prompts/loan-letter/"))
    assert "No completed eval run yet." in body
    assert "chart.umd.min.js" not in body
