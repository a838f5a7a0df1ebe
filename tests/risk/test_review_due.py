"""``model.review_due``: the daily task sends one webhook per model and due date to a real local
receiver, however often it runs; a team's own subscription does not get it (a model has no team)."""

import datetime
import json

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.actors import Actor
from risk import tasks
from risk.models import ReviewDueNotice
from tests.factories import LLMModelFactory
from tests.webhook_receiver import Receiver
from webhooks import services as webhooks
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def test_a_due_review_is_sent_once_to_a_real_receiver(
    register, overdue, receiver, eager, django_capture_on_commit_callbacks
):
    webhooks.create_subscription(
        actor=Actor(user=register["admin"]), url=receiver.url, events=["model.review_due"], team=None,
    )
    team_hook, _ = webhooks.create_subscription(
        actor=Actor(user=register["owner"]), url=receiver.url, events=["*"], team=register["team"],
    )
    LLMModelFactory(model_id="offline-later", next_review_due=timezone.localdate() + datetime.timedelta(days=80))
    entry = overdue(4)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.notify_due_reviews.delay()
    (request,) = receiver.wait_for(1)
    payload = json.loads(request["body"])
    assert payload["event"] == "model.review_due" and request["headers"]["X-Promptledger-Event"] == "model.review_due"
    data = payload["data"]
    assert data["model"]["model_id"] == "offline-echo-1" and data["overdue"] is True
    assert data["due_on"] == entry.next_review_due.isoformat()
    assert sorted(use["prompt"] for use in data["live"]) == ["faq-answer", "loan-letter"]

    for _ in range(2):  # the next days: nothing new
        with django_capture_on_commit_callbacks(execute=True):
            tasks.notify_due_reviews.delay()
    assert Delivery.objects.count() == 1 and len(receiver.requests) == 1
    assert not Delivery.objects.filter(subscription=team_hook).exists()
    assert AuditEvent.objects.filter(action="model_review.due_notified").count() == 1

    entry.next_review_due = timezone.localdate() + datetime.timedelta(days=2)  # a new due date: due again
    entry.save(update_fields=["next_review_due"])
    with django_capture_on_commit_callbacks(execute=True):
        tasks.notify_due_reviews.delay()
    second = receiver.wait_for(2)[1]
    assert json.loads(second["body"])["data"]["overdue"] is False
    assert ReviewDueNotice.objects.count() == 2


def test_a_retired_or_unscheduled_model_sends_nothing(register, receiver, eager, django_capture_on_commit_callbacks):
    webhooks.create_subscription(actor=Actor(user=register["admin"]), url=receiver.url, events=["*"], team=None)
    LLMModelFactory(model_id="offline-retired", status="retired", next_review_due=timezone.localdate())
    LLMModelFactory(model_id="offline-unscheduled", next_review_due=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.notify_due_reviews() == 0
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_reminder_runs_at_once_send_one_event(postgres, register, overdue):
    """Two workers running the daily task at the same moment: the unique (model, due date) row lets
    one of them send; the other finds it sent (real threads on PostgreSQL)."""
    import threading

    from django.db import connection

    from risk import services

    webhooks.create_subscription(
        actor=Actor(user=register["admin"]), url="http://127.0.0.1:9/hook", events=["model.review_due"], team=None,
    )
    entry = overdue(2)
    start, sent, errors = threading.Barrier(2), [], []

    def remind():
        try:
            start.wait(timeout=10)
            sent.append(services.notify_review_due(entry=entry))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=remind) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and sorted(sent) == [False, True]
    assert ReviewDueNotice.objects.count() == 1 and Delivery.objects.filter(event="model.review_due").count() == 1
