"""Driving a run: rendering each case, calling the provider, scoring the answer, writing results.

A drive keeps its concurrency in flight all the time (each of its lanes starts the next case as
soon as its last one is done, never waiting for a window to drain). Its work per case beside the
provider call is kept small, because it shares one interpreter with the provider calls: items are
claimed in the background half a window before the lanes run out (one claim per window of cases,
read without model instances), and finished cases are written in batches while the next cases
run, still one statement (so one transaction) per batch holding each item's done-mark with its
result, each conditional on its lease. On PostgreSQL the claims and the batches go through a
connection of the drive's own on its event loop (``_Store``); every other database call (and all
of them elsewhere) runs on one thread, the worker's, on its connection. While the
drive runs, a heartbeat renews its leases every third of a lease, so they run out only when the
worker is lost (or its event loop stalls for most of a lease, which ``reap`` treats alike).
Cancelling is a flag checked before each call. Past what one interpreter can drive,
``PROMPTLEDGER_EVAL_TASKS_PER_RUN`` shares a run between worker processes.
"""

import asyncio
import logging
import time
import uuid
from collections import deque

import psycopg
import psycopg.sql
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.errors import ValidationFailed
from registry import rendering

from .. import assertions, providers, queueing
from ..models import EvalRun
from .finishing import finalize
from .leasing import (
    _record_recovery,
    _tasks_per_run,
    claim,
    claim_on,
    renew,
    write_result,
    write_results,
    write_results_on,
)

log = logging.getLogger(__name__)


def db(fn):
    return sync_to_async(fn, thread_sensitive=True)


class _Store:
    """Where a drive claims items and writes results. On PostgreSQL, outside a transaction (always,
    in a worker), a connection of the drive's own, asynchronous and in autocommit, on the drive's
    event loop: each claim and each batch is one statement, so it needs no transaction, and it costs
    no hop to the database thread and back. That hop, with the two threads taking the interpreter
    from each other at every read and write of the socket, cost the worker about as much CPU per
    case as the statements themselves. Elsewhere (SQLite, or a drive called inside a transaction)
    the same functions run on the database thread."""

    def __init__(self, direct=None):
        self.direct = direct

    @classmethod
    async def open(cls):
        found = await db(_direct_params)()
        if found is None:
            return cls()
        params, role = found
        direct = await psycopg.AsyncConnection.connect(autocommit=True, **params)
        if role:  # as Django does on its own connections (OPTIONS["assume_role"])
            await direct.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Literal(role)))
        return cls(direct)

    async def claim(self, run_id, limit, token):
        if self.direct is None:
            return await db(claim)(run_id, limit, token)
        return await claim_on(self.direct, run_id, limit, token, db(_record_recovery))

    async def write_results(self, token, batch):
        if self.direct is None:
            return await db(write_results)(token, batch)
        return await write_results_on(self.direct, token, batch, db(write_result))

    async def close(self):
        if self.direct is not None:
            await self.direct.close()


