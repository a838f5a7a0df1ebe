"""Delivering webhooks: signed POSTs to a real local receiver, retries with every attempt logged,
nothing sent for a rolled-back change, one send per delivery however many workers race for it."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from promptledger.webhooks import verify_signature
from registry.services import set_kill_switch
from tests.webhooks.conftest import Receiver
from tests.worker import wait_for
from webhooks import delivery
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.services import EmitOutsideTransaction, emit


def switch_off(cast, prompt, environments, *, disabled=True):
    production = next(e for e in environments if e.slug == "production")
    return set_kill_switch(
        actor=Actor(user=cast["approver"]), prompt=prompt, environment=production, disabled=disabled, reason="incident"
    )


def test_a_webhook_reaches_a_local_receiver_with_a_valid_signature(
    cast, prompt, environments, receiver, subscribe, eager, django_capture_on_commit_callbacks
):
    subscription, secret = subscribe(receiver.url, events=["kill_switch.changed"])
    with django_capture_on_commit_callbacks(execute=True):
        switch_off(cast, prompt, environments)

    (request,) = receiver.wait_for(1)
    headers, body = request["headers"], request["body"]
    sent = Delivery.objects.get()
    assert request["path"] == "/hooks/promptledger?token=url-token-123"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Promptledger-Event"] == "kill_switch.changed"
    assert headers["X-Promptledger-Delivery"] == str(sent.uuid)
    timestamp, signature = headers["X-Promptledger-Timestamp"], headers["X-Promptledger-Signature"]
    assert abs(int(timestamp) - time.time()) < 60 and signature.startswith("sha256=")
    assert verify_signature(secret, timestamp, body, signature)
    assert not verify_signature("whsec_wrong", timestamp, body, signature)
    assert not verify_signature(secret, timestamp, body.replace(b"incident", b"accident"), signature)
    assert not verify_signature(secret, str(int(timestamp) - 301), body, signature)  # outside the replay window

    payload = json.loads(body)
    assert set(payload) == {"id", "event", "created_at", "data"}
    assert payload["id"] == str(sent.event_id) and payload["event"] == "kill_switch.changed"
    assert payload["data"]["prompt"] == "loan-letter" and payload["data"]["disabled"] is True
    assert secret.encode() not in body
    assert (sent.status, sent.attempts, sent.last_status_code, sent.last_error) == ("delivered", 1, 204, "")
    (attempt,) = sent.attempt_log.all()
    assert (attempt.number, attempt.status_code, attempt.outcome) == (1, 204, DeliveryAttempt.DELIVERED)
    assert attempt.duration_ms is not None and sent.delivered_at is not None


def test_a_receiver_that_is_down_is_retried_with_every_attempt_logged_until_it_comes_back(
    cast, prompt, environments, subscribe, settings, caplog, django_capture_on_commit_callbacks
):
    receiver = Receiver(status=500)
    port = receiver.port
    receiver.stop()  # down: connections are refused
    subscription, secret = subscribe(receiver.url, events=["kill_switch.changed"])
    with django_capture_on_commit_callbacks(execute=False) as signals:
        switch_off(cast, prompt, environments)
    assert len(signals) == 1  # the worker's signal waits for the commit
    sent = Delivery.objects.get()

    first = delivery.attempt(sent.pk)
    assert (first.outcome, first.status_code, first.error) == ("retry", None, "could not connect")
    sent.refresh_from_db()
    wait = (sent.next_attempt_at - timezone.now()).total_seconds()
    assert sent.status == "pending" and 10 < wait <= 30  # 15-30 s after the first failure
    assert delivery.attempt(sent.pk) is None  # an early or duplicate signal does nothing

    # Time passes (the row says the retry is due); later waits are made short so the test can wait.
    Delivery.objects.filter(pk=sent.pk).update(next_attempt_at=timezone.now())
    settings.PROMPTLEDGER_WEBHOOK_BACKOFF_BASE = 0.05

    receiver = Receiver(status=500, port=port)  # back, but failing
    try:
        second = wait_for(lambda: delivery.attempt(sent.pk), timeout=10, message="the second attempt")
        assert (second.outcome, second.status_code, second.error) == ("retry", 500, "HTTP 500")
        receiver.status = 204  # and healthy again
        third = wait_for(lambda: delivery.attempt(sent.pk), timeout=10, message="the third attempt")
        assert third.outcome == "delivered"
    finally:
        receiver.stop()

    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.last_status_code, sent.last_error) == ("delivered", 3, 204, "")
    log = list(sent.attempt_log.values_list("number", "status_code", "error", "outcome"))
    assert log == [
        (1, None, "could not connect", "retry"),
        (2, 500, "HTTP 500", "retry"),
        (3, 204, "", "delivered"),
    ]
    # every retry re-sent the frozen body, freshly signed with the subscription's secret
    bodies = {r["body"] for r in receiver.requests}
    assert bodies == {sent.body.encode()}
    for request in receiver.requests:
        headers = request["headers"]
        assert verify_signature(secret, headers["X-Promptledger-Timestamp"], request["body"],
                                headers["X-Promptledger-Signature"])
    assert secret not in caplog.text and "url-token-123" not in caplog.text and "/hooks/" not in caplog.text
    assert "127.0.0.1" in caplog.text


def test_a_delivery_gives_up_after_the_last_attempt_and_can_be_redelivered(
    cast, prompt, environments, subscribe, settings, django_capture_on_commit_callbacks
):
    settings.PROMPTLEDGER_WEBHOOK_MAX_ATTEMPTS = 2
    settings.PROMPTLEDGER_WEBHOOK_BACKOFF_BASE = 0.05
    receiver = Receiver(status=503)
    try:
        subscribe(receiver.url)
        with django_capture_on_commit_callbacks(execute=False):
            switch_off(cast, prompt, environments)
        sent = Delivery.objects.get()
        assert delivery.attempt(sent.pk).outcome == "retry"
        assert wait_for(lambda: delivery.attempt(sent.pk), timeout=10).outcome == "failed"
        sent.refresh_from_db()
        assert (sent.status, sent.attempts, sent.next_attempt_at, sent.last_error) == ("failed", 2, None, "HTTP 503")
        assert delivery.attempt(sent.pk) is None  # a failed delivery is never tried again by itself

        from webhooks.services import redeliver

        receiver.status = 200
        with django_capture_on_commit_callbacks(execute=False):
            again = redeliver(actor=Actor(user=cast["owner"]), delivery=sent)
        assert (again.body, again.event_id, again.redelivery_of) == (sent.body, sent.event_id, sent)
        assert again.uuid != sent.uuid
        assert delivery.attempt(again.pk).outcome == "delivered"
        assert receiver.requests[-1]["headers"]["X-Promptledger-Delivery"] == str(again.uuid)
    finally:
        receiver.stop()


def test_the_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.PROMPTLEDGER_WEBHOOK_BACKOFF_BASE = 30
    settings.PROMPTLEDGER_WEBHOOK_BACKOFF_MAX = 3600
    for failed, nominal in [(1, 30), (2, 60), (3, 120), (6, 960), (8, 3600), (20, 3600)]:
        waits = [delivery.backoff_seconds(failed) for _ in range(50)]
        assert all(nominal / 2 <= w <= nominal for w in waits), (failed, min(waits), max(waits))
        assert len(set(waits)) > 1  # jittered


def test_a_paused_subscription_gets_no_new_deliveries_and_its_pending_ones_are_not_sent(
    cast, prompt, environments, receiver, subscribe, django_capture_on_commit_callbacks
):
    from webhooks.services import update_subscription

    subscription, _ = subscribe(receiver.url)
    owner = Actor(user=cast["owner"])
    with django_capture_on_commit_callbacks(execute=False):
        switch_off(cast, prompt, environments)
        update_subscription(actor=owner, subscription=subscription, active=False)
        switch_off(cast, prompt, environments, disabled=False)
    pending = Delivery.objects.get()  # only the first change, made while it was active
    attempt = delivery.attempt(pending.pk)
    assert (attempt.outcome, attempt.error) == ("failed", "not sent: the webhook is paused")
    assert receiver.requests == []


def test_the_sweep_resends_pending_deliveries_whose_message_was_lost(
    cast, prompt, environments, receiver, subscribe, eager, django_capture_on_commit_callbacks
):
    subscribe(receiver.url)
    with django_capture_on_commit_callbacks(execute=False):  # the broker "loses" this signal
        switch_off(cast, prompt, environments)
    sent = Delivery.objects.get()
    assert delivery.requeue_due() == []  # just emitted: its own message gets the first chance
    Delivery.objects.filter(pk=sent.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    assert delivery.requeue_due() == [sent.pk]  # eager: the re-sent signal runs here
    receiver.wait_for(1)
    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert delivery.requeue_due() == []


def test_an_attempt_whose_worker_died_is_kept_as_lost(cast, prompt, environments, receiver, subscribe,
                                                     django_capture_on_commit_callbacks):
    subscribe(receiver.url)
    with django_capture_on_commit_callbacks(execute=False):
        switch_off(cast, prompt, environments)
    sent = Delivery.objects.get()
    delivery._claim(sent.pk, timezone.now())  # claimed, then the worker vanished before the POST
    Delivery.objects.filter(pk=sent.pk).update(next_attempt_at=timezone.now())  # its lease ran out
    assert delivery.attempt(sent.pk).outcome == "delivered"
    outcomes = list(sent.attempt_log.values_list("number", "outcome"))
    assert outcomes == [(1, "lost"), (2, "delivered")]


def test_emit_refuses_to_run_outside_a_transaction(transactional_db, cast):
    with pytest.raises(EmitOutsideTransaction):
        emit("version.created", {}, team=cast["team"])


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_sends_nothing_and_a_committed_one_is_sent(
    cast, prompt, environments, receiver, subscribe, eager
):
    subscribe(receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        switch_off(cast, prompt, environments)
        assert Delivery.objects.count() == 1  # written in the change's transaction...
        raise RuntimeError("the change fails after the event was emitted")
    assert Delivery.objects.count() == 0  # ...and gone with it
    assert receiver.requests == []

    switch_off(cast, prompt, environments)  # commits: sent once the transaction is over
    receiver.wait_for(1)
    assert Delivery.objects.get().status == "delivered"


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_one_delivery_send_it_once(postgres, cast, prompt, environments, subscribe):
    receiver = Receiver(delay=0.3)
    try:
        subscribe(receiver.url)
        switch_off(cast, prompt, environments)  # no eager: the broker signal is ignored here
        sent = Delivery.objects.get()
        results, start = [], threading.Barrier(6)

        def worker():
            from django.db import connection

            start.wait()
            try:
                results.append(delivery.attempt(sent.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        made = [r for r in results if r is not None]
        assert len(results) == 6 and len(made) == 1 and made[0].outcome == "delivered"
        assert len(receiver.requests) == 1
        assert DeliveryAttempt.objects.filter(delivery=sent).count() == 1
    finally:
        receiver.stop()
