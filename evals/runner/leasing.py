"""Leases: which worker holds which item of a run, and the janitor of what a dead holder leaves.

``claim`` leases up to N open items (pending, or whose lease expired) in one statement, ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL (SQLite's write lock serializes claims), so no two live holders share an
item. A live worker ``renew``s its leases (a heartbeat, every third of a lease), so a lease runs out
only when its worker was lost. ``write_result`` and ``write_results`` mark an item done in the
transaction that writes its result, only while its lease is still held and under a unique (run,
case) constraint, so a case is written once however often it is claimed. ``claim_on`` and
``write_results_on`` run the same PostgreSQL statements on a drive's own asynchronous connection
(``runner.driving._Store``). ``reap`` takes back expired
leases (a case already claimed ``PROMPTLEDGER_EVAL_MAX_CLAIMS`` times gets an error result instead),
gives a worker again to every run left without one, and finishes the runs whose items are all done.
"""

import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from audit.transactions import lock_rows
from registry.services.validation import storable_copy

from .. import queueing
from ..models import EvalItem, EvalResult, EvalRun
from .finishing import finalize

log = logging.getLogger(__name__)


def _lease():
    return timedelta(seconds=settings.PROMPTLEDGER_EVAL_LEASE_SECONDS)


def _max_claims():
    return max(1, settings.PROMPTLEDGER_EVAL_MAX_CLAIMS)


# The queue idiom in one statement (one round trip, no transaction around it): lock up to N open
# items nobody else has locked, lease them, and return them with the status each had (an expired
# lease taken over means a lost worker). No ORDER BY: sorting every open item of a big run at each
# claim would cost PostgreSQL more than the claim; walking the (run, status) index of open items stops
# after N, and meets expired leases first, then pending items in the order they were written
# (position order). An expired lease is taken over only below the claim limit: past it, the reaper
# closes the case with an error. MATERIALIZED: the locked rows are chosen once. The statuses are
# written into the statement, not bound, so that PostgreSQL can prove it needs only the partial
# index of open items (``eval_item_open_idx``) whatever plan it makes.
_CLAIM_SQL = """
WITH picked AS MATERIALIZED (
    SELECT id, status FROM {table}
    WHERE run_id = %s AND status IN ({pending}, {claimed})
        AND (status = {pending} OR (lease_until < %s AND claims < %s))
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
UPDATE {table} AS item SET status = %s, lease_until = %s, lease_token = %s, claims = item.claims + 1
FROM picked WHERE item.id = picked.id
RETURNING item.id, item.case_id, item.position, item.snapshot, item.claims, picked.status
"""


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """An item as its claim leased it: what running its case and writing its result need. Not a
    model instance: a worker claims every case of a run, and building instances (and decoding their
    fields through Django) cost it about as much as rendering the case's prompt."""

    pk: int
    run_id: int
    case_id: int
    position: int
    snapshot: dict  # the case as it was when the run started
    claims: int
    lease_until: datetime


_CLAIMED_FIELDS = ("id", "run_id", "case_id", "position", "snapshot", "claims", "lease_until")


def _open(now):
    """Items a claim may take: pending, or leased to a worker that stopped renewing (below the
    claim limit)."""
    return Q(status=EvalItem.PENDING) | Q(status=EvalItem.CLAIMED, lease_until__lt=now, claims__lt=_max_claims())


def claim(run_id, limit, token):
    """Up to ``limit`` items of the run nobody holds (pending, or whose lease expired), leased to
    ``token``, returned in position order as ``ClaimedItem``s. Taking over an expired lease is
    recorded on the run as a recovery (its worker was lost)."""
    if limit <= 0:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        statement = _claim_statement(run_id, limit, token, now)
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, statement.params)
            items, taken_over = statement.read(cursor.fetchall())
    else:
        with transaction.atomic():  # SQLite: its write lock serializes claims
            rows = list(
                EvalItem.objects.filter(run_id=run_id).filter(_open(now)).order_by("position")
                .values_list("id", "status")[:limit]
            )
            if not rows:
                return []
            ids = [pk for pk, _ in rows]
            EvalItem.objects.filter(id__in=ids).update(
                status=EvalItem.CLAIMED, lease_until=now + _lease(), lease_token=token, claims=F("claims") + 1
            )
        held = EvalItem.objects.filter(id__in=ids, lease_token=token).order_by("position")
        items = [ClaimedItem(*values) for values in held.values_list(*_CLAIMED_FIELDS)]
        taken_over = any(status == EvalItem.CLAIMED for _, status in rows)
    if taken_over:
        _record_recovery(run_id, now)
    return items


