"""Running an eval: PostgreSQL holds the truth, the broker only signals.

A worker claims pending items (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) with a lease, runs them
concurrently in a rolling window, and writes each result in the transaction that marks its item
done — conditionally on still holding the lease, and under a unique (run, case) constraint, so a
case is written once however often it is claimed. Items whose lease expired (a killed worker) are
claimable again; ``reap`` re-signals their runs. Cancelling is a flag checked before each call.

Throughput: a drive keeps its concurrency in flight all the time (each of its lanes starts the
next case as soon as its last one is done, never waiting for a window to drain). Every database
call of a drive runs on one thread (the worker's, on its connection), sharing the interpreter with
the provider calls, so that thread's work per case is kept small: items are claimed in the
background half a window before the lanes run out (one claim per several cases), and finished
cases are written in batches while the next cases run — still one transaction per batch holding
each item's done-mark with its result, each conditional on its lease. Past what one interpreter
can drive, ``PROMPTLEDGER_EVAL_TASKS_PER_RUN`` shares a run between worker processes.
"""

import asyncio
import logging
import statistics
import time
import uuid
from collections import defaultdict, deque
from datetime import timedelta
from operator import attrgetter

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from audit.transactions import change, lock_rows, retry_transient
from registry import rendering
from registry.errors import ValidationFailed
from registry.services.validation import storable_copy

from . import assertions, events, providers
from .models import EvalItem, EvalResult, EvalRun

log = logging.getLogger(__name__)


def db(fn):
    return sync_to_async(fn, thread_sensitive=True)


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


