"""Sending the audit trail to a SIEM: batches of events, in sequence order, at least once.

Each stream keeps a cursor in PostgreSQL: the last sequence its receiver acknowledged with a 2xx,
and that event's chain hash. A worker takes the stream's lease with one conditional UPDATE (free or
expired, and due), reads the next ``batch_size`` events after the cursor, POSTs them, and moves the
cursor only on a 2xx, only while it still holds the lease. So:

- nothing is skipped: a batch must start at ``cursor + 1`` and link to ``cursor_hash`` (each event's
  ``prev_hash`` is the hash of the one before), or nothing is sent and the stream says why;
- a receiver down, refusing, slow or answering non-2xx gets the same batch again after a backoff
  (``min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (failures - 1))``, jittered, or the receiver's
  ``Retry-After`` when longer, never more than ``BACKOFF_MAX``); a stream never gives up;
- a worker that dies mid-batch leaves the lease to expire; the next worker resends from the cursor,
  so a receiver may see a batch twice (de-duplicate by ``sequence``), never a gap;
- one worker at a time: the lease is renewed before each batch, lasts longer than a POST may, and a
  cursor is moved only by the lease holder.

The lines are the JSONL export's event lines (``audit.export.event_lines``), byte for byte, so the
receiver's copy verifies with ``python -m audit.verify --stream-copy``. Splunk HEC wraps each line as
``{"time", "source", "sourcetype", "event"}``. Delivery writes no audit event (it would feed
itself); it is observable on the stream's page and in /metrics (docs/siem.md).
"""

import email.utils
import json
import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import F, Max, Q
from django.utils import timezone

from audit.chain import GENESIS
from audit.export import event_lines
from audit.models import AuditEvent
from core import metrics
from core.tasks import send_task

from .models import AuditStream
from .sending import post_once

log = logging.getLogger(__name__)

USER_AGENT = "Promptledger-AuditStream/1"
RUN_SECONDS = 20  # one task sends batches for at most this long, then leaves the rest to the next tick


def _conf(name, default):
    return float(getattr(settings, f"PROMPTLEDGER_AUDIT_STREAM_{name}", default))


def lease_seconds():
    """Longer than any one POST may take (the timeout, in all: ``webhooks.sending``), unless the
    operator set ``PROMPTLEDGER_AUDIT_STREAM_LEASE``."""
    return _conf("LEASE", 0) or 4 * _conf("TIMEOUT", 10) + 30


def backoff_seconds(failures, retry_after=None):
    """The wait after the ``failures``-th failure in a row: jittered in [half, all] of the nominal,
    at least the receiver's ``Retry-After``, and never more than ``BACKOFF_MAX``."""
    ceiling = _conf("BACKOFF_MAX", 300)
    nominal = min(ceiling, _conf("BACKOFF_BASE", 2) * 2 ** (failures - 1))
    wait = random.uniform(nominal / 2, nominal)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, ceiling)


