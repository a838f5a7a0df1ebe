"""The hash chain, in the standard library only (the server's audit log, its offline verifier and the SDK's share it).

``hash = sha256(prev_hash + canonical JSON of the event's fields)``; canonical JSON sorts keys,
uses no whitespace and keeps non-ASCII as UTF-8.
"""

import hashlib
import json

GENESIS = "0" * 64
EVENT_FIELDS = (
    "sequence",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_username",
    "actor_token",
    "action",
    "target_type",
    "target_id",
    "team",
    "prompt",
    "data",
    "request_id",
    "ip",
    "user_agent",
)
CHECKPOINT_FIELDS = ("sequence", "head_hash", "created_at", "prev_checkpoint_hash", "key_id")


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(prev_hash, event):
    body = {name: event[name] for name in EVENT_FIELDS}
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(body)).hexdigest()


def checkpoint_payload(checkpoint):
    """The exact bytes a checkpoint's signature covers."""
    return canonical({name: checkpoint[name] for name in CHECKPOINT_FIELDS})


def checkpoint_hash(checkpoint):
    return hashlib.sha256(checkpoint_payload(checkpoint)).hexdigest()


def iso(dt):
    """ISO 8601 UTC with microseconds and a Z, the one time format of the log."""
    import datetime

    return dt.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
