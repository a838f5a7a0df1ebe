"""The chain's writer: its lock, its head, appending a change's events in order, and signed
checkpoints of the head with their sink outside the database. ``audit.transactions.change()``
calls ``append_events`` as its last step; nothing here imports the change or ``record``, so the
two sides never import each other."""

import json
import os

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import metrics

from . import signing
from .chain import GENESIS, checkpoint_hash, checkpoint_payload, event_hash, iso
from .models import AuditCheckpoint, AuditEvent

CHAIN_LOCK_KEY = 0x50_4C_41_55_44_49_54  # "PLAUDIT": the advisory lock every append takes last


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


def append_events(events, *, checkpoint=False):
    """Chain ``events`` after the head and insert them; the caller holds the chain lock (the last
    step of a ``change()``). Signs a checkpoint when the sequence passes a multiple of
    ``PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY``, or of exactly the last of them when ``checkpoint``
    (a sealed change: its last event is signed before anything else can follow it)."""
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
    if checkpoint or (every and sequence // every > (first - 1) // every):
        _checkpoint((sequence, prev_hash))


def write_checkpoint():
    """Sign the current head (a heartbeat when nothing happened since the last one), link it to the
    previous checkpoint, and append it to the sink outside the database once committed."""
    with transaction.atomic():
        return _checkpoint(lock_chain())


def _checkpoint(head):
    sequence, head_hash = head
    previous = AuditCheckpoint.objects.order_by("-id").values_list("checkpoint_hash", flat=True).first()
    key = signing.current()  # one key for the id and the signature, even mid-rotation
    body = {
        "sequence": sequence,
        "head_hash": head_hash,
        "created_at": iso(timezone.now()),
        "prev_checkpoint_hash": previous or GENESIS,
        "key_id": key.key_id,
    }
    digest = checkpoint_hash(body)
    checkpoint = AuditCheckpoint.objects.create(
        sequence=sequence,
        head_hash=head_hash,
        created_at=body["created_at"],
        prev_checkpoint_hash=body["prev_checkpoint_hash"],
        key_id=body["key_id"],
        signature=key.sign(checkpoint_payload(body)),
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
