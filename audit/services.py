"""Appending to the audit chain, and signing checkpoints of its head.

``record`` must run directly inside the change it records (``audit.transactions.change()``): it
adds the event to the change, and the change appends its events, chained in order, as the last
step of its transaction, holding the chain lock. The events commit with the change or not at all,
and concurrent changes never fork the chain (``audit.transactions`` has the lock order).
"""

import json
import os

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics

from . import signing
from .chain import GENESIS, checkpoint_hash, checkpoint_payload, event_hash, iso
from .models import AuditCheckpoint, AuditEvent
from .transactions import CHAIN_LOCK_KEY, LockOrderError, pending_events


class AuditOutsideTransaction(LockOrderError):
    """``record`` was called outside the ``change()`` of the change it records."""


def _head():
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return last or (0, GENESIS)


def lock_chain():
    """Take the chain lock, the last lock of a change (``audit.transactions``), and return the
    chain's head ``(sequence, hash)``. On PostgreSQL one round trip: the foreign-key checks that
    would wait until commit run first (``SET CONSTRAINTS ALL IMMEDIATE``), so once the lock is
    held nothing is left that could wait for a row; then the lock; then the head, read under it.
    On SQLite the IMMEDIATE transaction has held the write lock from its start."""
    if connection.vendor != "postgresql":
        return _head()
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        # No parameters (the key is a constant), so the three statements go in one message.
        cursor.execute(
            f"SET CONSTRAINTS ALL IMMEDIATE; SELECT pg_advisory_xact_lock({int(CHAIN_LOCK_KEY)}); "  # noqa: S608
            f"SELECT sequence, hash FROM {table} ORDER BY sequence DESC LIMIT 1"
        )
        cursor.cursor.nextset()
        cursor.cursor.nextset()
        last = cursor.fetchone()
    return tuple(last) if last else (0, GENESIS)


def record(*, actor, action, target_type, target_id="", team="", prompt="", data=None):
    """Add one event for ``actor`` doing ``action`` on a target to the current change; returns the
    event, whose sequence, hash and id are set when the change appends it (as it commits)."""
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(
            f"audit event '{action}' must be recorded inside the change's transaction, "
            "audit.transactions.change()"
        )
    try:
        events = pending_events()
    except LockOrderError as exc:
        raise AuditOutsideTransaction(f"audit event '{action}': {exc}") from exc
    user = actor.user
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor_type=actor.kind,
        actor_id=user.pk if user is not None else None,
        actor_username=actor.username,
        actor_token=actor.token.prefix if actor.token is not None else "",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        team=team or "",
        prompt=prompt or "",
        data=json.loads(json.dumps(_with_client_id(data or {}, actor), default=str)),
        request_id=actor.request_id[:64],
        ip=actor.ip[:64],
        user_agent=actor.user_agent[:300],
    )
    events.append(event)
    return event


def _with_client_id(data, actor):
    client_id = getattr(actor, "client_request_id", "")
    if client_id and isinstance(data, dict):
        return {**data, "client_request_id": client_id}
    return data


def append_events(events):
    """Chain ``events`` after the head and insert them; the caller holds the chain lock (the last
    step of a ``change()``). Signs a checkpoint when the sequence passes a multiple of
    ``PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY``."""
    sequence, prev_hash = lock_chain()
    first = sequence + 1
    for event in events:
        sequence += 1
        event.sequence, event.prev_hash = sequence, prev_hash
        event.hash = prev_hash = event_hash(prev_hash, event.as_chain_dict())
    AuditEvent.objects.bulk_create(events)
    # Counted here, the last step before the commit (no on_commit callback of its own).
    metrics.audit_events_appended([event.action for event in events])
    every = settings.PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY
    if every and sequence // every > (first - 1) // every:
        _checkpoint((sequence, prev_hash))


def write_checkpoint():
    """Sign the current head (a heartbeat when nothing happened since the last one), link it to the
    previous checkpoint, and append it to the sink outside the database once committed."""
    with transaction.atomic():
        return _checkpoint(lock_chain())


def _checkpoint(head):
    sequence, head_hash = head
    previous = AuditCheckpoint.objects.order_by("-id").values_list("checkpoint_hash", flat=True).first()
    body = {
        "sequence": sequence,
        "head_hash": head_hash,
        "created_at": iso(timezone.now()),
        "prev_checkpoint_hash": previous or GENESIS,
        "key_id": signing.key_id(),
    }
    digest = checkpoint_hash(body)
    checkpoint = AuditCheckpoint.objects.create(
        sequence=sequence,
        head_hash=head_hash,
        created_at=body["created_at"],
        prev_checkpoint_hash=body["prev_checkpoint_hash"],
        key_id=body["key_id"],
        signature=signing.sign(checkpoint_payload(body)),
        checkpoint_hash=digest,
    )
    line = json.dumps({**body, "signature": checkpoint.signature, "checkpoint_hash": digest})
    transaction.on_commit(lambda: _committed(line))
    return checkpoint


def _committed(line):
    _append_to_sink(line)
    metrics.audit_checkpoint_written()


def _append_to_sink(line):
    path = settings.PROMPTLEDGER_AUDIT_SINK
    if not path:
        return
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoints.jsonl")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_sink():
    path = settings.PROMPTLEDGER_AUDIT_SINK
    if path and os.path.isdir(path):
        path = os.path.join(path, "checkpoints.jsonl")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
