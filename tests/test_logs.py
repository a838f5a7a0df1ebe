"""Logs: one line per request and per task, JSON or plain, each carrying the request id that the
response header, the error body and the audit events also carry; never a credential."""

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client
from django.urls import resolve
from django.utils.module_loading import import_string

from audit.models import AuditEvent
from core import logs
from core.actors import Actor
from core.tasks import send_task
from evals.models import EvalRun
from tests.worker import require_worker_services, start_worker, wait_for

HEX_ID = re.compile(r"[0-9a-f]{32}")


class Captured:
    """What the console handler of ``settings.LOGGING`` would have written, in one format."""

    def __init__(self, stream):
        self.stream = stream

    def text(self):
        return self.stream.getvalue()

    def lines(self):
        return [json.loads(line) for line in self.text().splitlines()]  # every line must parse

    def access(self):
        return [line for line in self.lines() if line["logger"] == "promptledger.request"]


@pytest.fixture
def capture():
    """``capture("json")``: the root logger also writes, at INFO, into a buffer with the formatter
    LOGGING names for that format."""
    handlers, root = [], logging.getLogger()
    level = root.level

    def start(kind="json"):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(import_string(settings.LOGGING["formatters"][kind]["()"])())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        handlers.append(handler)
        return Captured(stream)

    yield start
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


def test_a_request_writes_one_json_access_line_with_its_route_not_its_path(api_for, cast, version, capture):
    api = api_for("viewer")
    log = capture("json")
    path = "/api/v1/prompts/loan-letter/versions/1/"
    response = api.get(path, {"q": "query-text-42"})
    assert response.status_code == 200
    [line] = log.access()
    assert line["request_id"] == response["X-Request-ID"]
    assert HEX_ID.fullmatch(line["request_id"])
    assert line["route"] == resolve(path).view_name == "registry-api:version-detail"
    assert (line["method"], line["status"], line["level"]) == ("GET", 200, "INFO")
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 60_000
    viewer = cast["viewer"]
    assert (line["actor"], line["user_id"]) == ("viewer", viewer.pk)
    assert line["token_id"] == viewer.api_tokens.get().pk
    assert line["client_ip"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert "loan-letter" not in log.text() and "query-text-42" not in log.text()


def test_an_error_response_a_log_line_and_the_header_share_the_request_id(api_for, cast, capture):
    log = capture("json")
    response = api_for("viewer").get("/api/v1/prompts/no-such-prompt/")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "prompt_not_found"
    assert body["request_id"] == response["X-Request-ID"]
    [line] = log.access()
    assert (line["request_id"], line["status"]) == (body["request_id"], 404)
    # Django's own "Not Found" warning carries the id too, as a line logged deep in a service would.
    [warning] = [line for line in log.lines() if line["logger"] == "django.request"]
    assert (warning["request_id"], warning["status_code"]) == (body["request_id"], 404)


def test_a_line_logged_deep_in_a_selector_carries_the_request_id(api_for, version, capture, monkeypatch):
    from registry import selectors

    original = selectors.get_visible_prompt

    def logging_too(**kwargs):
        logging.getLogger("registry.deep").warning("looking up %s", kwargs["slug"], extra={"cases": 3})
        return original(**kwargs)

    monkeypatch.setattr(selectors, "get_visible_prompt", logging_too)
    log = capture("json")
    response = api_for("viewer").get("/api/v1/prompts/loan-letter/")
    assert response.status_code == 200
    [deep] = [line for line in log.lines() if line["logger"] == "registry.deep"]
    assert deep["request_id"] == response["X-Request-ID"]
    assert (deep["message"], deep["cases"]) == ("looking up loan-letter", 3)


def test_the_openapi_schema_documents_the_request_id_of_errors(client, db):
    import yaml

    response = client.get("/api/schema/")
    assert response.status_code == 200
    error = yaml.safe_load(response.content)["components"]["schemas"]["Error"]
    assert "request_id" in error["properties"] and "request_id" in error["required"]
    assert "X-Request-ID" in error["properties"]["request_id"]["description"]


def test_resolve_errors_and_anonymous_callers_are_logged_with_the_id(anon, capture):
    log = capture("json")
    response = anon.get("/api/v1/prompts/loan-letter/resolve", {"environment": "production"})
    assert response.status_code == 401
    assert response.json()["request_id"] == response["X-Request-ID"]
    [line] = log.access()
    assert (line["route"], line["status"], line["actor"], line["token_id"]) == ("registry-api:resolve", 401,
                                                                                 "anonymous", None)


def test_a_token_resolve_logs_the_token_id(api_for, cast, version, capture):
    api = api_for("viewer", scopes=["prompts:read"])
    log = capture("json")
    response = api.get("/api/v1/prompts/loan-letter/resolve", {"environment": "production"})
    [line] = log.access()
    assert line["status"] == response.status_code
    assert line["token_id"] == cast["viewer"].api_tokens.get().pk


def test_an_audit_event_carries_the_id_of_the_response_and_the_log_line(api_for, capture):
    log = capture("json")
    response = api_for("admin").post("/api/v1/teams/", {"slug": "ops", "name": "Ops"}, format="json")
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="team.created")
    [line] = log.access()
    assert event.request_id == response["X-Request-ID"] == line["request_id"]
    assert (line["route"], line["status"], line["actor"]) == ("registry-api:team-list", 201, "admin")