def _direct_params():
    """The connection parameters Django's own connection is made with (its adapters included, so
    jsonb reads as text as it does through Django) and the role it assumes once connected, or None
    where the drive uses Django's connection."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)  # Django's is for its synchronous connections
    return params, connection.settings_dict["OPTIONS"].get("assume_role")


class _ResultWriter:
    """Writes finished cases through the drive's store while the next cases run: a batch (at most
    ``batch_size``) is what finished within ``linger`` seconds of the first of them, time spent
    writing the batch before included. So a busy drive writes a few large batches a second, not a
    small one each time the last write returns (each statement costs the database a plan, the spend
    trigger and a commit whatever its size), and the progress bar lags by a tenth of a second.
    ``add`` blocks nobody; ``wait_for_room`` holds new cases back while more than ``limit`` results
    wait (those are written at once: lingering would only hold the lanes); ``close`` writes what
    is left at once."""

    def __init__(self, store, token, *, batch_size=64, limit=128, linger=0.1):
        self.store, self.token, self.batch_size, self.limit, self.linger = store, token, batch_size, limit, linger
        self.pending = []
        self.first_at = 0.0  # when the oldest waiting result was added (the loop's clock)
        self.wake, self.room, self.full = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.closing = False
        self.task = asyncio.ensure_future(self._write())

    def add(self, item, fields):
        if not self.pending:
            self.first_at = asyncio.get_running_loop().time()
        self.pending.append((item, fields))
        self.wake.set()
        if self._full():
            self.full.set()

    def _full(self):
        # A full batch, or more than the lanes may leave waiting (they are held back: waiting longer
        # gains nothing).
        return len(self.pending) >= self.batch_size or len(self.pending) > self.limit

    async def wait_for_room(self):
        while len(self.pending) > self.limit and not self.task.done():
            self.room.clear()
            await self.room.wait()

    async def _linger(self):
        """Until a full batch waits, or ``linger`` has passed since the oldest result was added."""
        left = self.first_at + self.linger - asyncio.get_running_loop().time()
        if left > 0 and not self.closing and not self._full():
            self.full.clear()
            try:
                await asyncio.wait_for(self.full.wait(), left)
            except TimeoutError:
                pass

    async def _write(self):
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                await self._linger()
                batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
                if self.pending:  # what is left waits one linger more at most
                    self.first_at = asyncio.get_running_loop().time()
                self.room.set()
                try:
                    await self.store.write_results(self.token, batch)
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


class _Heartbeat:
    """Renews the drive's leases (one UPDATE, scoped to its token) every third of a lease until
    stopped. It runs on the drive's event loop, not a thread of its own: a lease lives as long as
    the drive makes progress, so a case that blocks its worker's loop loses its lease like a case
    that kills the worker, and comes back (at most ``PROMPTLEDGER_EVAL_MAX_CLAIMS`` claims)."""

    def __init__(self, run_id, token):
        self.run_id, self.token = run_id, token
        self.every = max(0.1, settings.PROMPTLEDGER_EVAL_LEASE_SECONDS / 3)
        self.stopping = asyncio.Event()
        self.task = asyncio.ensure_future(self._beat())

    async def _beat(self):
        while True:
            try:
                await asyncio.wait_for(self.stopping.wait(), self.every)
                return
            except TimeoutError:
                pass
            try:
                await db(renew)(self.run_id, self.token)
            except Exception:  # noqa: BLE001 - a lost connection: the next beat tries again
                log.exception("renewing the leases of run %s failed", self.run_id)

    async def stop(self):
        """Return once the heartbeat has stopped (a renewal under way completes first)."""
        self.stopping.set()
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
    claim (in the background, while the lanes keep calling) tops them up to one and a half windows,
    so a claim takes about a window of items. ``next()`` is None once a claim found nothing left
    and nothing waits. An item waits at most about two provider calls, far inside its lease. Few
    wait, because when several workers share a run, the items one holds at the end are the others'
    idle time; but about a window a claim, not half of one, because each claim costs the worker's
    one interpreter a statement whatever its size (and, where the claim runs on the database thread,
    the hop there and back: ~0.4 ms of CPU), against ~10 µs an item."""

    def __init__(self, store, run_id, token, window):
        self.store, self.run_id, self.token, self.window = store, run_id, token, window
        self.low = max(1, window // 2)
        self.ready, self.exhausted, self.refill = deque(), False, None

    async def _claim(self):
        items = await self.store.claim(self.run_id, self.window + self.low - len(self.ready), self.token)
        self.ready.extend(items)
        self.exhausted = not items

    def _top_up(self):
        low = self.low
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
    """The lanes, with the heartbeat renewing their leases until they have stopped, however they
    stop (done, cancelled, or a lost connection)."""
    cancelled = _CancelFlag(run.pk)
    store = await _Store.open()
    heartbeat = _Heartbeat(run.pk, token)
    try:
        await _drive_lanes(store, run, token, concurrency, cancelled)
    finally:
        await heartbeat.stop()
        await store.close()
    await providers.aclose()


async def _drive_lanes(store, run, token, concurrency, cancelled):
    """Keep ``concurrency`` cases in flight: each lane takes the next item as soon as its last case
    is handed to the writer, so the provider never waits for a window to drain."""
    writer = _ResultWriter(store, token, limit=4 * concurrency)
    feed = _Feed(store, run.pk, token, concurrency)

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
                writer.add(item, fields)  # a NUL in an answer is the writer's to replace (write_results)

    lanes = [asyncio.ensure_future(lane()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*lanes)
    finally:
        for pending in lanes:  # only when a lane failed (a lost connection): the others stop too
            pending.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        await feed.close()
        await writer.close()


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
        queueing.enqueue(run_id, copies=tasks - 1)
    token = uuid.uuid4().hex
    # async_to_sync (not asyncio.run) so every database call of the drive runs back on this thread,
    # on its connection and transaction. Celery's Django fix-up closes stale connections per task.
    async_to_sync(_drive)(run, token, max(1, settings.PROMPTLEDGER_EVAL_CONCURRENCY // tasks))
    return finalize(run_id)
