"""Running an eval: PostgreSQL holds the truth, the broker only signals.

A worker claims pending items (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) with a lease, runs them
concurrently in a rolling window, and writes each result in the transaction that marks its item
done — conditionally on still holding the lease, and under a unique (run, case) constraint, so a
case is written once however often it is claimed. Items whose lease expired (a killed worker) are
claimable again; ``reap`` re-signals their runs. Cancelling is a flag checked before each call.

Throughput: every database call of a drive runs on one thread (the worker's, on its connection),
so the drive keeps that thread's work per case small: items are claimed a window ahead (one claim
per window, not per case), and finished cases are written in batches while the next cases run —
still one transaction per batch holding each item's done-mark with its result, each conditional
on its lease.
"""

import asyncio
import logging
import statistics
import time
import uuid
from collections import defaultdict, deque
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import record
from registry import rendering
from registry.actors import Actor
from registry.errors import ValidationFailed

from . import assertions, providers
from .models import EvalItem, EvalResult, EvalRun

log = logging.getLogger(__name__)


def db(fn):
    return sync_to_async(fn, thread_sensitive=True)


def _lease():
    return timedelta(seconds=settings.PROMPTLEDGER_EVAL_LEASE_SECONDS)


def claim(run_id, limit, token):
    """Up to ``limit`` items of the run nobody holds, leased to ``token``."""
    if limit <= 0:
        return []
    now = timezone.now()
    with transaction.atomic():
        open_items = (
            EvalItem.objects.filter(run_id=run_id)
            .filter(Q(status=EvalItem.PENDING) | Q(status=EvalItem.CLAIMED, lease_until__lt=now))
            .order_by("position")
        )
        if connection.vendor == "postgresql":
            open_items = open_items.select_for_update(skip_locked=True, of=("self",))
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
                EvalItem.objects.select_for_update()
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
    """Writes finished cases on the database thread while the next cases run: whatever finished
    while one batch was being written goes into the next (at most ``batch_size``). ``add`` blocks
    nobody; ``wait_for_room`` holds new cases back while more than ``limit`` results wait."""

    def __init__(self, token, *, batch_size=64, limit=128):
        self.token, self.batch_size, self.limit = token, batch_size, limit
        self.pending = []
        self.wake, self.room = asyncio.Event(), asyncio.Event()
        self.closing = False
        self.task = asyncio.ensure_future(self._write())

    def add(self, item, fields):
        self.pending.append((item, fields))
        self.wake.set()

    async def wait_for_room(self):
        while len(self.pending) > self.limit and not self.task.done():
            self.room.clear()
            await self.room.wait()

    async def _write(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
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


async def _drive(run, token, concurrency):
    cancelled = _CancelFlag(run.pk)
    writer = _ResultWriter(token, limit=4 * concurrency)
    in_flight, ready = set(), deque()

    async def one(item):
        try:
            fields = await _run_case(item, run, cancelled)
        except Exception as exc:  # noqa: BLE001 - a scorer or adapter bug is this case's error, not the run's end
            log.exception("case %s of run %s failed", item.case_id, run.pk)
            fields = {"passed": False, "error": f"internal: {type(exc).__name__}: {exc}", "verdicts": []}
        if fields is not None:
            writer.add(item, fields)

    try:
        while True:
            if await cancelled():
                break
            await writer.wait_for_room()
            free = concurrency - len(in_flight)
            if len(ready) < free:
                # A window ahead: one claim per window of cases rather than one per case. The extra
                # items wait at most about one provider call, far inside their lease.
                ready.extend(await db(claim)(run.pk, free - len(ready) + concurrency, token))
            while ready and len(in_flight) < concurrency:
                in_flight.add(asyncio.ensure_future(one(ready.popleft())))
            if not in_flight:
                break
            _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        if in_flight:
            await asyncio.wait(in_flight)
    finally:
        await writer.close()
    await providers.aclose()


def execute(run_id):
    """Work on a run until nothing is left to claim, then finalize it if every item is settled."""
    run = EvalRun.objects.select_related("version", "prompt").filter(pk=run_id).first()
    if run is None or run.finished:
        return run
    EvalRun.objects.filter(pk=run_id, status=EvalRun.QUEUED).update(status=EvalRun.RUNNING, started_at=timezone.now())
    token = uuid.uuid4().hex
    # async_to_sync (not asyncio.run) so every database call of the drive runs back on this thread,
    # on its connection and transaction. Celery's Django fix-up closes stale connections per task.
    async_to_sync(_drive)(run, token, settings.PROMPTLEDGER_EVAL_CONCURRENCY)
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


def finalize(run_id):
    """Close the run once every item is done (or it was cancelled); once only, audited."""
    with transaction.atomic():
        run = EvalRun.objects.select_for_update().select_related("prompt__team").get(pk=run_id)
        if run.finished:
            return run
        if run.cancel_requested:
            run.items.exclude(status=EvalItem.DONE).update(status=EvalItem.CANCELLED, lease_until=None)
        elif run.items.exclude(status=EvalItem.DONE).exists():
            return None
        summary = summarize(run)
        run.summary = summary
        run.pass_rate = summary["passed"] / run.total if run.total else None
        if run.cancel_requested:
            run.status = EvalRun.CANCELLED
        else:
            run.status = EvalRun.COMPLETED_WITH_ERRORS if summary["errors"] else EvalRun.COMPLETED
        run.finished_at = timezone.now()
        run.save(update_fields=["summary", "pass_rate", "status", "finished_at"])
        record(
            actor=Actor.for_system("eval-runner"),
            action="eval_run.completed",
            target_type="eval_run",
            target_id=run.pk,
            team=run.prompt.team.slug,
            prompt=run.prompt.slug,
            data={
                "status": run.status,
                "pass_rate": run.pass_rate,
                "passed": summary["passed"],
                "total": run.total,
                "errors": summary["errors"],
                "cost_usd": summary["cost_usd"],
            },
        )
        from webhooks.events import eval_run_completed

        eval_run_completed(run=run)
        if run.trigger == EvalRun.SCHEDULE:  # drift: decided in this transaction, so exactly once
            from .drift import check_drift

            check_drift(run)
    return run


def progress(run):
    done = run.results.count() if not run.finished else run.summary.get("done", 0)
    return {"total": run.total, "done": done, "percent": round(100 * done / run.total, 1) if run.total else 100.0}


def reap():
    """Re-signal runs that have items whose lease expired (their worker died); returns their ids."""
    from .services import enqueue

    now = timezone.now()
    run_ids = sorted(
        set(
            EvalItem.objects.filter(
                status=EvalItem.CLAIMED, lease_until__lt=now, run__status=EvalRun.RUNNING
            ).values_list("run_id", flat=True)
        )
    )
    for run_id in run_ids:
        enqueue(run_id)
    return run_ids
