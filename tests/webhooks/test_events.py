"""Each event is emitted by the service that makes its change, in its transaction, to the
subscriptions that want it: team subscriptions for their team's events, site-wide ones for all."""

import json

import pytest
from django.db import transaction

from core.actors import Actor
from evals import gates, runner
from evals.models import DriftNotice
from evals.services import add_cases, create_suite, start_run
from registry.models import Environment
from registry.services import create_version, set_deployment, set_kill_switch
from tests.factories import version_body
from webhooks import events
from webhooks.models import Delivery

URL = "https://hooks.example.test/promptledger"


def emitted(event=None):
    deliveries = Delivery.objects.order_by("id")
    if event:
        deliveries = deliveries.filter(event=event)
    return [json.loads(d.body) for d in deliveries]


def push(cast, prompt, content):
    body = version_body(content)
    return create_version(
        actor=Actor(user=cast["author"]), prompt=prompt, messages=body["messages"], variables=body["variables"],
        model=body["model"], message="change",
    )


@pytest.fixture
def production(environments):
    return Environment.objects.get(slug="production")


def test_a_new_version_emits_version_created_and_an_identical_push_does_not(cast, prompt, version, subscribe):
    subscribe(URL, events=["version.created"])
    made, created = push(cast, prompt, "Dear {{ name }}, hello.")
    assert created
    (payload,) = emitted("version.created")
    assert payload["event"] == "version.created"
    data = payload["data"]
    assert (data["prompt"], data["team"], data["version"], data["parent"]) == ("loan-letter", "payments", 2, 1)
    assert data["content_hash"] == made.content_hash and data["message"] == "change"
    assert data["model"] == {"provider": "offline", "name": "offline-echo-1"}
    assert data["actor"] == {"username": "author", "type": "user"}

    again, created = push(cast, prompt, "Dear {{ name }}, hello.")
    assert not created and again == made
    assert len(emitted("version.created")) == 1


def test_moving_a_label_emits_deployment_changed_with_from_and_to(cast, prompt, version, production, subscribe):
    subscribe(URL, events=["deployment.changed"])
    owner = Actor(user=cast["owner"])
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    second, _ = push(cast, prompt, "Hi {{ name }}.")
    set_deployment(actor=owner, prompt=prompt, environment=production, version=second, canary_version=version,
                   canary_percent=10)
    first, moved = emitted("deployment.changed")
    assert (first["data"]["from_version"], first["data"]["to_version"]) == (None, 1)
    data = moved["data"]
    assert (data["prompt"], data["environment"], data["from_version"], data["to_version"]) == (
        "loan-letter", "production", 1, 2,
    )
    assert data["content_hash"] == second.content_hash
    assert data["canary"] == {"before": {"version": None, "percent": None}, "after": {"version": 1, "percent": 10}}
    assert data["actor"] == {"username": "owner", "type": "user"}


def test_a_kill_switch_emits_kill_switch_changed(cast, prompt, version, production, subscribe):
    subscribe(URL, events=["kill_switch.changed"])
    set_kill_switch(actor=Actor(user=cast["approver"]), prompt=prompt, environment=production, disabled=True,
                    reason="bad answers")
    (payload,) = emitted()
    data = payload["data"]
    assert (data["environment"], data["disabled"], data["was_disabled"], data["reason"]) == (
        "production", True, False, "bad answers",
    )
    assert data["actor"]["username"] == "approver"


def test_a_finished_eval_run_emits_eval_run_completed(cast, prompt, version, subscribe,
                                                       django_capture_on_commit_callbacks):
    subscribe(URL, events=["eval_run.completed"])
    owner = Actor(user=cast["owner"])
    suite = create_suite(actor=owner, slug="core", name="Core", team=cast["team"])
    add_cases(actor=owner, suite=suite, cases=[
        {"vars": {"name": "Ada"}, "assertions": [{"type": "contains", "value": "Ada"}]},
        {"vars": {"name": "Grace"}, "assertions": [{"type": "contains", "value": "nobody"}]},
    ])
    with django_capture_on_commit_callbacks(execute=False):
        run = start_run(actor=owner, prompt=prompt, version=version, suite=suite)
    assert emitted() == []
    runner.execute(run.pk)
    (payload,) = emitted()
    data = payload["data"]
    assert (data["run"], data["suite"], data["version"], data["status"]) == (run.pk, "core", 1, "completed")
    assert (data["pass_rate"], data["passed"], data["total"], data["errors"]) == (0.5, 1, 2, 0)
    assert data["trigger"] == "manual" and data["started_by"] == "owner"
    runner.finalize(run.pk)  # finalizing again changes nothing and emits nothing
    assert len(emitted()) == 1


