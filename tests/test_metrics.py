"""/metrics: a scrape after a journey (resolve 200, 304, 404 and 423, an eval run, provider calls
with a retry and an error, a webhook delivered, a checkpoint, a verification) holds every family
with bounded labels and passes ``promtool check metrics``; the bearer token; the directory cleaning;
the alert rules (``promtool check rules`` and their unit tests) and the dashboard's queries."""

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.checks import run_checks
from prometheus_client.parser import text_string_to_metric_families

from audit import services as audit_services
from audit.checks import verify_database
from config.metrics import exposition
from core import metrics
from core.actors import Actor
from evals import providers, runner
from evals.models import EvalRun
from registry.models import Environment
from registry.services import set_deployment, set_kill_switch
from tests.conftest import need_service
from tests.evals.fake_provider import FakeProvider, ok, server_error
from tests.webhook_receiver import Receiver
from webhooks import audit_stream
from webhooks.services import create_subscription
from webhooks.stream_services import create_stream

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
TOKEN = "metrics-token-for-tests"
RESOLVE = "/api/v1/prompts/{slug}/resolve"

# Every family the operations issue asks for, by what it covers; labels in LABELS below.
FAMILIES = {
    "requests": ["promptledger_http_requests_total", "promptledger_http_request_duration_seconds"],
    "resolve": ["promptledger_resolve_requests_total"],
    "eval runs": ["promptledger_eval_runs", "promptledger_eval_items_in_flight", "promptledger_eval_items_pending",
                  "promptledger_eval_queue_lag_seconds", "promptledger_eval_oldest_running_run_seconds"],
    "providers": ["promptledger_provider_calls_total", "promptledger_provider_errors_total",
                  "promptledger_provider_retries_total", "promptledger_provider_latency_seconds",
                  "promptledger_provider_tokens_total", "promptledger_provider_cost_usd_total"],
    "webhooks": ["promptledger_webhook_attempts_total", "promptledger_webhook_deliveries_total",
                 "promptledger_webhook_attempt_duration_seconds", "promptledger_webhook_deliveries_pending",
                 "promptledger_webhook_oldest_pending_seconds"],
    "audit": ["promptledger_audit_events_total", "promptledger_audit_checkpoints_total",
              "promptledger_audit_checkpoint_age_seconds", "promptledger_audit_chain_verification_ok",
              "promptledger_audit_chain_verification_age_seconds", "promptledger_audit_chain_verifications_total"],
    "audit stream": ["promptledger_audit_stream_lag_events", "promptledger_audit_stream_lag_seconds",
                     "promptledger_audit_stream_batches_total", "promptledger_audit_stream_delivered_events_total"],
}
LABELS = {  # family -> its label names (besides a histogram's le); families not named have none
    "promptledger_http_requests_total": {"route", "method", "status"},
    "promptledger_http_request_duration_seconds": {"route", "method"},
    "promptledger_resolve_requests_total": {"outcome"},
    "promptledger_eval_runs": {"status"},
    "promptledger_provider_calls_total": {"provider", "model", "outcome"},
    "promptledger_provider_errors_total": {"provider", "model", "code"},
    "promptledger_provider_retries_total": {"provider", "model"},
    "promptledger_provider_latency_seconds": {"provider", "model"},
    "promptledger_provider_tokens_total": {"provider", "model", "direction"},
    "promptledger_provider_cost_usd_total": {"provider", "model"},
    "promptledger_webhook_attempts_total": {"event", "outcome"},
    "promptledger_webhook_deliveries_total": {"event", "outcome"},
    "promptledger_audit_events_total": {"action"},
    "promptledger_audit_chain_verifications_total": {"result"},
    "promptledger_audit_stream_lag_events": {"stream"},
    "promptledger_audit_stream_lag_seconds": {"stream"},
    "promptledger_audit_stream_batches_total": {"stream", "outcome"},
    "promptledger_audit_stream_delivered_events_total": {"stream"},
}


def promtool():
    """The path of promtool (Debian's ``prometheus`` package), or a skip (a failure under REQUIRE_SERVICES=1)."""
    path = shutil.which("promtool")
    need_service("promtool", path is not None, "apt-get install prometheus (.ci/run installs it)")
    return path