def retry_after_seconds(value, now=None):
    """``Retry-After`` as seconds (a number of seconds, or an HTTP date), or None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


# --- the lease ------------------------------------------------------------------------------------
def claim(stream_id, now=None):
    """Take the stream's lease if it is active, due and nobody holds it; returns the lease's owner
    token, or None."""
    now = now or timezone.now()
    owner = uuid.uuid4().hex
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    taken = AuditStream.objects.filter(free, due, pk=stream_id, active=True).update(
        lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds())
    )
    return owner if taken == 1 else None


def _mine(stream_id, owner):
    return AuditStream.objects.filter(pk=stream_id, lease_owner=owner, lease_until__gte=timezone.now())


def _renew(stream_id, owner):
    now = timezone.now()
    return _mine(stream_id, owner).update(lease_until=now + timedelta(seconds=lease_seconds())) == 1


def _release(stream_id, owner, *, wait, **fields):
    """Give the lease back; the stream is due again in ``wait`` seconds."""
    now = timezone.now()
    AuditStream.objects.filter(pk=stream_id, lease_owner=owner).update(
        lease_owner="", lease_until=None, next_attempt_at=now + timedelta(seconds=wait), **fields
    )


# --- one batch ------------------------------------------------------------------------------------
def next_batch(stream):
    """``(lines, first, last, last_hash)`` of the events after the cursor, or None when caught up.
    Raises ``ChainGap`` when the events do not continue the cursor: nothing is ever skipped."""
    queryset = AuditEvent.objects.filter(
        sequence__gt=stream.cursor, sequence__lte=stream.cursor + stream.batch_size
    )
    rows = list(queryset.order_by("sequence").values_list("sequence", "prev_hash", "hash"))
    if not rows:
        later = AuditEvent.objects.filter(sequence__gt=stream.cursor).order_by("sequence").values_list(
            "sequence", flat=True
        ).first()
        if later is not None:
            raise ChainGap(f"event {stream.cursor + 1} is missing (the next one is {later}): not sent")
        return None
    expected = stream.cursor + 1
    prev = stream.cursor_hash
    for sequence, prev_hash, hash_ in rows:
        if sequence != expected:
            raise ChainGap(f"event {expected} is missing (the next one is {sequence}): not sent")
        if prev_hash != prev:
            raise ChainGap(f"event {sequence} does not link to the event before it (chain broken): not sent")
        expected, prev = sequence + 1, hash_
    last = rows[-1][0]
    # The export's own writer of event lines, in Python: a batch is small, and COPY would want a
    # transaction of its own per batch.
    lines = [line for _, _, block in event_lines(queryset.filter(sequence__lte=last), in_database=False)
             for line in block]
    return lines, rows[0][0], last, rows[-1][2]


class ChainGap(RuntimeError):
    """The events after the cursor do not continue it; the stream stops rather than skip."""


def body_of(stream, lines):
    """The bytes POSTed for ``lines``: the lines themselves, or one HEC event object per line."""
    if stream.format != AuditStream.SPLUNK_HEC:
        return "".join(lines).encode("utf-8")
    sourcetype = json.dumps(stream.sourcetype)
    out = []
    for line in lines:
        # The event's time, seconds since the epoch, from the line's occurred_at ("...Z").
        stamp = json.loads(line)["occurred_at"]
        seconds = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        out.append(
            f'{{"time":{seconds:.6f},"source":"promptledger","sourcetype":{sourcetype},"event":{line.rstrip()}}}\n'
        )
    return "".join(out).encode("utf-8")


def _headers(stream, first, last):
    headers = {
        "User-Agent": USER_AGENT,
        "X-Promptledger-Stream": stream.name,
        "X-Promptledger-First-Sequence": str(first),
        "X-Promptledger-Last-Sequence": str(last),
    }
    token = stream.auth_token()
    if stream.format == AuditStream.SPLUNK_HEC:
        headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Splunk {token}"
    else:
        headers["Content-Type"] = "application/x-ndjson"
        if token:
            headers["Authorization"] = f"Bearer {token}"
    return headers


def post(stream, body, headers):
    """POST once to the checked address, within the timeout in all (``webhooks.sending``);
    ``(status or None, error or "", Retry-After seconds or None)``."""
    answer = post_once(stream.url, body, headers, timeout=_conf("TIMEOUT", 10))
    return answer.status, answer.error, retry_after_seconds(answer.retry_after)


# --- a run: batches until caught up, failed, or out of time -----------------------------------------
def run(stream_id):
    """Send a stream's due batches if its lease can be taken; returns the number of events the
    receiver acknowledged in this run, or None when the stream was not due or someone has it."""
    owner = claim(stream_id)
    if owner is None:
        return None
    try:
        return _send(stream_id, owner)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the lease goes back and the stream says so
        log.exception("audit stream %s: sending failed", stream_id)
        _release(stream_id, owner, wait=backoff_seconds(1), last_attempt_at=timezone.now(),
                 last_error=f"internal error ({type(exc).__name__}); see the worker's log")
        return 0


def _send(stream_id, owner):
    started, sent = time.monotonic(), 0
    while True:
        stream = AuditStream.objects.get(pk=stream_id)
        if not stream.active:  # paused while this worker was sending
            _release(stream_id, owner, wait=0)
            return sent
        try:
            batch = next_batch(stream)
        except ChainGap as exc:
            log.error("audit stream %s: %s", stream.name, exc)
            _release(stream_id, owner, wait=_conf("BACKOFF_MAX", 300), last_error=str(exc)[:200])
            return sent
        if batch is None:
            _release(stream_id, owner, wait=stream.interval_seconds)
            return sent
        lines, first, last, last_hash = batch
        now = timezone.now()
        code, error, retry_after = post(stream, body_of(stream, lines), _headers(stream, first, last))
        if error:
            failures = stream.failures + 1
            wait = backoff_seconds(failures, retry_after)
            _release(stream_id, owner, wait=wait, failures=failures, last_attempt_at=now,
                     last_status_code=code, last_error=error[:200])
            metrics.audit_stream_batch(stream=stream.name, outcome="failed", events=0)
            log.warning("audit stream %s: events %s..%s not accepted (%s); again in %.0f s",
                        stream.name, first, last, error, wait)
            return sent
        moved = _mine(stream_id, owner).filter(cursor=stream.cursor).update(
            cursor=last, cursor_hash=last_hash, failures=0, last_attempt_at=now, last_success_at=timezone.now(),
            last_status_code=code, last_error="", delivered_events=F("delivered_events") + len(lines),
        )
        if moved != 1:  # the lease ran out meanwhile: whoever holds it now resends from the cursor
            log.warning("audit stream %s: lease lost after sending events %s..%s", stream.name, first, last)
            return sent
        sent += len(lines)
        metrics.audit_stream_batch(stream=stream.name, outcome="delivered", events=len(lines))
        log.info("audit stream %s: events %s..%s delivered (HTTP %s)", stream.name, first, last, code)
        if len(lines) < stream.batch_size:
            _release(stream_id, owner, wait=stream.interval_seconds)
            return sent
        if time.monotonic() - started > RUN_SECONDS or not _renew(stream_id, owner):
            _release(stream_id, owner, wait=0)
            return sent


def due_streams(now=None):
    """Ids of active streams that are due and not held by a live lease."""
    now = now or timezone.now()
    return list(
        AuditStream.objects.filter(active=True)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def tick():
    """Beat, every few seconds: signal one send per due stream (a duplicate signal finds the lease
    taken and does nothing). Returns the ids signalled."""
    ids = due_streams()
    for stream_id in ids:
        send_task("webhooks.tasks.send_audit_stream", args=[stream_id])
    return ids


# --- lag --------------------------------------------------------------------------------------------
def lags(streams, *, now=None):
    """``{stream id: (events behind, seconds behind)}``: events after each cursor, and the age of the
    oldest of them (0 when caught up). Two queries however many streams."""
    now = now or timezone.now()
    head = head_sequence()
    behind = {s.pk: max(0, head - s.cursor) for s in streams}
    wanted = {s.cursor + 1 for s in streams if behind[s.pk]}
    oldest = dict(AuditEvent.objects.filter(sequence__in=wanted).values_list("sequence", "occurred_at")) if wanted \
        else {}
    found = {}
    for s in streams:
        moment = oldest.get(s.cursor + 1) if behind[s.pk] else None
        found[s.pk] = (behind[s.pk], max(0.0, (now - moment).total_seconds()) if moment else 0.0)
    return found


def lag(stream, *, now=None):
    """``(events behind, seconds behind)`` of one stream."""
    return lags([stream], now=now)[stream.pk]


def head_sequence():
    return AuditEvent.objects.aggregate(head=Max("sequence"))["head"] or 0


def starting_point(start):
    """``(cursor, cursor_hash)`` for a new stream: the whole trail from the first event, or only
    events from now on."""
    if start == "now":
        last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
        if last is not None:
            return last
    return 0, GENESIS
