"""Appending to the audit chain, and signing checkpoints of its head.

``record`` must run inside the transaction of the change it records: the event commits with the
change or not at all. On PostgreSQL an advisory lock taken in that transaction serializes appends,
so concurrent writers never fork the chain; on SQLite the IMMEDIATE write lock does the same.
"""

import json
import os

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import signing
from .chain import GENESIS, checkpoint_hash, checkpoint_payload, event_hash, iso
from .models import AuditCheckpoint, AuditEvent

ADVISORY_LOCK_KEY = 0x50_4C_41_55_44_49_54  # "PLAUDIT"


class AuditOutsideTransaction(RuntimeError):
    """``record`` was called outside the transaction of the change it records."""


def _lock_chain():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])


def _head():
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return last or (0, GENESIS)


def record(*, actor, action, target_type, target_id="", team="", prompt="", data=None):
    """Append one event for ``actor`` doing ``action`` on a target; returns the event."""
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(f"audit event '{action}' must be recorded inside the change's transaction")
    _lock_chain()
    sequence, prev_hash = _head()
    user = actor.user
    fields = {
        "sequence": sequence + 1,
        "occurred_at": timezone.now(),
        "actor_type": actor.kind,
        "actor_id": user.pk if user is not None else None,
        "actor_username": actor.username,
        "actor_token": actor.token.prefix if actor.token is not None else "",
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "team": team or "",
        "prompt": prompt or "",
        "data": json.loads(json.dumps(data or {}, default=str)),
        "request_id": actor.request_id[:64],
        "ip": actor.ip[:64],
        "user_agent": actor.user_agent[:300],
    }
    chain_view = dict(fields, occurred_at=iso(fields["occurred_at"]))
    event = AuditEvent.objects.create(**fields, prev_hash=prev_hash, hash=event_hash(prev_hash, chain_view))
    every = settings.PROMPTLEDGER_AUDIT_CHECKPOINT_EVERY
    if every and event.sequence % every == 0:
        write_checkpoint()
    return event


def write_checkpoint():
    """Sign the current head (a heartbeat when nothing happened since the last one), link it to the
    previous checkpoint, and append it to the sink outside the database once committed."""
    with transaction.atomic():
        _lock_chain()
        sequence, head_hash = _head()
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
        transaction.on_commit(lambda: _append_to_sink(line))
    return checkpoint


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
