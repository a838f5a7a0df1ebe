"""Sending deliveries: claim, sign, POST, record the attempt, and schedule the next one.

A worker claims a delivery with one conditional UPDATE (pending, due, and pushed a lease ahead:
exactly one row changed, or someone else has it), so two workers, a re-sent broker message or the
sweep never send one delivery twice at once. The POST happens outside any transaction, with a short
timeout and no redirects followed. Each attempt is a ``DeliveryAttempt`` written when it starts, so
even an attempt whose worker died is in the log (marked ``lost`` when the delivery is next claimed).

A failure (no connection, a timeout, any non-2xx answer) is retried after an exponential backoff
with jitter: attempt ``n`` failing waits a random time between half and all of
``min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (n - 1))``, until ``MAX_ATTEMPTS`` attempts have failed and the
delivery is marked failed. Short waits ride on a Celery countdown; waits longer than
``COUNTDOWN_MAX`` (well under the broker's visibility timeout) are left to the sweep, which every
minute re-signals pending deliveries that are due.

Log lines name the event, the delivery id and the receiver's host: never the secret, and never the
full URL (its path or query may hold a token).
"""

import logging
import random
import time
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import metrics
from core.tasks import send_task
from promptledger.webhooks import sign

from .models import Delivery, DeliveryAttempt
from .sending import post_once

log = logging.getLogger(__name__)

USER_AGENT = "Promptledger-Webhooks/1"
COUNTDOWN_MAX = 600  # seconds; longer waits are picked up by the sweep
SWEEP_GRACE = 30  # seconds a due delivery is left to its own message before the sweep re-signals it
SWEEP_BATCH = 500


def _conf(name, default):
    return getattr(settings, f"PROMPTLEDGER_WEBHOOK_{name}", default)


def timeout_seconds():
    return float(_conf("TIMEOUT", 5))


def max_attempts():
    return int(_conf("MAX_ATTEMPTS", 10))


def backoff_seconds(failed_attempts):
    """The wait after the ``failed_attempts``-th failure: jittered in [half, all] of the nominal."""
    nominal = min(float(_conf("BACKOFF_MAX", 3600)), float(_conf("BACKOFF_BASE", 30)) * 2 ** (failed_attempts - 1))
    return random.uniform(nominal / 2, nominal)


def _host(url):
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, ValueError, TypeError):
        return "?"


def queue(delivery_ids, countdown=None):
    """Signal workers; the broker carries only ids, the rows hold the work."""
    for delivery_id in delivery_ids:
        send_task("webhooks.tasks.deliver", args=[delivery_id], countdown=countdown)


def _claim(delivery_id, now):
    lease = timedelta(seconds=timeout_seconds() + 60)
    with transaction.atomic():
        claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.PENDING, next_attempt_at__lte=now).update(
            attempts=F("attempts") + 1, next_attempt_at=now + lease, updated_at=now
        )
        if claimed != 1:
            return None, None
        delivery = Delivery.objects.select_related("subscription").get(pk=delivery_id)
        DeliveryAttempt.objects.filter(delivery=delivery, outcome=DeliveryAttempt.IN_FLIGHT).update(
            outcome=DeliveryAttempt.LOST, error="no answer recorded: the worker stopped during this attempt"
        )
        attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now)
    return delivery, attempt


def _post(delivery, subscription):
    """POST once, signed now; ``(status_code or None, error text or "")``. The error text never
    quotes the exception, which may carry the URL."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Promptledger-Event": delivery.event,
        "X-Promptledger-Delivery": str(delivery.uuid),
        "X-Promptledger-Timestamp": timestamp,
        "X-Promptledger-Signature": sign(subscription.signing_secret(), timestamp, delivery.body),
    }
    answer = post_once(subscription.url, delivery.body.encode("utf-8"), headers, timeout=timeout_seconds())
    return answer.status, answer.error


def attempt(delivery_id):
    """Make one attempt at a delivery if it is pending and due; returns its ``DeliveryAttempt``, or
    None when there was nothing to do (delivered, failed, not yet due, or another worker has it)."""
    now = timezone.now()
    delivery, row = _claim(delivery_id, now)
    if delivery is None:
        return None
    subscription = delivery.subscription
    started = time.monotonic()
    if subscription.active:
        code, error = _post(delivery, subscription)
    else:
        code, error = None, "not sent: the webhook is paused"
    seconds = time.monotonic() - started
    row.duration_ms, row.status_code, row.error = int(seconds * 1000), code, error
    row.outcome = _settle(delivery, row, give_up=not subscription.active)
    metrics.webhook_attempted(event=delivery.event, outcome=row.outcome, seconds=seconds)
    log.info(
        "webhook %s delivery %s attempt %s to %s: %s%s",
        delivery.event,
        delivery.uuid,
        row.number,
        _host(subscription.url),
        row.outcome,
        f" ({error})" if error else "",
    )
    return row


def _settle(delivery, row, *, give_up):
    code, error, now = row.status_code, row.error, timezone.now()
    fields = {"last_status_code": code, "last_error": error[:200], "updated_at": now}
    retry_in = None
    if not error:
        outcome = DeliveryAttempt.DELIVERED
        fields.update(status=Delivery.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif give_up or delivery.attempts >= max_attempts():
        outcome = DeliveryAttempt.FAILED
        fields.update(status=Delivery.FAILED, next_attempt_at=None)
    else:
        outcome = DeliveryAttempt.RETRY
        retry_in = backoff_seconds(delivery.attempts)
        fields.update(next_attempt_at=now + timedelta(seconds=retry_in))
    with transaction.atomic():
        # Conditional on still being ours (pending, this attempt number): a deleted subscription
        # took the rows with it, and then there is nothing to write.
        Delivery.objects.filter(pk=delivery.pk, status=Delivery.PENDING, attempts=delivery.attempts).update(**fields)
        DeliveryAttempt.objects.filter(pk=row.pk).update(
            duration_ms=row.duration_ms, status_code=code, error=error[:200], outcome=outcome
        )
        if retry_in is not None and retry_in <= COUNTDOWN_MAX:
            # A second early: the claim wants next_attempt_at <= now when the message arrives.
            transaction.on_commit(lambda: queue([delivery.pk], countdown=retry_in + 1), robust=True)
    return outcome


def requeue_due(now=None):
    """Re-signal pending deliveries that have been due for a while (a lost broker message, a long
    backoff); returns their ids. Safe to run any time: the claim lets one attempt through."""
    cutoff = (now or timezone.now()) - timedelta(seconds=SWEEP_GRACE)
    ids = list(
        Delivery.objects.filter(status=Delivery.PENDING, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    queue(ids)
    return ids
