"""Outgoing alert webhooks: one small sender, signed with HMAC-SHA256, delivered by a Celery task
queued only after the transaction that decided the alert commits.

Each POST carries a JSON body ``{"id", "event", "created_at", "data"}`` and three headers:

- ``X-Promptledger-Event``: the event name (e.g. ``drift.alert``);
- ``X-Promptledger-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Promptledger-Signature``: ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}.{body}").

A receiver recomputes the HMAC over the raw body bytes it received, compares in constant time,
rejects timestamps too far from its clock (replays), and drops duplicates by ``id`` (a retry
re-sends the same body with a fresh timestamp). ``verify_signature`` does the first two steps.
Neither the secret nor the URL (which may itself hold a token) is ever put in a body or a log line.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10
SIGNATURE_PREFIX = "sha256="


class AlertDeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; the task retries it."""


def sign(secret, timestamp, body):
    """``sha256=<hex>`` of HMAC-SHA256(secret, "{timestamp}.{body}")."""
    message = f"{timestamp}.{body}".encode()
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(secret, timestamp, body, header, *, tolerance=300, now=None):
    """True when ``header`` is the signature of ``body`` at ``timestamp`` under ``secret``, and the
    timestamp is within ``tolerance`` seconds of ``now`` (None: no age check).

    ``body`` is the raw request body (str or bytes, exactly as received); ``timestamp`` and
    ``header`` are the X-Promptledger-Timestamp and X-Promptledger-Signature header values."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - seconds) > tolerance:
        return False
    if not isinstance(header, str) or not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, str(seconds), body), header)


def _host(url):
    return urlsplit(url).hostname or "?"


def send_webhook(event, payload):
    """Queue one signed POST of ``payload`` to the configured URL once the current transaction
    commits (at once outside one). Returns the delivery id, or None when no URL is configured."""
    if not settings.PROMPTLEDGER_ALERT_WEBHOOK_URL:
        return None
    from .tasks import deliver_alert

    delivery_id = uuid.uuid4().hex
    body = json.dumps(
        {"id": delivery_id, "event": event, "created_at": timezone.now().isoformat(), "data": payload},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    transaction.on_commit(lambda: deliver_alert.delay(event, body))
    return delivery_id


def deliver(event, body):
    """POST ``body`` once, signed now; returns the HTTP status or raises ``AlertDeliveryFailed``.
    Attempts are logged (event, delivery id, host, outcome), not audited: they change no record."""
    url, secret = settings.PROMPTLEDGER_ALERT_WEBHOOK_URL, settings.PROMPTLEDGER_ALERT_WEBHOOK_SECRET
    delivery_id = json.loads(body).get("id", "")
    if not url:
        log.info("alert %s %s dropped: no webhook URL configured", event, delivery_id)
        return None
    if not secret:
        # An unsigned alert cannot be told from a forged one; the in-app notice still stands.
        log.error(
            "alert %s %s not sent to %s: PROMPTLEDGER_ALERT_WEBHOOK_SECRET is empty", event, delivery_id, _host(url)
        )
        return None
    if urlsplit(url).scheme not in ("http", "https"):
        log.error("alert %s %s not sent: the webhook URL is not http(s)", event, delivery_id)
        return None
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - an operator-configured http(s) URL, checked above
        url,
        data=body.encode("utf-8"),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Promptledger-Alerts/1",
            "X-Promptledger-Event": event,
            "X-Promptledger-Timestamp": timestamp,
            "X-Promptledger-Signature": sign(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - checked above
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError) as exc:
        log.warning("alert %s %s to %s failed: %s", event, delivery_id, _host(url), type(exc).__name__)
        raise AlertDeliveryFailed(type(exc).__name__) from None  # the cause may quote the URL
    if not 200 <= code < 300:
        log.warning("alert %s %s to %s answered %s", event, delivery_id, _host(url), code)
        raise AlertDeliveryFailed(f"HTTP {code}")
    log.info("alert %s %s delivered to %s (%s)", event, delivery_id, _host(url), code)
    return code
