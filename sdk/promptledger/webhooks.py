"""Signing and verifying Promptledger webhooks, with the standard library only.

Every webhook is a POST whose body is JSON ``{"id", "event", "created_at", "data"}``, with:

- ``X-Promptledger-Event``: the event name, e.g. ``deployment.changed``;
- ``X-Promptledger-Delivery``: this delivery's id (a redelivery gets a new one);
- ``X-Promptledger-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Promptledger-Signature``: ``sha256=`` + hex HMAC-SHA256(secret, f"{timestamp}.{raw body}").

A receiver verifies the signature over the raw body bytes exactly as received (before parsing
them), in constant time, and refuses a timestamp more than ``REPLAY_WINDOW_SECONDS`` (300 s, five
minutes) away from its own clock, so a captured request cannot be replayed later. A retry re-sends
the same body, freshly signed; the body's ``id`` names the event, so a receiver that must act once
drops an ``id`` it has already handled::

    from promptledger.webhooks import verify_signature

    ok = verify_signature(
        secret,
        request.headers["X-Promptledger-Timestamp"],
        request.body,  # raw bytes, not re-serialized JSON
        request.headers["X-Promptledger-Signature"],
    )

The server signs with ``sign`` from this module, so both sides share one definition.
"""

import hashlib
import hmac
import time

SIGNATURE_PREFIX = "sha256="
REPLAY_WINDOW_SECONDS = 300

__all__ = ["REPLAY_WINDOW_SECONDS", "SIGNATURE_PREFIX", "sign", "verify_signature"]


def sign(secret: str, timestamp: str, body: str | bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    message = f"{timestamp}.".encode() + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: str | bytes,
    header: str,
    tolerance: int | None = REPLAY_WINDOW_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``body`` at ``timestamp`` under ``secret`` and the timestamp is
    within ``tolerance`` seconds of ``now`` (default: the current time; ``tolerance=None`` skips
    the age check, e.g. to check a stored request).

    ``body`` is the raw request body (bytes, or str decoded as UTF-8); ``timestamp`` and ``header``
    are the X-Promptledger-Timestamp and X-Promptledger-Signature header values. Never raises on
    malformed input: anything that is not a valid, fresh signature is False."""
    try:
        seconds = int(timestamp)
    except (TypeError, ValueError):
        return False
    if tolerance is not None and abs((time.time() if now is None else now) - seconds) > tolerance:
        return False
    if not isinstance(header, str) or not header.startswith(SIGNATURE_PREFIX) or not secret:
        return False
    if not isinstance(body, str | bytes):
        return False
    return hmac.compare_digest(sign(secret, str(seconds), body), header)