@dataclass(frozen=True, slots=True)
class _Claim:
    """A claim as one PostgreSQL statement, for whichever connection runs it: its SQL, parameters,
    and how to read its rows (``(items, taken_over)``)."""

    sql: str
    params: list
    run_id: int
    until: datetime

    def read(self, rows):
        taken_over = any(was == EvalItem.CLAIMED for *_, was in rows)
        # What the statement set (the run, the lease) is not read back; jsonb comes as text.
        items = [ClaimedItem(pk, self.run_id, case, position, json.loads(snapshot), claims, self.until)
                 for pk, case, position, snapshot, claims, _ in rows]
        items.sort(key=attrgetter("position"))
        return items, taken_over


def _claim_statement(run_id, limit, token, now):
    until = now + _lease()
    return _Claim(
        sql=_CLAIM_SQL.format(table=connection.ops.quote_name(EvalItem._meta.db_table),
                              pending=f"'{EvalItem.PENDING}'", claimed=f"'{EvalItem.CLAIMED}'"),
        params=[run_id, now, _max_claims(), limit, EvalItem.CLAIMED, until, token],
        run_id=run_id,
        until=until,
    )


async def claim_on(direct, run_id, limit, token, record_recovery):
    """``claim`` on PostgreSQL through ``direct``, a drive's own asynchronous connection (in
    autocommit): the same statement, with no hop to the database thread. A lease taken over is
    recorded by awaiting ``record_recovery(run_id, now)``."""
    if limit <= 0:
        return []
    now = timezone.now()
    statement = _claim_statement(run_id, limit, token, now)
    async with direct.cursor() as cursor:
        await cursor.execute(statement.sql, statement.params)
        items, taken_over = statement.read(await cursor.fetchall())
    if taken_over:
        await record_recovery(run_id, now)
    return items


def renew(run_id, token):
    """The heartbeat of a live worker: every lease ``token`` holds on the run runs a full lease from
    now. One UPDATE; a lease already taken back (by the reaper or another claim) is not renewed.
    Returns how many were renewed."""
    return EvalItem.objects.filter(run_id=run_id, status=EvalItem.CLAIMED, lease_token=token).update(
        lease_until=timezone.now() + _lease()
    )


def _record_recovery(run_id, now):
    # A statement of its own, holding no item row: finalize locks the run's row and then its items,
    # so the run's row taken while holding items could close a cycle with it.
    EvalRun.objects.filter(pk=run_id).update(recoveries=F("recoveries") + 1, resumed_at=now)


def write_result(item, token, fields):
    """Mark the item done and write its result, once; False if the lease was lost meanwhile. A string
    PostgreSQL cannot store (a provider may answer with a NUL) is stored with U+FFFD in its place,
    rather than failing the write (which would leave the item leased, to be run again, and fail
    again)."""
    try:
        with transaction.atomic():
            held = EvalItem.objects.filter(pk=item.pk, status=EvalItem.CLAIMED, lease_token=token).update(
                status=EvalItem.DONE, lease_until=None
            )
            if not held:
                return False
            EvalResult.objects.create(run_id=item.run_id, case_id=item.case_id, position=item.position,
                                      **storable_copy(fields))
            return True
    except IntegrityError:  # already written by an earlier holder: exactly one result per case
        return False


# ``write_results`` on PostgreSQL in one statement (one round trip, no model instances): lock the
# batch's items still held under the token, in id order (no one can take a lease meanwhile, and two
# writers never lock in opposite orders), mark them done and insert their results from one JSON
# document, a row per result (jsonb_to_recordset). All of it one statement, so one transaction: no
# item is marked done without its result, and the unique (run, case) constraint still refuses a
# second result. One document rather than an array per column: psycopg escapes each element of a
# text array in Python (every quote of every verdict), which cost the worker three times as much.
_WRITE_SQL = """
WITH held AS MATERIALIZED (
    SELECT id FROM {items} WHERE id = ANY(%s) AND status = %s AND lease_token = %s ORDER BY id FOR UPDATE
), done AS (
    UPDATE {items} AS item SET status = %s, lease_until = NULL FROM held WHERE item.id = held.id
    RETURNING item.id, item.run_id, item.case_id, item.position
)
INSERT INTO {results} (run_id, case_id, position, output, passed, verdicts, latency_ms, input_tokens,
                       output_tokens, cost_usd, error, attempts, created_at)
SELECT done.run_id, done.case_id, done.position, f.output, f.passed, f.verdicts, f.latency_ms,
       f.input_tokens, f.output_tokens, f.cost_usd, f.error, f.attempts, %s
FROM done JOIN jsonb_to_recordset(%s::jsonb)
    AS f(item_id bigint, output text, passed boolean, verdicts jsonb, latency_ms float8, input_tokens bigint,
         output_tokens bigint, cost_usd float8, error text, attempts bigint)
    ON f.item_id = done.id
"""
_RESULT_COLUMNS = (("output", ""), ("passed", None), ("verdicts", None), ("latency_ms", None),
                   ("input_tokens", 0), ("output_tokens", 0), ("cost_usd", 0.0), ("error", ""), ("attempts", 0))