def test_error_pages_show_the_reference_to_quote(browser_for, cast):
    browser = browser_for("viewer")
    for path in ("/prompts/no-such-prompt/", "/no/such/page/"):
        response = browser.get(path)
        assert response.status_code == 404
        assert f"Reference: <code>{response['X-Request-ID']}</code>" in response.content.decode()


def test_plain_lines_still_carry_the_request_id(api_for, cast, capture):
    log = capture("plain")
    response = api_for("viewer").get("/api/v1/prompts/no-such-prompt/")
    [line] = [line for line in log.text().splitlines() if " promptledger.request " in line]
    assert f"[{response['X-Request-ID']}] GET registry-api:prompt-detail 404 in " in line
    assert "by viewer (token " in line and line.endswith("from 127.0.0.1")
    assert not line.startswith("{")


def test_no_token_or_password_reaches_the_logs(api_for, cast, capture, settings):
    from registry.services import issue_token

    _, raw = issue_token(actor=Actor.for_system(), user=cast["author"], scopes=["prompts:read"])
    logging.getLogger().setLevel(logging.DEBUG)
    log = capture("json")
    logging.getLogger().setLevel(logging.DEBUG)
    client = Client()
    client.get("/api/v1/prompts/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.get("/api/v1/prompts/loan-letter/resolve?environment=production", HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.get("/api/v1/prompts/", HTTP_AUTHORIZATION=f"Bearer {raw}x")  # a wrong one: 401
    cast["viewer"].set_password("correct-horse-battery")
    cast["viewer"].save()
    Client().post("/accounts/login/", {"username": "viewer", "password": "correct-horse-battery"})
    Client().post("/accounts/login/", {"username": "viewer", "password": "wrong-horse-battery"})
    text = log.text()
    assert len(log.access()) == 5
    assert raw not in text and raw[:12] not in text
    assert "horse-battery" not in text and "Bearer" not in text


def test_the_log_context_is_the_requests_only_while_it_runs():
    assert logs.request_id() == ""
    token = logs.bind(request_id="abc", run_id=None)
    try:
        assert logs.context() == {"request_id": "abc"}  # None is left out
    finally:
        logs.restore(token)
    assert logs.context() == {}


def test_json_lines_keep_extra_fields_and_one_line_per_record():
    formatter = logs.JsonFormatter()
    record = logging.makeLogRecord({"name": "x", "levelno": logging.WARNING, "levelname": "WARNING",
                                    "msg": "two\nlines %s", "args": ("here",), "request": object(),
                                    "level": "forged", "cases": 3})
    token = logs.bind(request_id="r1", task_id="t1")
    try:
        text = formatter.format(record)
    finally:
        logs.restore(token)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "two\nlines here" and line["level"] == "WARNING"  # extra never overwrites
    assert (line["request_id"], line["task_id"], line["cases"]) == ("r1", "t1", 3)
    assert "request" not in line


@pytest.mark.parametrize(("environment", "expected"), [
    ({"DJANGO_ENV": "production"}, "json"),
    ({}, "plain"),
    ({"DJANGO_ENV": "production", "PROMPTLEDGER_LOG_FORMAT": "plain"}, "plain"),
    ({"PROMPTLEDGER_LOG_FORMAT": " JSON "}, "json"),
])
def test_the_format_is_json_in_production_and_plain_in_the_embedded_mode(environment, expected, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PROMPTLEDGER_LOG"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY="x" * 60, PROMPTLEDGER_VAR_DIR=str(tmp_path),
               **environment)
    out = subprocess.run(  # noqa: S603 - our own interpreter and settings
        [sys.executable, "-c", "from django.conf import settings; "
         "print(settings.PROMPTLEDGER_LOG_FORMAT, settings.LOGGING['handlers']['console']['formatter'])"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.stdout.split() == [expected, expected], out.stderr[-2000:]


def test_a_bad_format_names_the_variable(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PROMPTLEDGER_LOG_FORMAT": "xml",
           "PROMPTLEDGER_VAR_DIR": str(tmp_path)}
    out = subprocess.run(  # noqa: S603 - our own interpreter and settings
        [sys.executable, "-c", "from django.conf import settings; settings.LOGGING"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode != 0
    assert "PROMPTLEDGER_LOG_FORMAT='xml'" in out.stderr and "json, plain" in out.stderr


def test_a_task_run_at_once_in_a_request_carries_its_id_and_gives_it_back(db, capture):
    from config.celery import app

    app.loader.import_default_modules()  # as send_task does under task_always_eager (it sets up logging again)
    log = capture("json")
    token = logs.bind(request_id="r-eager")
    try:
        app.tasks["audit.tasks.verify_chain"].apply()
        assert logs.context() == {"request_id": "r-eager"}  # the task's fields are gone again
    finally:
        logs.restore(token)
    [line] = [line for line in log.lines() if line["logger"] == "promptledger.task"]
    assert (line["request_id"], line["task"], line["status"]) == ("r-eager", "audit.tasks.verify_chain", "success")


def _task_lines(worker):
    lines = [json.loads(text) for text in worker.log().splitlines() if text.startswith("{")]
    return [line for line in lines if line["logger"] == "promptledger.task"]


@pytest.mark.django_db(transaction=True)
def test_a_task_queued_by_a_request_logs_that_requests_id_in_the_worker(postgres, cast, version, api_for, tmp_path):
    from evals import services

    require_worker_services()
    author = Actor(user=cast["author"])
    suite = services.create_suite(actor=author, slug="logs", name="Logs", team=version.prompt.team)
    services.add_cases(actor=author, suite=suite, cases=[
        {"vars": {"name": f"Ada-{i}"}, "assertions": [{"type": "contains", "value": f"Ada-{i}"}]} for i in range(3)
    ])
    api = api_for("author")
    worker = start_worker(tmp_path, env={"PROMPTLEDGER_LOG_FORMAT": "json"}, concurrency=2)
    try:
        response = api.post("/api/v1/eval-runs/", {"prompt": "loan-letter", "version": 1, "suite": "logs"},
                            format="json")
        assert response.status_code == 202, response.content
        run_id = response.json()["id"]
        wait_for(lambda: EvalRun.objects.get(pk=run_id).finished, timeout=90, message="the run to finish")
        [line] = wait_for(lambda: [line for line in _task_lines(worker) if line.get("run_id") == run_id],
                          timeout=30, message="the run's task line")
        assert line["request_id"] == response["X-Request-ID"]
        assert (line["task"], line["status"], line["level"]) == ("evals.tasks.execute_run", "success", "INFO")
        assert line["task_id"].startswith(f"run-{run_id}-") and line["duration_ms"] > 0
        # The worker's audit events of the run carry it too: the completion leads back to the request.
        completed = AuditEvent.objects.get(action="eval_run.completed", target_id=str(run_id))
        assert (completed.actor_type, completed.request_id) == ("system", response["X-Request-ID"])

        # Queued by no request (as beat queues): an id of its own, carried by whatever it queues.
        send_task("evals.tasks.reap_expired_leases")
        [reaper] = wait_for(lambda: [line for line in _task_lines(worker)
                                     if line["task"] == "evals.tasks.reap_expired_leases"],
                            timeout=30, message="the reaper's task line")
        assert HEX_ID.fullmatch(reaper["request_id"]) and reaper["request_id"] != line["request_id"]
        assert "run_id" not in reaper
        text = worker.log()
        assert api._credentials["HTTP_AUTHORIZATION"].split()[1] not in text
    finally:
        worker.stop()
