"""Recording audit events.

``record`` must run directly inside the change it records (``audit.transactions.change()``): it
adds the event to the change, and the change appends its events, chained in order, as the last
step of its transaction, holding the chain lock (``audit.appending``, whose names this module
re-exports). The events commit with the change or not at all, and concurrent changes never fork the
chain (``audit.transactions`` has the lock order).
"""

import json

from django.db import connection
from django.utils import timezone

from .appending import CHAIN_LOCK_KEY, append_events, lock_chain, read_sink, write_checkpoint  # noqa: F401 - re-exported
from .models import AuditEvent
from .transactions import LockOrderError, pending_events


class AuditOutsideTransaction(LockOrderError):
    """``record`` was called outside the ``change()`` of the change it records."""


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
