"""Drift: nightly runs of what is live in production, notices on the prompt, signed webhook alerts
(through the operator's alert webhook, a site-wide subscription synced from the settings)."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.actors import Actor
from evals import drift, runner
from evals.gates import set_gate
from evals.models import DriftNotice, EvalRun
from evals.services import add_cases, create_suite
from promptledger.webhooks import verify_signature
from registry.models import Environment
from registry.services import create_version, set_deployment
from tests.factories import PromptFactory, version_body
from tests.webhook_receiver import Receiver

SECRET = "whsec-test-0123456789abcdef"
CASES = [{"vars": {"name": n}, "assertions": [{"type": "contains", "value": n}]} for n in ("Ada", "Grace", "Alan")]


@pytest.fixture
def receiver(settings, db):
    from webhooks.operator import sync_operator_subscription

    server = Receiver()
    settings.PROMPTLEDGER_ALERT_WEBHOOK_URL = server.url
    settings.PROMPTLEDGER_ALERT_WEBHOOK_SECRET = SECRET
    assert sync_operator_subscription() == "created"
    yield server
    server.stop()


@pytest.fixture
def owner(cast):
    return Actor(user=cast["owner"])


@pytest.fixture
def production(environments):
    return Environment.objects.get(slug="production")


@pytest.fixture
def live(owner, cast, prompt, version, production):
    """loan-letter v1 is live in production, gated on suite 'core' (3 cases, v1 passes them all)."""
    suite = create_suite(actor=owner, slug="core", name="Core", team=cast["team"])
    add_cases(actor=owner, suite=suite, cases=CASES)
    set_gate(actor=owner, prompt=prompt, suites=[{"suite": "core", "min_pass_rate": 0.9}])
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    return suite


def new_version(cast, prompt, content):
    body = version_body(content)
    made, _ = create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        messages=body["messages"],
        variables=body["variables"],
        model=body["model"],
        message="change",
    )
    return made


def night(capture, days=0):
    """The beat's nightly task, then the runs in process (finalize checks drift; the alert's
    delivery, queued on commit, runs eagerly when the test asked for it)."""
    with capture(execute=False):  # the broker signal of start_run: the test runs the runs itself
        runs = drift.schedule_drift_runs(now=timezone.now() + timedelta(days=days))
    for run in runs:
        with capture(execute=True):
            runner.execute(run.pk)
    return [EvalRun.objects.get(pk=run.pk) for run in runs]


def test_schedule_starts_runs_for_live_production_versions_with_gate_suites_once_a_day(
    live, owner, cast, production, django_capture_on_commit_callbacks
):
    staged = PromptFactory(slug="staged-only", team=cast["team"], owner=cast["owner"], tier=2)
    staged_version = new_version(cast, staged, "Hello {{ name }}.")
    set_gate(actor=owner, prompt=staged, suites=[{"suite": "core", "min_pass_rate": 0.5}])
    set_deployment(
        actor=owner, prompt=staged, environment=Environment.objects.get(slug="staging"), version=staged_version
    )
    ungated = PromptFactory(slug="ungated", team=cast["team"], owner=cast["owner"], tier=3)
    set_deployment(
        actor=owner, prompt=ungated, environment=production, version=new_version(cast, ungated, "Hi {{ name }}.")
    )

    with django_capture_on_commit_callbacks(execute=False) as queued:
        runs = drift.schedule_drift_runs()
    assert [(r.prompt.slug, r.suite.slug, r.version.number) for r in runs] == [("loan-letter", "core", 1)]
    assert runs[0].trigger == EvalRun.SCHEDULE and runs[0].created_by is None
    assert len(queued) == 1  # one broker signal, after commit
    started = AuditEvent.objects.get(action="eval_run.started", target_id=str(runs[0].pk))
    assert started.data["trigger"] == "schedule" and started.actor_type == "system"
    scheduled = AuditEvent.objects.get(action="drift.scheduled")
    assert scheduled.data == {
        "environment": "production",
        "version": 1,
        "content_hash": runs[0].content_hash,
        "suite": "core",
    }

    with django_capture_on_commit_callbacks(execute=False):
        assert drift.schedule_drift_runs() == []
        assert len(drift.schedule_drift_runs(now=timezone.now() + timedelta(days=1))) == 1
    assert EvalRun.objects.filter(trigger=EvalRun.SCHEDULE).count() == 2


def test_a_kill_switched_production_pointer_is_not_scheduled(live, prompt, production):
    from registry.models import Deployment

    Deployment.objects.filter(prompt=prompt, environment=production).update(disabled=True)
    assert drift.schedule_drift_runs() == []


def test_a_drop_below_the_gate_minimum_alerts_with_a_notice_an_audit_event_and_a_signed_webhook(
    live, cast, prompt, owner, production, receiver, eager, django_capture_on_commit_callbacks
):
    (first,) = night(django_capture_on_commit_callbacks)
    assert first.pass_rate == 1.0
    assert not DriftNotice.objects.exists()
    assert AuditEvent.objects.filter(action="drift.checked", target_id=str(first.pk)).count() == 1

    worse = new_version(cast, prompt, "Hi.")  # drops the name: every case fails
    set_deployment(actor=owner, prompt=prompt, environment=production, version=worse)
    (second,) = night(django_capture_on_commit_callbacks, days=1)
    assert second.version == worse and second.pass_rate == 0.0

    notice = DriftNotice.objects.get()
    assert (notice.run, notice.previous_run, notice.environment) == (second, first, "production")
    assert (notice.pass_rate, notice.previous_pass_rate, notice.threshold) == (0.0, 1.0, 0.9)
    assert notice.reason == DriftNotice.BELOW_THRESHOLD and notice.acknowledged_at is None
    alert = AuditEvent.objects.get(action="drift.alert")
    assert alert.target_id == str(notice.pk) and alert.prompt == "loan-letter" and alert.actor_type == "system"
    assert alert.data["pass_rate"] == 0.0 and alert.data["previous_pass_rate"] == 1.0
    assert alert.data["previous_version"] == 1 and alert.data["version"] == 2
    assert alert.data["reason"] == "below_threshold" and alert.data["threshold"] == 0.9

    (request,) = receiver.wait_for(1)
    headers, body = request["headers"], request["body"]
    assert headers["X-Promptledger-Event"] == "drift.alert"
    assert headers["Content-Type"] == "application/json"
    timestamp, signature = headers["X-Promptledger-Timestamp"], headers["X-Promptledger-Signature"]
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, timestamp, body, signature)
    assert not verify_signature("not-the-secret", timestamp, body, signature)
    assert not verify_signature(SECRET, timestamp, body.replace(b"0.9", b"0.1"), signature)
    assert not verify_signature(SECRET, str(int(timestamp) - 3600), body, signature)
    payload = json.loads(body)
    assert payload["event"] == "drift.alert" and payload["id"]
    assert payload["data"]["prompt"] == "loan-letter" and payload["data"]["notice"] == notice.pk
    assert payload["data"]["reason"] == "below_threshold" and payload["data"]["run"] == second.pk
    assert SECRET.encode() not in body and SECRET not in json.dumps(list(AuditEvent.objects.values("data")))

    # once per run: checking again neither writes a second notice nor alerts again
    with django_capture_on_commit_callbacks(execute=True):
        assert drift.check_drift(second) == notice
    assert DriftNotice.objects.count() == 1 and AuditEvent.objects.filter(action="drift.alert").count() == 1
    assert len(receiver.requests) == 1


def test_a_drop_beyond_the_default_max_drop_is_a_regression(
    live, cast, prompt, owner, production, settings, django_capture_on_commit_callbacks
):
    set_gate(actor=owner, prompt=prompt, suites=[{"suite": "core", "min_pass_rate": 0.5}])  # no max_regression
    settings.PROMPTLEDGER_DRIFT_MAX_DROP = 0.05
    night(django_capture_on_commit_callbacks)
    two_of_three = new_version(cast, prompt, "Dear Ada and Grace, {{ name }} is not named here.")
    set_deployment(actor=owner, prompt=prompt, environment=production, version=two_of_three)
    (second,) = night(django_capture_on_commit_callbacks, days=1)
    assert second.pass_rate == pytest.approx(1.0)  # the variable still renders: no drop yet

    fewer = new_version(cast, prompt, "Dear Ada and Grace.")
    set_deployment(actor=owner, prompt=prompt, environment=production, version=fewer)
    (third,) = night(django_capture_on_commit_callbacks, days=2)
    assert third.pass_rate == pytest.approx(2 / 3)
    notice = DriftNotice.objects.get()
    assert (notice.run, notice.previous_run, notice.reason) == (third, second, DriftNotice.REGRESSION)
    assert notice.threshold == 0.05


def test_no_drop_no_notice(live, receiver, eager, django_capture_on_commit_callbacks):
    night(django_capture_on_commit_callbacks)
    night(django_capture_on_commit_callbacks, days=1)
    assert not DriftNotice.objects.exists()
    assert AuditEvent.objects.filter(action="drift.checked").count() == 2
    assert not AuditEvent.objects.filter(action="drift.alert").exists()
    assert receiver.requests == []  # eager delivery would have happened in this thread


def test_runs_a_person_labels_schedule_do_not_move_the_baseline(
    live, cast, prompt, version, owner, production, django_capture_on_commit_callbacks
):
    from evals.services import start_run

    night(django_capture_on_commit_callbacks)
    worse = new_version(cast, prompt, "Hi.")
    with django_capture_on_commit_callbacks(execute=False):
        manual = start_run(actor=owner, prompt=prompt, version=worse, suite=live, trigger=EvalRun.SCHEDULE)
    runner.execute(manual.pk)
    assert not DriftNotice.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="drift.", target_id=str(manual.pk)).exists()


@pytest.fixture
def notice(live, cast, prompt, owner, production, django_capture_on_commit_callbacks):
    night(django_capture_on_commit_callbacks)
    set_deployment(actor=owner, prompt=prompt, environment=production, version=new_version(cast, prompt, "Hi."))
    night(django_capture_on_commit_callbacks, days=1)
    return DriftNotice.objects.get()


def test_an_approver_acknowledges_a_notice_and_it_is_audited(notice, api_for):
    client = api_for("approver")
    listed = client.get("/api/v1/prompts/loan-letter/notices")
    assert listed.status_code == 200, listed.json()
    (row,) = listed.json()["results"]
    assert row["id"] == notice.pk and row["reason"] == "below_threshold" and row["environment"] == "production"
    assert (row["version"], row["previous_version"], row["pass_rate"], row["threshold"]) == (2, 1, 0.0, 0.9)

    response = client.post(f"/api/v1/notices/{notice.pk}/acknowledge")
    assert response.status_code == 200, response.json()
    assert response.json()["acknowledged_by"] == "approver" and response.json()["acknowledged_at"]
    event = AuditEvent.objects.get(action="drift.acknowledged")
    assert event.actor_username == "approver" and event.target_id == str(notice.pk)
    assert client.get("/api/v1/prompts/loan-letter/notices").json()["results"] == []
    again = client.post(f"/api/v1/notices/{notice.pk}/acknowledge")
    assert again.status_code == 409 and again.json()["code"] == "notice_acknowledged"


def test_a_viewer_cannot_acknowledge_and_an_outsider_cannot_see_it(notice, api_for):
    viewer = api_for("viewer")
    assert viewer.get("/api/v1/prompts/loan-letter/notices").json()["results"][0]["id"] == notice.pk
    refused = viewer.post(f"/api/v1/notices/{notice.pk}/acknowledge")
    assert refused.status_code == 403 and refused.json()["code"] == "role_too_low"
    assert api_for("outsider").post(f"/api/v1/notices/{notice.pk}/acknowledge").status_code == 404
    notice.refresh_from_db()
    assert notice.acknowledged_at is None
    assert not AuditEvent.objects.filter(action="drift.acknowledged").exists()


def test_the_prompt_page_shows_the_notice_and_an_approver_acknowledges_it_there(notice, cast):
    from django.test import Client

    viewer, approver = Client(), Client()
    viewer.force_login(cast["viewer"])
    approver.force_login(cast["approver"])
    page = viewer.get("/prompts/loan-letter/").content.decode()
    assert "Drift:" in page and "below the gate" in page
    assert f"/evals/notices/{notice.pk}/acknowledge/" not in page  # viewers see it, approvers act on it
    assert f"/evals/notices/{notice.pk}/acknowledge/" in approver.get("/prompts/loan-letter/").content.decode()
    assert viewer.post(f"/evals/notices/{notice.pk}/acknowledge/").status_code == 403
    assert approver.post(f"/evals/notices/{notice.pk}/acknowledge/").status_code == 302
    assert "Drift:" not in viewer.get("/prompts/loan-letter/").content.decode()
    assert AuditEvent.objects.filter(action="drift.acknowledged", actor_username="approver").count() == 1


def test_verify_signature_accepts_the_scheme_the_readme_documents():
    from promptledger.webhooks import sign

    now = int(time.time())
    body = '{"event":"drift.alert"}'
    header = sign(SECRET, str(now), body)
    assert verify_signature(SECRET, str(now), body.encode(), header)
    assert not verify_signature(SECRET, str(now), body, header.removeprefix("sha256="))
    assert not verify_signature(SECRET, "not-a-number", body, header)
    assert verify_signature(SECRET, str(now - 3600), body, sign(SECRET, str(now - 3600), body), tolerance=None)


def test_a_failed_alert_is_kept_for_a_retry_and_logs_no_secret(settings, caplog, prompt):
    from django.db import transaction

    from webhooks import delivery, events
    from webhooks.models import Delivery
    from webhooks.operator import sync_operator_subscription

    server = Receiver(status=500)
    try:
        settings.PROMPTLEDGER_ALERT_WEBHOOK_URL = server.url + "?token=url-secret"
        settings.PROMPTLEDGER_ALERT_WEBHOOK_SECRET = SECRET
        sync_operator_subscription()
        with transaction.atomic():
            (queued,) = events.drift_alert(prompt=prompt, alert={"reason": "below_threshold"})
        attempt = delivery.attempt(queued.pk)
        server.wait_for(1)
    finally:
        server.stop()
    assert attempt.outcome == "retry" and attempt.status_code == 500
    queued.refresh_from_db()
    assert queued.status == Delivery.PENDING and queued.next_attempt_at > timezone.now()
    assert "HTTP 500" in caplog.text and "127.0.0.1" in caplog.text
    assert SECRET not in caplog.text and "url-secret" not in caplog.text and "/hooks/" not in caplog.text