class _ResultWriter:
    """Writes finished cases on the database thread while the next cases run: a batch (at most
    ``batch_size``) is what finished within ``linger`` seconds of the first of them, or while the
    last batch was being written — a few transactions a second rather than one per case, for a
    progress bar that lags by a tenth of a second. ``add`` blocks nobody; ``wait_for_room`` holds
    new cases back while more than ``limit`` results wait; ``close`` writes what is left at once."""

    def __init__(self, token, *, batch_size=64, limit=128, linger=0.1):
        self.token, self.batch_size, self.limit, self.linger = token, batch_size, limit, linger
        self.pending = []
        self.wake, self.room, self.full = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.closing = False
        self.task = asyncio.ensure_future(self._write())

    def add(self, item, fields):
        self.pending.append((item, fields))
        self.wake.set()
        if len(self.pending) >= self.batch_size:
            self.full.set()

    async def wait_for_room(self):
        while len(self.pending) > self.limit and not self.task.done():
            self.room.clear()
            await self.room.wait()

    async def _write(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            if not self.closing and len(self.pending) < self.batch_size:
                self.full.clear()
                try:
                    await asyncio.wait_for(self.full.wait(), self.linger)
                except TimeoutError:
                    pass
            while self.pending:
                batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
                self.room.set()
                try:
                    await db(write_results)(self.token, batch)
                except Exception:  # a lost connection: the items stay leased, and are claimed again when it expires
                    log.exception("writing %d results failed", len(batch))
            if self.closing:
                return

    async def close(self):
        """Return once every result added so far is written."""
        self.closing = True
        self.wake.set()
        self.full.set()
        await self.task


class _CancelFlag:
    """Reads the run's cancel flag at most every quarter second."""

    def __init__(self, run_id):
        self.run_id, self.checked, self.value = run_id, 0.0, False

    async def __call__(self):
        if not self.value and time.monotonic() - self.checked > 0.25:
            self.checked = time.monotonic()
            self.value = await db(lambda: EvalRun.objects.filter(pk=self.run_id, cancel_requested=True).exists())()
        return self.value


async def _run_case(item, run, cancelled):
    """Render, call the provider, score. Returns result fields, or None when cancelled."""
    snapshot = item.snapshot
    try:
        messages = rendering.render(run.version.messages, run.version.variables, snapshot["vars"])
    except ValidationFailed as exc:
        return {"passed": False, "error": f"render: {exc.detail}", "attempts": 0, "verdicts": []}
    if await cancelled():
        return None
    config = run.model_config
    try:
        completion = await providers.complete(
            provider=config["provider"],
            model=config["name"],
            messages=messages,
            params=config.get("params") or {},
            response_schema=config.get("response_schema"),
        )
    except providers.ProviderError as exc:
        return {"passed": False, "error": f"{exc.code}: {exc}", "attempts": exc.attempts or 0, "verdicts": []}
    verdicts = await assertions.evaluate(
        snapshot["assertions"],
        output=completion.text,
        expected=snapshot.get("expected"),
        latency_ms=completion.latency_ms,
        cost_usd=completion.cost_usd,
    )
    return {
        "output": completion.text,
        "passed": assertions.case_passed(verdicts),
        "verdicts": [assertions.verdict_dict(v) for v in verdicts],
        "latency_ms": completion.latency_ms,
        "input_tokens": completion.input_tokens,
        "output_tokens": completion.output_tokens,
        "cost_usd": completion.cost_usd,
        "attempts": completion.attempts,
    }


class _Feed:
    """Items claimed ahead of the lanes that run them: when fewer than half of ``window`` wait, one
    claim (in the background, while the lanes keep calling) tops them up to ``window``. ``next()``
    is None once a claim found nothing left and nothing waits. An item waits at most about one
    provider call, far inside its lease; and as few wait as that allows, because when several
    workers share a run, the items one holds at the end are the others' idle time."""

    def __init__(self, run_id, token, window):
        self.run_id, self.token, self.window = run_id, token, window
        self.ready, self.exhausted, self.refill = deque(), False, None

    async def _claim(self):
        items = await db(claim)(self.run_id, self.window - len(self.ready), self.token)
        self.ready.extend(items)
        self.exhausted = not items

    def _top_up(self):
        low = max(1, self.window // 2)
        if not self.exhausted and len(self.ready) < low and (self.refill is None or self.refill.done()):
            self.refill = asyncio.ensure_future(self._claim())

    async def next(self):
        while True:
            self._top_up()
            if self.ready:
                item = self.ready.popleft()
                self._top_up()
                return item
            if self.refill is None or self.refill.done():
                if self.refill is not None:
                    self.refill.result()  # a failed claim ends the drive; its items stay leased
                if self.exhausted:
                    return None
                continue
            await asyncio.shield(self.refill)

    async def close(self):
        if self.refill is not None and not self.refill.done():
            await asyncio.wait([self.refill])


async def _drive(run, token, concurrency):
    """Keep ``concurrency`` cases in flight: each lane takes the next item as soon as its last case
    is handed to the writer, so the provider never waits for a window to drain."""
    cancelled = _CancelFlag(run.pk)
    writer = _ResultWriter(token, limit=4 * concurrency)
    feed = _Feed(run.pk, token, concurrency)

    async def lane():
        while not await cancelled():
            await writer.wait_for_room()
            item = await feed.next()
            if item is None:
                return
            try:
                fields = await _run_case(item, run, cancelled)
            except Exception as exc:  # noqa: BLE001 - a scorer or adapter bug is this case's error, not the run's end
                log.exception("case %s of run %s failed", item.case_id, run.pk)
                fields = {"passed": False, "error": f"internal: {type(exc).__name__}: {exc}", "verdicts": []}
            if fields is not None:
                # A provider may answer with a NUL: stored as U+FFFD rather than failing the batch
                # (which would leave its items leased, to be run again, and fail again).
                writer.add(item, storable_copy(fields))

    lanes = [asyncio.ensure_future(lane()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*lanes)
    finally:
        for pending in lanes:  # only when a lane failed (a lost connection): the others stop too
            pending.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        await feed.close()
        await writer.close()
    await providers.aclose()


def _tasks_per_run():
    return max(1, settings.PROMPTLEDGER_EVAL_TASKS_PER_RUN)


def execute(run_id):
    """Work on a run until nothing is left to claim, then finalize it if every item is settled.

    With ``PROMPTLEDGER_EVAL_TASKS_PER_RUN`` = n > 1, the delivery that starts the run signals n - 1
    more, so n worker processes share it; each keeps its share of ``PROMPTLEDGER_EVAL_CONCURRENCY``
    in flight, so the run as a whole never has more than that."""
    run = EvalRun.objects.select_related("version", "prompt").filter(pk=run_id).first()
    if run is None or run.finished:
        return run
    started = EvalRun.objects.filter(pk=run_id, status=EvalRun.QUEUED).update(
        status=EvalRun.RUNNING, started_at=timezone.now()
    )
    tasks = _tasks_per_run()
    if started and tasks > 1 and not settings.CELERY_TASK_ALWAYS_EAGER:
        from .services import enqueue

        enqueue(run_id, copies=tasks - 1)
    token = uuid.uuid4().hex
    # async_to_sync (not asyncio.run) so every database call of the drive runs back on this thread,
    # on its connection and transaction. Celery's Django fix-up closes stale connections per task.
    async_to_sync(_drive)(run, token, max(1, settings.PROMPTLEDGER_EVAL_CONCURRENCY // tasks))
    return finalize(run_id)


def _percentile(values, q):
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarize(run):
    results = list(
        run.results.values("passed", "error", "verdicts", "latency_ms", "input_tokens", "output_tokens", "cost_usd")
    )
    per_assertion = defaultdict(lambda: [0, 0])
    for result in results:
        for verdict in result["verdicts"]:
            key = verdict.get("name") or verdict["type"]
            per_assertion[key][1] += 1
            per_assertion[key][0] += 1 if verdict["passed"] else 0
    latencies = sorted(r["latency_ms"] for r in results if r["latency_ms"] is not None)
    passed = sum(1 for r in results if r["passed"])
    return {
        "done": len(results),
        "passed": passed,
        "failed": len(results) - passed,
        "errors": sum(1 for r in results if r["error"]),
        "assertions": {k: {"passed": p, "total": t, "pass_rate": p / t} for k, (p, t) in sorted(per_assertion.items())},
        "input_tokens": sum(r["input_tokens"] for r in results),
        "output_tokens": sum(r["output_tokens"] for r in results),
        "cost_usd": round(sum(r["cost_usd"] for r in results), 6),
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
    }


@retry_transient
def finalize(run_id):
    """Close the run once every item is done (or it was cancelled); once only, audited. Safe to
    call any number of times, from any worker or the reaper: a finished run is returned as is.

    The summary of a run whose items are all done is read before the chain lock is taken (no
    result can change once its item is done), so the lock is held for the few writes only."""
    run = EvalRun.objects.filter(pk=run_id).first()
    if run is None or run.finished:
        return run
    settled = not run.items.exclude(status=EvalItem.DONE).exists()
    if not settled and not run.cancel_requested:
        return None
    summary = summarize(run) if settled else None
    with change():
        run = lock_rows(EvalRun.objects).select_related("prompt__team").get(pk=run_id)
        if run.finished:
            return run
        if run.cancel_requested:
            cancelled = run.items.exclude(status=EvalItem.DONE).update(status=EvalItem.CANCELLED, lease_until=None)
            if cancelled or summary is None:
                summary = summarize(run)
        elif run.items.exclude(status=EvalItem.DONE).exists():
            return None
        run.summary = summary
        run.pass_rate = summary["passed"] / run.total if run.total else None
        if run.cancel_requested:
            run.status = EvalRun.CANCELLED
        else:
            run.status = EvalRun.COMPLETED_WITH_ERRORS if summary["errors"] else EvalRun.COMPLETED
        run.finished_at = timezone.now()
        run.save(update_fields=["summary", "pass_rate", "status", "finished_at"])
        events.run_completed(run, summary)
        from webhooks.events import eval_run_completed

        eval_run_completed(run=run)
        if run.trigger == EvalRun.SCHEDULE:  # drift: decided in this transaction, so exactly once
            from .drift import check_drift

            check_drift(run)
    return run


def progress(run):
    """Results so far of ``total``. A run read with ``done`` annotated (its results counted in the
    list's own query, as the run lists do) needs no query of its own."""
    if run.finished:
        done = run.summary.get("done", 0)
    else:
        done = run.done if hasattr(run, "done") else run.results.count()
    return {"total": run.total, "done": done, "percent": round(100 * done / run.total, 1) if run.total else 100.0}


def reap():
    """The janitor of runs, looking for states rather than causes (every 15 s from beat):

    - a run with items whose lease expired (their worker died) is signalled again;
    - a run that is not finished although none of its items is open (every case has its result,
      but the step that closes it failed: a lost connection, a worker killed between the last
      result and the close) is finished here; ``finalize`` is idempotent, so racing the worker
      that was about to finish it is harmless.

    Returns the ids of the runs it signalled or finished."""
    from .services import enqueue

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