def scrape(client, token=TOKEN):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def families(text):
    """``{family name as exposed (counters with _total): [(sample name, labels, value)]}``."""
    found = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        found[name] = [(s.name, s.labels, s.value) for s in family.samples]
    return found


def value(text, sample, **labels):
    """A sample's value (0 when absent)."""
    for family in families(text).values():
        for name, have, number in family:
            if name == sample and all(have.get(k) == v for k, v in labels.items()):
                return number
    return 0.0


@pytest.fixture
def token(settings):
    settings.PROMPTLEDGER_METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def provider(settings):
    server = FakeProvider().start()
    settings.OPENAI_BASE_URL = server.openai_base_url
    settings.OPENAI_API_KEY = "sk-test-openai-0123456789abcdef"
    settings.PROMPTLEDGER_PROVIDER_BACKOFF_BASE = 0.01
    providers.reset_limits()
    yield server
    server.stop()
    providers.reset_limits()


async def ask(**kwargs):
    """One OpenAI call (the fake provider answers), its pooled connections closed after."""
    try:
        return await providers.complete(
            provider="openai", model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], **kwargs
        )
    finally:
        await providers.aclose()


def journey(cast, prompt, version, api_for, provider, capture):
    """What an operator's scrape should be able to see after a day's work, on a small scale."""
    owner, production = Actor(user=cast["owner"]), Environment.objects.get(slug="production")
    receiver = Receiver()
    try:
        create_subscription(actor=owner, url=receiver.url, events=["kill_switch.changed"], team=cast["team"])
        with capture(execute=True):
            set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
        reader, url = api_for("viewer", scopes=["prompts:read"]), RESOLVE.format(slug=prompt.slug)
        hit = reader.get(url, {"environment": "production"})
        assert hit.status_code == 200
        assert reader.get(url, {"environment": "production"}, HTTP_IF_NONE_MATCH=hit["ETag"]).status_code == 304
        assert reader.get(RESOLVE.format(slug="no-such-prompt"), {"environment": "production"}).status_code == 404
        with capture(execute=True):  # the kill switch's webhook is delivered once it commits (eager Celery)
            set_kill_switch(actor=owner, prompt=prompt, environment=production, disabled=True, reason="incident")
        receiver.wait_for(1)
        assert reader.get(url, {"environment": "production"}).status_code == 423
        # The audit trail so far, streamed to the same receiver (as to a SIEM) in one batch.
        stream = create_stream(actor=Actor(user=cast["admin"]), name="siem", url=receiver.url, batch_size=5000)
        assert audit_stream.run(stream.pk) > 0
    finally:
        receiver.stop()

    author = api_for("author")
    assert author.post("/api/v1/suites/", {"slug": "letters", "name": "Letters", "team": "payments"},
                       format="json").status_code == 201
    cases = [{"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]}]
    assert author.post("/api/v1/suites/letters/cases/", cases, format="json").status_code == 201
    started = author.post("/api/v1/eval-runs/", {"prompt": prompt.slug, "version": 1, "suite": "letters"},
                          format="json")
    assert started.status_code == 202, started.json()
    runner.execute(started.json()["id"])
    assert EvalRun.objects.get(pk=started.json()["id"]).finished

    provider.script(server_error(), ok("fine, the second time"))
    asyncio.run(ask())
    with pytest.raises(providers.ProviderError):
        asyncio.run(ask(params={"no_such_parameter": 1}))

    with capture(execute=True):
        audit_services.write_checkpoint()
    assert verify_database().ok


def test_a_scrape_after_a_journey_has_every_family_with_bounded_labels_and_passes_promtool(
    cast, prompt, version, api_for, client, token, provider, eager, django_capture_on_commit_callbacks
):
    before = scrape(client)
    journey(cast, prompt, version, api_for, provider, django_capture_on_commit_callbacks)
    after = scrape(client)

    found = families(after)
    missing = {area: sorted(set(names) - set(found)) for area, names in FAMILIES.items() if set(names) - set(found)}
    assert missing == {}, "families missing from the scrape"
    for name, samples in found.items():
        assert name.startswith("promptledger_"), name
        for _, labels, _ in samples:
            assert set(labels) - {"le"} == LABELS.get(name, set()), (name, labels)
    # Route labels are URL pattern names, never paths: no slug, query or id is a label value anywhere.
    assert prompt.slug not in after and "no-such-prompt" not in after and "environment=" not in after
    routes = {labels["route"] for _, labels, _ in found["promptledger_http_requests_total"]}
    assert {"registry-api:resolve", "evals-api:run-list", "metrics"} <= routes, routes
    assert not any(route.startswith("/") for route in routes)

    def grew(sample, by=1, **labels):
        return value(after, sample, **labels) - value(before, sample, **labels) == pytest.approx(by)

    for outcome in ("hit", "not_modified", "not_found", "disabled"):
        assert grew("promptledger_resolve_requests_total", outcome=outcome), outcome
    assert grew("promptledger_http_requests_total", route="registry-api:resolve", method="GET", status="423")
    assert grew("promptledger_provider_calls_total", provider="openai", model="gpt-4o-mini", outcome="ok")
    assert grew("promptledger_provider_calls_total", provider="openai", model="gpt-4o-mini", outcome="error")
    assert grew("promptledger_provider_errors_total", provider="openai", model="gpt-4o-mini", code="bad_request")
    assert grew("promptledger_provider_retries_total", provider="openai", model="gpt-4o-mini")
    assert grew("promptledger_provider_calls_total", provider="offline", model="offline-echo-1", outcome="ok")
    assert value(after, "promptledger_provider_tokens_total", provider="openai", direction="input") > 0
    assert grew("promptledger_webhook_deliveries_total", event="kill_switch.changed", outcome="delivered")
    assert grew("promptledger_webhook_attempts_total", event="kill_switch.changed", outcome="delivered")
    assert grew("promptledger_audit_events_total", action="kill_switch.changed")
    assert grew("promptledger_audit_checkpoints_total")
    assert grew("promptledger_audit_chain_verifications_total", result="ok")
    assert value(after, "promptledger_audit_stream_delivered_events_total", stream="siem") > 0
    assert grew("promptledger_audit_stream_batches_total", stream="siem", outcome="delivered")
    # Events written after the batch (the checkpoint's run, the export...) are the stream's lag.
    assert value(after, "promptledger_audit_stream_lag_events", stream="siem") >= 0
    assert value(after, "promptledger_eval_runs", status="completed") == 1
    assert value(after, "promptledger_audit_chain_verification_ok") == 1
    assert 0 <= value(after, "promptledger_audit_checkpoint_age_seconds") < 60
    assert value(after, "promptledger_metrics_database_ok") == 1

    checked = subprocess.run([promtool(), "check", "metrics"], input=after, capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metrics_ask_for_the_bearer_token_when_one_is_set(client, db, token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics")["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").json()["code"] == "invalid_token"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic " + TOKEN).status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer a b").status_code == 401
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405
    assert "promptledger_" in scrape(client)


def test_without_a_token_metrics_are_open_in_development_and_closed_in_production(client, db, settings):
    settings.PROMPTLEDGER_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200
    settings.PRODUCTION = True
    refused = client.get("/metrics")
    assert (refused.status_code, refused.json()["code"]) == (403, "metrics_token_required")
    informed = [m for m in run_checks(include_deployment_checks=True) if m.id == "promptledger.I001"]
    assert len(informed) == 1 and "PROMPTLEDGER_METRICS_TOKEN" in informed[0].msg
    settings.PROMPTLEDGER_METRICS_TOKEN = TOKEN
    assert not [m for m in run_checks(include_deployment_checks=True) if m.id == "promptledger.I001"]


def test_metrics_turned_off_answer_404(client, db, token, settings):
    settings.PROMPTLEDGER_METRICS = False
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


def test_paths_no_pattern_matches_share_one_route_label(client, db, token):
    before = scrape(client)
    assert client.get("/no/such/page/4711").status_code == 404
    after = scrape(client)
    labels = re.findall(r"\{[^}]*\}", after)  # the raw path must be in no label (a value may hold the digits)
    assert not [label for label in labels if "no/such" in label or "4711" in label]
    grew = value(after, "promptledger_http_requests_total", route="unresolved", status="404") - value(
        before, "promptledger_http_requests_total", route="unresolved", status="404")
    assert grew == 1


def test_a_database_that_does_not_answer_leaves_the_counts_and_says_so(db, monkeypatch):
    from django.db import DatabaseError

    from config import metrics as exposed

    def broken(now):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(exposed, "eval_state", broken)
    text = exposition().decode()
    assert value(text, "promptledger_metrics_database_ok") == 0
    assert "promptledger_resolve_requests_total" in text and "promptledger_eval_runs" not in text


def test_requests_are_counted_in_memory_then_written_as_observe_would(db, token):
    before = exposition().decode()
    for seconds in (0.001, 0.003, 0.003, 7.0):
        metrics.request_answered("metrics-test:route", "GET", 200, seconds)
    after = exposition().decode()  # flushes this process's counts first

    def grew(sample, **labels):
        return value(after, sample, **labels) - value(before, sample, **labels)

    route = {"route": "metrics-test:route", "method": "GET"}
    assert grew("promptledger_http_requests_total", status="200", **route) == 4
    assert grew("promptledger_http_request_duration_seconds_count", **route) == 4
    assert grew("promptledger_http_request_duration_seconds_sum", **route) == pytest.approx(7.007)
    buckets = {le: grew("promptledger_http_request_duration_seconds_bucket", le=le, **route)
               for le in ("0.002", "0.005", "5.0", "10.0", "+Inf")}
    assert buckets == {"0.002": 1, "0.005": 3, "5.0": 3, "10.0": 4, "+Inf": 4}


# --- the directory -----------------------------------------------------------------------------
def _file(directory, kind, owner):
    path = directory / f"{kind}_{owner}.db"
    path.write_bytes(b"\0" * 8)
    return path


@contextlib.contextmanager
def writer_alive(directory, writer):
    """A live writer as another container's process is: its marker locked (a lock of its own)."""
    fd = os.open(directory / f"{writer}.alive", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def test_the_directory_is_cleaned_only_when_no_writer_is_alive_on_any_host(tmp_path):
    dead = 2**22 + 12345  # above Linux's largest pid
    host = metrics._HOST
    _file(tmp_path, "counter", f"{host}-{dead}")
    _file(tmp_path, "histogram", f"{host}-{dead}")
    assert metrics.tidy_directory(tmp_path, "me-1") == (2, 0)
    assert list(tmp_path.glob("*.db")) == []

    # Another container's writer, alive (pid 1 there, and another host name): nothing removed.
    _file(tmp_path, "counter", "container-b-1")
    with writer_alive(tmp_path, "container-b-1"):
        assert metrics.tidy_directory(tmp_path, "me-1") == (0, 0)
        assert (tmp_path / "counter_container-b-1.db").exists()
    # The same writer, dead (its lock gone with it, as with SIGKILL): now everything goes.
    assert metrics.tidy_directory(tmp_path, "me-1") == (1, 0)
    assert not (tmp_path / "container-b-1.alive").exists()

    # Markers of processes that ended without counting (a one-off command) go; a live one stays.
    (tmp_path / "container-e-4.alive").touch()
    with writer_alive(tmp_path, "container-f-5"):
        _file(tmp_path, "counter", "container-f-5")
        assert metrics.tidy_directory(tmp_path, "me-1") == (0, 0)
        assert sorted(path.name for path in tmp_path.glob("*.alive")) == ["container-f-5.alive"]
    (tmp_path / "counter_container-f-5.db").unlink()

    # A file of another host without a marker (written before markers existed) cannot be judged.
    _file(tmp_path, "counter", f"some-other-host-{dead}")
    assert metrics.tidy_directory(tmp_path, "me-1") == (0, 0)


def test_a_new_writer_takes_over_a_dead_writers_files_while_others_live_and_sums_never_drop(tmp_path):
    counted = _file(tmp_path, "counter", "container-a-7")
    counted.write_bytes(b"counted by a")
    _file(tmp_path, "histogram", "container-a-7")
    (tmp_path / "container-a-7.alive").touch()  # its writer died: the marker is there, unlocked
    _file(tmp_path, "counter", "container-b-1")
    with writer_alive(tmp_path, "container-b-1"):
        assert metrics.tidy_directory(tmp_path, "container-c-9") == (0, 2)
        names = sorted(path.name for path in tmp_path.glob("*.db"))
        assert names == ["counter_container-b-1.db", "counter_container-c-9.db", "histogram_container-c-9.db"]
        assert (tmp_path / "counter_container-c-9.db").read_bytes() == b"counted by a"  # counted on from there
        assert not (tmp_path / "container-a-7.alive").exists()
        # A writer that already has files (its pid reused) takes over nothing more.
        _file(tmp_path, "counter", "container-d-3")
        (tmp_path / "container-d-3.alive").touch()
        assert metrics.tidy_directory(tmp_path, "container-c-9") == (0, 0)


def test_a_process_claims_a_name_no_live_process_holds_even_with_the_same_host_name_and_pid(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "_marker", None)
    monkeypatch.setattr(metrics, "_identity", metrics._identity)
    taken = f"{metrics._HOST}-{os.getpid()}"
    with writer_alive(tmp_path, taken):  # another container: same host name, same pid
        metrics.claim_directory(tmp_path)
        claimed = metrics._identity
        assert claimed.startswith(taken + "-") and claimed != taken
    try:
        assert metrics._writer_alive(tmp_path, claimed)  # this process holds its marker
        assert not metrics._writer_alive(tmp_path, taken)
    finally:
        os.close(metrics._marker)


def test_a_forked_child_claims_its_own_marker_and_the_parents_stays_held():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.write(write_end, metrics._identity.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    assert child.startswith(f"{metrics._HOST}-{pid}")
    assert (metrics.DIRECTORY / f"{child}.alive").exists()
    assert not metrics._writer_alive(metrics.DIRECTORY, child)  # gone with the child
    assert metrics._writer_alive(metrics.DIRECTORY, metrics._identity)  # the parent's marker still locked


def test_this_process_writes_files_named_by_host_and_pid():
    names = {path.name for path in metrics.DIRECTORY.glob("*.db")}
    assert f"counter_{metrics._HOST}-{os.getpid()}.db" in names


# --- what deploy/ ships --------------------------------------------------------------------------
def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    tool = promtool()
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([tool, *command], cwd=DEPLOY / "prometheus", capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for alert in ("CheckpointStale", "AuditChainBroken", "EvalRunsStuck", "WebhookFailures"):
        assert f"alert: Promptledger{alert}" in rules


def test_the_scrape_config_passes_promtool(tmp_path):
    tool = promtool()
    (tmp_path / "token").write_text(TOKEN)
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert "/etc/prometheus/promptledger-metrics-token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/promptledger-metrics-token",
                                                           str(tmp_path / "token")))
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path)
    done = subprocess.run([tool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _expressions(node):
    if isinstance(node, dict):
        if "expr" in node:
            yield node["expr"]
        for child in node.values():
            yield from _expressions(child)
    elif isinstance(node, list):
        for child in node:
            yield from _expressions(child)


def test_the_dashboard_and_the_alerts_ask_only_for_families_that_exist():
    shown = {name for names in FAMILIES.values() for name in names} | {"promptledger_metrics_database_ok"}
    dashboard = json.loads((DEPLOY / "grafana" / "promptledger.json").read_text())
    asked = set()
    for expr in _expressions(dashboard["panels"]):
        asked |= set(re.findall(r"promptledger_[a-z_]+", expr))
    asked |= set(re.findall(r"promptledger_[a-z_]+", (DEPLOY / "prometheus" / "alerts.yml").read_text()))
    unknown = {name for name in asked if re.sub(r"_(bucket|sum|count)$", "", name) not in shown}
    assert unknown == set()
    assert {re.sub(r"_(bucket|sum|count)$", "", name) for name in asked} == shown, "families no panel shows"
