"""Leases: which worker holds which item of a run, and the janitor of what a dead holder leaves.

``claim`` leases up to N open items (pending, or whose lease expired) in one statement, ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL (SQLite's write lock serializes claims), so no two live holders share an
item. ``write_result`` and ``write_results`` mark an item done in the transaction that writes its
result, only while its lease is still held and under a unique (run, case) constraint, so a case is
written once however often it is claimed. ``reap`` re-signals the runs whose leases expired and
finishes the runs whose items are all done.
"""

import logging
from datetime import timedelta
from operator import attrgetter

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from audit.transactions import lock_rows

from ..models import EvalItem, EvalResult, EvalRun
from .finishing import finalize

log = logging.getLogger(__name__)


def _lease():
    return timedelta(seconds=settings.PROMPTLEDGER_EVAL_LEASE_SECONDS)


# The queue idiom in one statement (one round trip, no transaction around it): lock up to N open
# items nobody else has locked, lease them, and return them. No ORDER BY: sorting every open item
# of a big run at each claim would cost PostgreSQL more than the claim; walking the (run, status)
# index instead stops after N, and meets expired leases first, then pending items in the order
# they were written (position order).
_CLAIM_SQL = """
UPDATE {table} SET status = %s, lease_until = %s, lease_token = %s, claims = claims + 1
WHERE id IN (
    SELECT id FROM {table}
    WHERE run_id = %s AND status IN (%s, %s) AND (status = %s OR lease_until < %s)
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING *
"""


def claim(run_id, limit, token):
    """Up to ``limit`` items of the run nobody holds (pending, or whose lease expired), leased to
    ``token``, returned in position order."""
    if limit <= 0:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        sql = _CLAIM_SQL.format(table=connection.ops.quote_name(EvalItem._meta.db_table))
        params = [EvalItem.CLAIMED, now + _lease(), token, run_id, EvalItem.CLAIMED, EvalItem.PENDING,
                  EvalItem.PENDING, now, limit]
        return sorted(EvalItem.objects.raw(sql, params), key=attrgetter("position"))
    with transaction.atomic():  # SQLite: its write lock serializes claims
        open_items = (
            EvalItem.objects.filter(run_id=run_id)
            .filter(Q(status=EvalItem.PENDING) | Q(status=EvalItem.CLAIMED, lease_until__lt=now))
            .order_by("position")
        )
        ids = list(open_items.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        EvalItem.objects.filter(id__in=ids).update(
            status=EvalItem.CLAIMED, lease_until=now + _lease(), lease_token=token, claims=F("claims") + 1
        )
    return list(EvalItem.objects.filter(id__in=ids, lease_token=token).order_by("position"))


def write_result(item, token, fields):
    """Mark the item done and write its result, once; False if the lease was lost meanwhile."""
    try:
        with transaction.atomic():
            held = EvalItem.objects.filter(pk=item.pk, status=EvalItem.CLAIMED, lease_token=token).update(
                status=EvalItem.DONE, lease_until=None
            )
            if not held:
                return False
            EvalResult.objects.create(run_id=item.run_id, case_id=item.case_id, position=item.position, **fields)
            return True
    except IntegrityError:  # already written by an earlier holder: exactly one result per case
        return False


def write_results(token, entries):
    """``write_result`` for a batch of ``(item, fields)`` in one transaction: the items still held
    under ``token`` are marked done and get their results; the others (lease lost, or a second copy
    of an item already in the batch) are skipped. Returns how many were written. Should a result
    already exist (the unique constraint), the batch is rolled back and written item by item."""
    if not entries:
        return 0
    try:
        with transaction.atomic():
            # Locked in id order (PostgreSQL; SQLite's IMMEDIATE transaction holds the write lock):
            # no one can take a lease between this read and the update below.
            held = set(
                lock_rows(EvalItem.objects)
                .filter(id__in={item.pk for item, _ in entries}, status=EvalItem.CLAIMED, lease_token=token)
                .order_by("id")
                .values_list("id", flat=True)
            )
            if not held:
                return 0
            EvalItem.objects.filter(id__in=held).update(status=EvalItem.DONE, lease_until=None)
            rows = []
            for item, fields in entries:
                if item.pk in held:
                    held.discard(item.pk)
                    rows.append(EvalResult(run_id=item.run_id, case_id=item.case_id, position=item.position, **fields))
            EvalResult.objects.bulk_create(rows)
            return len(rows)
    except IntegrityError:
        return sum(write_result(item, token, fields) for item, fields in entries)


def _tasks_per_run():
    return max(1, settings.PROMPTLEDGER_EVAL_TASKS_PER_RUN)


def reap():
    """The janitor of runs, looking for states rather than causes (every 15 s from beat):

    - a run with items whose lease expired (their worker died) is signalled again;
    - a run that is not finished although none of its items is open (every case has its result,
      but the step that closes it failed: a lost connection, a worker killed between the last
      result and the close) is finished here; ``finalize`` is idempotent, so racing the worker
      that was about to finish it is harmless.

    Returns the ids of the runs it signalled or finished."""
    from ..services import enqueue

    now = timezone.now()
    expired = sorted(
        set(
            EvalItem.objects.filter(
                status=EvalItem.CLAIMED, lease_until__lt=now, run__status=EvalRun.RUNNING
            ).values_list("run_id", flat=True)
        )
    )
    for run_id in expired:
        enqueue(run_id, copies=_tasks_per_run())
    settled = (
        EvalRun.objects.filter(status__in=[EvalRun.QUEUED, EvalRun.RUNNING])
        .filter(~Exists(EvalItem.objects.filter(run=OuterRef("pk"), status__in=[EvalItem.PENDING, EvalItem.CLAIMED])))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    finished = []
    for run_id in settled:
        try:
            if finalize(run_id) is not None:
                finished.append(run_id)
        except Exception:  # noqa: BLE001 - one run that cannot close must not stop the others
            log.exception("the reaper could not finish run %s", run_id)
    if finished:
        log.warning("the reaper finished %d run(s) whose cases were all done: %s", len(finished), finished)
    return sorted(set(expired) | set(finished))