# In a document dumped with ensure_ascii=False, what PostgreSQL cannot store: a NUL (always written
# as the escape "\u0000") and an unpaired surrogate (written as it is, so never in an ASCII document).
# A backslash before "u0000" in the text also matches: the document is then made storable for
# nothing, which changes nothing.
_NUL_IN_JSON = "\\u0000"
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_number(value):
    # JSON has no NaN or infinity; as strings, float8's own input reads them back.
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


def _results_document(firsts):
    """The batch's results as the JSON ``_WRITE_SQL`` reads, a string PostgreSQL cannot store
    replaced with U+FFFD (``storable_copy``: rare, so the whole document is checked at once)."""
    rows = []
    for item_id, fields in firsts.items():
        row = {"item_id": item_id}
        for name, default in _RESULT_COLUMNS:
            value = fields.get(name, default)
            row[name] = _json_number(value) if value is not None else ([] if name == "verdicts" else None)
        rows.append(row)
    document = json.dumps(rows, ensure_ascii=False)
    if _NUL_IN_JSON in document or (not document.isascii() and _SURROGATE.search(document)):
        document = json.dumps(storable_copy(rows), ensure_ascii=False)
    return document


def _write_statement(token, entries):
    """``_WRITE_SQL`` and its parameters for a batch, for whichever connection runs it."""
    firsts = {}
    for item, fields in entries:
        firsts.setdefault(item.pk, fields)  # a second copy of an item in the batch is skipped
    sql = _WRITE_SQL.format(items=connection.ops.quote_name(EvalItem._meta.db_table),
                            results=connection.ops.quote_name(EvalResult._meta.db_table))
    return sql, [list(firsts), EvalItem.CLAIMED, token, EvalItem.DONE, timezone.now(), _results_document(firsts)]


def _write_results_in_one_statement(token, entries):
    with connection.cursor() as cursor:
        cursor.execute(*_write_statement(token, entries))
        return cursor.rowcount


async def write_results_on(direct, token, entries, write_one):
    """``write_results`` on PostgreSQL through ``direct``, a drive's own asynchronous connection in
    autocommit: the one statement is its own transaction, so no BEGIN or COMMIT, and no hop to the
    database thread. Should a result already exist, the statement changed nothing, and the batch is
    written item by item by awaiting ``write_one(item, token, fields)`` (``write_result``)."""
    if not entries:
        return 0
    try:
        async with direct.cursor() as cursor:
            await cursor.execute(*_write_statement(token, entries))
            return cursor.rowcount
    except psycopg.IntegrityError:
        written = 0
        for item, fields in entries:
            written += await write_one(item, token, fields)
        return written


def write_results(token, entries):
    """``write_result`` for a batch of ``(item, fields)`` in one transaction: the items still held
    under ``token`` are marked done and get their results; the others (lease lost, or a second copy
    of an item already in the batch) are skipped. Returns how many were written. Should a result
    already exist (the unique constraint), the batch is rolled back and written item by item.
    Strings PostgreSQL cannot store are stored as ``write_result`` stores them. On PostgreSQL it is
    one statement (``_WRITE_SQL``): a batch costs the worker one round trip, one JSON document and
    no model instances, which is most of what the database costs a drive per case."""
    if not entries:
        return 0
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                return _write_results_in_one_statement(token, entries)
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
                    rows.append(EvalResult(run_id=item.run_id, case_id=item.case_id, position=item.position,
                                           **storable_copy(fields)))
            EvalResult.objects.bulk_create(rows)
            return len(rows)
    except IntegrityError:
        return sum(write_result(item, token, fields) for item, fields in entries)