def test_a_failing_gate_emits_gate_failed_only_when_the_decision_is_recorded(cast, prompt, version, production,
                                                                            subscribe):
    subscribe(URL, events=["gate.failed"])
    owner = Actor(user=cast["owner"])
    result = gates.evaluate_gate(actor=owner, prompt=prompt, version=version, environment=production,
                                 record_decision=False)
    assert result["passed"] is False and emitted() == []  # tier 1 without a gate suite fails
    gates.evaluate_gate(actor=owner, prompt=prompt, version=version, environment=production)
    (payload,) = emitted()
    data = payload["data"]
    assert (data["prompt"], data["version"], data["environment"]) == ("loan-letter", 1, "production")
    assert [c["code"] for c in data["failed_checks"]] == ["no_gate_configured"]

    prompt.tier = 3
    prompt.save()
    assert gates.evaluate_gate(actor=owner, prompt=prompt, version=version, environment=production)["passed"]
    assert len(emitted()) == 1  # a passing gate is not an event


def test_drift_emits_drift_alert(cast, prompt, version, production, subscribe, django_capture_on_commit_callbacks):
    from tests.evals.test_drift import CASES, new_version, night

    subscribe(URL, events=["drift.alert"])
    owner = Actor(user=cast["owner"])
    suite = create_suite(actor=owner, slug="core", name="Core", team=cast["team"])
    add_cases(actor=owner, suite=suite, cases=CASES)
    gates.set_gate(actor=owner, prompt=prompt, suites=[{"suite": "core", "min_pass_rate": 0.9}])
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    night(django_capture_on_commit_callbacks)
    assert emitted() == []
    set_deployment(actor=owner, prompt=prompt, environment=production, version=new_version(cast, prompt, "Hi."))
    night(django_capture_on_commit_callbacks, days=1)
    (payload,) = emitted()
    notice = DriftNotice.objects.get()
    data = payload["data"]
    assert (data["prompt"], data["team"], data["notice"], data["reason"]) == (
        "loan-letter", "payments", notice.pk, "below_threshold",
    )
    assert (data["pass_rate"], data["previous_pass_rate"], data["environment"]) == (0.0, 1.0, "production")


@pytest.mark.parametrize("event", ["deploy_request.opened", "deploy_request.approved", "deploy_request.rejected"])
def test_deploy_request_events_carry_the_callers_data_team_and_actor(cast, subscribe, event):
    subscribe(URL, events=[event])
    emit = getattr(events, event.replace(".", "_"))
    request = {"id": 7, "prompt": "loan-letter", "version": 3, "environment": "production", "status": "open"}
    with transaction.atomic():
        emit(actor=Actor(user=cast["approver"]), team=cast["team"], data=request)
    (payload,) = emitted()
    assert payload["event"] == event
    assert payload["data"] == {**request, "team": "payments", "actor": {"username": "approver", "type": "user"}}


def test_subscriptions_get_their_teams_events_site_wide_ones_every_teams_and_only_what_they_asked_for(
    cast, prompt, production, subscribe
):
    mine, _ = subscribe(URL + "/mine", events=["version.created"])
    everything, _ = subscribe(URL + "/everything", events=["*"])
    kill_only, _ = subscribe(URL + "/kill", events=["kill_switch.changed"])
    theirs, _ = subscribe(URL + "/theirs", as_="outsider", team=cast["other_team"])
    site, _ = subscribe(URL + "/site", as_="admin", team=None)
    paused, _ = subscribe(URL + "/paused", active=False)

    push(cast, prompt, "Hello {{ name }}.")
    receivers = set(Delivery.objects.values_list("subscription_id", flat=True))
    assert receivers == {mine.pk, everything.pk, site.pk}
    assert len({d.event_id for d in Delivery.objects.all()}) == 1  # one event, one id, three deliveries
    assert theirs.pk not in receivers and kill_only.pk not in receivers and paused.pk not in receivers
