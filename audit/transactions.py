"""The one lock order of Promptledger's writes, and the bounded retry of transient failures.

Every audited change runs in ``change()``. Its lock order, which cannot cycle:

1. row locks, in the order the service takes them (``lock_rows``: ``FOR NO KEY UPDATE`` of the
   rows meant and no joined row, so a foreign-key check, ``FOR KEY SHARE``, never waits on one);
2. the audit chain's lock (a PostgreSQL advisory lock), LAST, at the very end of the change, after
   ``SET CONSTRAINTS ALL IMMEDIATE`` has run the foreign-key checks PostgreSQL would otherwise run
   at commit. Holding it, the transaction reads the chain's head, inserts its events chained in
   order, and commits: it waits for no row, so no holder of the chain lock is ever part of a cycle.

``audit.services.record`` does not write: it adds the event to the change, which appends them all
in that last step. An event still commits with its change or not at all (the same transaction),
each is chained and hashed before its change is visible to anyone, and appends are serialized by
the lock, so the chain never forks. The lock is held for a few milliseconds whatever the change
did, instead of for its whole transaction: audited changes overlap, and only their appends queue.
(Taking the lock first, before any row, also cannot cycle, but holds it for the whole change: with
16 clients it was busy three quarters of the time and writes queued behind it; docs/concurrency.md
has both sets of figures.)

Rules that keep the order true, each enforced where it can be broken:
- ``record`` runs directly in a ``change()`` (no plain savepoint between: its rollback could not
  take back the event);
- a ``change()`` inside another sits directly in it (its events join the outer one's, and leave
  them again if it rolls back);
- nothing runs after the append but the commit.

``retry_transient`` re-runs a whole service call, a bounded number of times, when PostgreSQL broke
a deadlock between row locks or a serialization failure: the retried unit starts again from its
first read, and nothing of the failed attempt was committed.
"""

import functools
import logging
import random
import time
from contextlib import contextmanager

from django.db import OperationalError, connection, transaction

from core.errors import Busy

from .appending import append_events

log = logging.getLogger(__name__)

TRANSIENT_SQLSTATES = {"40P01": "deadlock detected", "40001": "serialization failure"}
ATTEMPTS = 5
_EVENTS = "promptledger_audit_events"  # on a change()'s atomic block: its list of events


class LockOrderError(RuntimeError):
    """Code that would break the lock order: an audit event or a nested change() outside the
    change() it belongs to."""


def _change_blocks():
    return [block for block in connection.atomic_blocks if hasattr(block, _EVENTS)]


@contextmanager
def change(*, checkpoint=False):
    """The transaction of an audited change; its events are chained at its end (see above).

    Nested directly inside another ``change()`` it is a savepoint whose events join the outer
    change's, and are dropped if it rolls back. ``checkpoint`` (outermost changes only) also signs a
    checkpoint of its last event under the same lock, so that event is covered by a signature at
    once (an evidence pack's seal)."""
    outer = _change_blocks()
    if outer and checkpoint:
        raise LockOrderError("a change() that signs a checkpoint of its last event must be the outermost one")
    if outer and connection.atomic_blocks[-1] is not outer[-1]:
        raise LockOrderError("a change() inside a plain atomic() inside another change(): make the middle one a "
                             "change() too, so a rollback of it takes its audit events back")
    with transaction.atomic():
        block = connection.atomic_blocks[-1]
        if outer:
            events = getattr(outer[0], _EVENTS)
            start = len(events)
            setattr(block, _EVENTS, events)
            try:
                yield
            except BaseException:
                del events[start:]
                raise
            return
        events = []
        setattr(block, _EVENTS, events)
        yield
        if events:
            append_events(events, checkpoint=checkpoint)


def pending_events():
    """The list of events of the change ``record`` is called in; ``LockOrderError`` when it is not
    called directly inside a ``change()``."""
    blocks = connection.atomic_blocks
    if not blocks or not hasattr(blocks[-1], _EVENTS):
        raise LockOrderError(
            "audit events are recorded directly inside audit.transactions.change(), which chains them at its end"
        )
    return getattr(blocks[-1], _EVENTS)


def lock_rows(queryset, *, deleting=False):
    """``queryset`` locked ``FOR NO KEY UPDATE``, its own rows only (step 1 of the order); rows the
    change will delete are locked ``FOR UPDATE`` at once, rather than upgraded later."""
    return queryset.select_for_update(of=("self",), no_key=not deleting)


def transient(exc):
    """The SQLSTATE of a deadlock or serialization failure behind ``exc``, else None."""
    state = getattr(exc.__cause__, "sqlstate", None)
    return state if state in TRANSIENT_SQLSTATES else None


def retry_transient(fn):
    """Run ``fn`` again from the start when PostgreSQL broke a deadlock or a serialization
    failure in it, at most ``ATTEMPTS`` times with a short random wait; then ``Busy`` (503).
    Inside an outer transaction there is nothing to retry alone: the error goes up to it."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except OperationalError as exc:
                state = transient(exc)
                if state is None or connection.in_atomic_block:
                    raise
                log.warning("%s: %s (attempt %d of %d)", fn.__qualname__, TRANSIENT_SQLSTATES[state], attempt,
                            ATTEMPTS)
                if attempt == ATTEMPTS:
                    raise Busy(
                        "the database was busy with other changes and this one did not go through; "
                        "nothing was written, try again",
                    ) from exc
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    return call