def _tasks_per_run():
    return max(1, settings.PROMPTLEDGER_EVAL_TASKS_PER_RUN)


def _give_up(item, now):
    """Close a case whose worker was lost on each of its claims with an error result, once (only
    while the expired lease that was read is still there); False if anything changed meanwhile."""
    try:
        with transaction.atomic():
            closed = EvalItem.objects.filter(
                pk=item.pk, status=EvalItem.CLAIMED, lease_token=item.lease_token, lease_until__lt=now
            ).update(status=EvalItem.DONE, lease_until=None)
            if not closed:
                return False
            EvalResult.objects.create(
                run_id=item.run_id, case_id=item.case_id, position=item.position, passed=False, verdicts=[],
                error=f"worker_lost: worker lost {item.claims} times on this case",
            )
            return True
    except IntegrityError:  # a result already exists: exactly one result per case
        return False


def _take_back(run_id, now):
    """The run's expired leases: a case claimed ``PROMPTLEDGER_EVAL_MAX_CLAIMS`` times (a case that
    kills its worker, or a crash loop) is closed with an error result; the others are pending
    again. Each statement is conditional on the lease still being expired, so a late heartbeat
    or a write of the old holder that got there first wins."""
    expired = EvalItem.objects.filter(run_id=run_id, status=EvalItem.CLAIMED, lease_until__lt=now)
    worn = list(expired.filter(claims__gte=_max_claims()).order_by("position"))
    given_up = sum(_give_up(item, now) for item in worn)
    if given_up:
        log.warning("run %s: %d case(s) lost their worker %d times and were closed with an error",
                    run_id, given_up, _max_claims())
    return expired.update(status=EvalItem.PENDING, lease_until=None) + given_up


def reap():
    """The janitor of runs, looking for states rather than causes (every 15 s from beat):

    - a running run's items whose lease expired (their worker was lost: a live worker renews its
      leases) are taken back: pending again, or closed with an error result past the claim limit;
    - a running run with pending items and no live lease gets a worker: a task is queued for it
      when leases were just taken back, or when nothing has happened for a lease since it started
      or was last given one (the task that was to run it went down with its worker); either is
      recorded on the run (``recoveries``, ``resumed_at``: the page shows "worker lost, resumed");
    - a run that is not finished although none of its items is open (every case has its result,
      but the step that closes it failed: a lost connection, a worker killed between the last
      result and the close) is finished here; ``finalize`` is idempotent, so racing the worker
      that was about to finish it is harmless.

    Returns the ids of the runs it gave a worker or finished."""
    now = timezone.now()
    expired = sorted(
        set(
            EvalItem.objects.filter(
                status=EvalItem.CLAIMED, lease_until__lt=now, run__status=EvalRun.RUNNING
            ).values_list("run_id", flat=True)
        )
    )
    taken_back = [run_id for run_id in expired if _take_back(run_id, now)]
    items = EvalItem.objects.filter(run=OuterRef("pk"))
    pending = EvalRun.objects.filter(status=EvalRun.RUNNING, cancel_requested=False).filter(
        Exists(items.filter(status=EvalItem.PENDING))
    )
    # Orphaned: pending items and no live lease (a run whose worker is alive holds one while it has
    # pending items: its lanes hold what they run), and neither started nor given a worker within
    # the last lease (a run just started has not claimed yet; one just signalled waits for its task).
    quiet = Q(resumed_at__lt=now - _lease()) | Q(resumed_at__isnull=True, started_at__lt=now - _lease())
    orphaned = pending.filter(~Exists(items.filter(status=EvalItem.CLAIMED, lease_until__gte=now))).filter(quiet)
    signalled = sorted(
        set(pending.filter(pk__in=taken_back).values_list("pk", flat=True)) | set(orphaned.values_list("pk", flat=True))
    )
    for run_id in sorted(set(taken_back) | set(signalled)):
        _record_recovery(run_id, now)
    for run_id in signalled:
        queueing.enqueue(run_id, copies=_tasks_per_run())
    if signalled:
        log.warning("the reaper gave %d run(s) that had lost their worker a worker again: %s",
                    len(signalled), signalled)
    settled = (
        EvalRun.objects.filter(status__in=[EvalRun.QUEUED, EvalRun.RUNNING])
        .filter(~Exists(EvalItem.objects.filter(run=OuterRef("pk"), status__in=EvalItem.OPEN)))
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
    return sorted(set(signalled) | set(finished))
