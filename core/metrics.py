"""Prometheus metrics that processes count as things happen: one function per thing counted, each
a no-op when ``PROMPTLEDGER_METRICS`` is off. Every name starts with ``promptledger_``.

Web (gunicorn) and Celery worker processes all count into one directory, prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, ``$PROMPTLEDGER_VAR_DIR/metrics`` by default), one
file per process and kind; ``/metrics`` (``config.metrics``) adds them up at scrape time, with the
state read from the database beside them. Files are named by host and pid, so processes of
several hosts (containers) sharing one volume (docker-compose.yml's ``metrics``) never write into
each other's file.

Whether a file's writer is alive is told by a lock, not a pid: each process holds an flock on its
``<host>-<pid>.alive`` marker for its life, which every container sharing the volume sees (pids
are per container, and two containers may even reuse one host name). At process start, under the
directory's lock: when every writer is dead, every file is removed (a deploy restarted everything:
each counter starts again from 0, which Prometheus reads as an ordinary reset); otherwise the new
process takes over one dead writer's files and counts on from their values. Nothing is removed
while any writer lives: dropping only some processes' counts would make a sum go down by part,
which ``rate()`` mistakes for a reset and turns into a spike.

Labels are bounded: a route is the URL pattern's name, never the path; a provider and model come
from the register; an event or an audit action is one the code names. No user, prompt or URL.
"""

import atexit
import bisect
import contextlib
import fcntl
import functools
import logging
import os
import re
import secrets
import socket
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.checks import Info, Tags, register
from prometheus_client import Counter, Histogram, values

ENABLED = bool(getattr(settings, "PROMPTLEDGER_METRICS", True))
DIRECTORY = Path(getattr(settings, "PROMPTLEDGER_METRICS_DIR", "") or Path(settings.VAR_DIR) / "metrics")
log = logging.getLogger(__name__)
_HOST = re.sub(r"[^A-Za-z0-9.]+", "-", socket.gethostname()) or "host"


_identity = ""
_marker = None  # this process's marker file, locked (flock) for as long as the process lives


def _remember_identity():
    global _identity
    _identity = f"{_HOST}-{os.getpid()}"


def _process_identifier():
    """Asked on every increment (to notice a fork), so it is a variable read, not a system call."""
    return _identity


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _writer(path):
    """Whose file it is: the identity in ``<kind>_<identity>.db`` (host names here have no ``_``)."""
    return path.stem.rsplit("_", 1)[-1]


def _writer_alive(directory, writer):
    """Whether the process writing ``writer``'s files lives, wherever it runs: it holds an exclusive
    flock on ``<writer>.alive`` for its whole life, and the kernel drops the lock when it dies, even
    by SIGKILL. A lock is seen across containers sharing the volume (their pids are not), so this
    holds where a pid test cannot. Files without a marker (written before markers existed) fall back
    to the pid test on this host, and count as alive on another."""
    try:
        fd = os.open(directory / f"{writer}.alive", os.O_RDONLY)
    except FileNotFoundError:
        host, _, pid = writer.rpartition("-")
        return not (pid.isdigit() and host == _HOST) or _alive(int(pid))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock if it was taken here
    return False


def tidy_directory(directory, writer):
    """Make room for ``writer`` (this process, its marker already locked) in ``directory``; call it
    under the directory's lock. When every other writer is dead, every file is removed (all
    restarted: each counter starts again from 0, which Prometheus reads as an ordinary reset).
    Otherwise a fresh writer takes over one dead writer's files by renaming them to its own name and
    counts on from their values, so no sum ever goes down (``rate()`` would mistake that for a reset)
    and the directory holds about as many files as processes ever ran at once, not one set per
    process that ever lived. Returns ``(removed, adopted)``: how many files."""
    files = {}
    for path in directory.glob("*.db"):
        files.setdefault(_writer(path), []).append(path)
    mine = files.pop(writer, [])  # a dead process's, under the same name (its pid reused): counted on
    for marker in directory.glob("*.alive"):  # processes that ended without counting anything
        if marker.stem != writer and marker.stem not in files and not _writer_alive(directory, marker.stem):
            marker.unlink(missing_ok=True)
    dead = [other for other in files if not _writer_alive(directory, other)]
    if len(dead) == len(files):
        removed = 0
        for path in [*mine, *(path for paths in files.values() for path in paths)]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        for other in dead:
            (directory / f"{other}.alive").unlink(missing_ok=True)
        return removed, 0
    if mine or not dead:
        return 0, 0
    adopted, taken = 0, dead[0]
    for path in files[taken]:
        target = path.with_name(path.name[: -len(f"{taken}.db")] + f"{writer}.db")
        if not target.exists():
            path.rename(target)
            adopted += 1
    (directory / f"{taken}.alive").unlink(missing_ok=True)
    return 0, adopted


def claim_directory(directory):
    """At process start (and in each forked child): lock this process's marker, take a name no live
    process uses (host and pid, with a random suffix should another container have the same host
    name and pid), and tidy the directory. Returns what ``tidy_directory`` did."""
    global _identity, _marker
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        writer = f"{_HOST}-{os.getpid()}"
        while True:
            fd = os.open(directory / f"{writer}.alive", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                os.close(fd)
                writer = f"{_HOST}-{os.getpid()}-{secrets.token_hex(3)}"
        if _marker is not None:
            os.close(_marker)  # the parent's, inherited by a fork: the parent keeps its own lock
        _marker, _identity = fd, writer
        return tidy_directory(directory, writer)


def _after_fork_in_child():
    _remember_identity()
    if ENABLED:
        try:
            claim_directory(DIRECTORY)
        except Exception:  # noqa: BLE001 - a child that cannot claim still counts, under host and pid
            log.exception("metrics: the directory %s could not be claimed", DIRECTORY)


_remember_identity()
os.register_at_fork(after_in_child=_after_fork_in_child)  # gunicorn's and Celery's forked workers


# The value store is chosen before any metric below exists: files in DIRECTORY (named by host and
# pid) when metrics are on, plain memory that nothing reads when they are off.
if ENABLED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(DIRECTORY)  # where prometheus_client opens the files
    claim_directory(DIRECTORY)
    values.ValueClass = values.MultiProcessValue(_process_identifier)
else:
    values.ValueClass = values.MutexValue


def _never_raises(count):
    """Counting must not break what it counts: a failure (the disk full when a file grows) is logged."""

    @functools.wraps(count)
    def counted(*args, **kwargs):
        try:
            count(*args, **kwargs)
        except Exception:  # noqa: BLE001 - any failure to count is logged, never raised
            log.exception("metrics: %s failed", count.__name__)

    return counted


def _counter(name, documentation, labels=()):
    return Counter(name, documentation, labels, registry=None)


def _histogram(name, documentation, labels, buckets):
    return Histogram(name, documentation, labels, registry=None, buckets=buckets)


# --- HTTP (config.middleware.RequestMetricsMiddleware) ----------------------------------------------
HTTP_REQUESTS = _counter(
    "promptledger_http_requests_total", "HTTP requests answered, by URL route name, method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = _histogram(
    "promptledger_http_request_duration_seconds", "Time to answer an HTTP request (until the response is "
    "returned; a streamed body is not included), by URL route name and method", ["route", "method"],
    (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BOUNDS = HTTP_DURATION._upper_bounds  # the histogram's bucket bounds, +Inf last
FLUSH_SECONDS = 1.0


class RequestCounts:
    """Answered requests counted in this process's memory and moved into the shared files once a
    second (by a thread of the process, at exit, and before this process serves a scrape).

    An increment of a file-backed value costs microseconds inside a request (a lock, a fork check,
    a write to the mapped page, all cold after the request's own work), and a request would make
    three: resolve would pay several per cent for them. Here a request costs one lock and three
    additions; the files are written per series, not per request. A process killed outright loses
    at most its last second of counts."""

    def __init__(self):
        self._after_fork()
        os.register_at_fork(after_in_child=self._after_fork)  # a forked child starts empty, with its own thread
        atexit.register(self.flush)

    def _after_fork(self):
        self.lock = threading.Lock()
        self.pending = {}  # (route, method, status) -> [requests, seconds, [requests per bucket]]
        self.flusher = None

    def add(self, route, method, status, seconds):
        bucket = bisect.bisect_left(_BOUNDS, seconds)  # the first bound >= seconds, as observe() picks
        with self.lock:
            counts = self.pending.get((route, method, status))
            if counts is None:
                counts = self.pending[(route, method, status)] = [0, 0.0, [0] * len(_BOUNDS)]
            counts[0] += 1
            counts[1] += seconds
            counts[2][bucket] += 1
            if self.flusher is None:
                self.flusher = threading.Thread(target=self._flush_every_second, name="metrics-flush", daemon=True)
                self.flusher.start()

    def _flush_every_second(self):
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    @_never_raises
    def flush(self):
        with self.lock:
            pending, self.pending = self.pending, {}
        for (route, method, status), (requests, seconds, buckets) in pending.items():
            verb = method if method in _METHODS else "other"
            HTTP_REQUESTS.labels(route, verb, str(status)).inc(requests)
            # A histogram child's sum and per-bucket values (prometheus-client 0.26, pinned): observe()
            # takes one observation at a time, and these are many.
            histogram = HTTP_DURATION.labels(route, verb)
            histogram._sum.inc(seconds)
            for value, count in zip(histogram._buckets, buckets, strict=True):
                if count:
                    value.inc(count)


REQUESTS = RequestCounts()


@_never_raises
def request_answered(route, method, status, seconds):
    """One HTTP request answered (by ``RequestMetricsMiddleware``): counted in memory, see above."""
    REQUESTS.add(route, method, status, seconds)


# --- Resolve: read from the requests of its route, at scrape time (config.metrics) ------------------------
RESOLVE_ROUTE = "registry-api:resolve"
RESOLVE_OUTCOMES = {
    "200": "hit", "304": "not_modified", "404": "not_found", "423": "disabled", "401": "unauthenticated",
    "403": "forbidden", "429": "throttled", "400": "invalid", "405": "invalid",
}  # any other status: "error"


# --- Eval runner (evals/runner/) ----------------------------------------------------------------------
# The runner's own measurements go here, beside the state config.metrics reads from the database
# (runs by status, items in flight, queue lag): e.g. a histogram of the wait between an item being
# queued and claimed, or of an item's whole duration. Label by provider and model at most.


# --- Providers (evals.providers.complete) ------------------------------------------------------------
PROVIDER_CALLS = _counter(
    "promptledger_provider_calls_total", "Completions asked of a provider (retries inside one call not counted), "
    "by outcome: ok or error", ["provider", "model", "outcome"],
)
PROVIDER_ERRORS = _counter(
    "promptledger_provider_errors_total", "Provider calls that failed, by the error's stable code "
    "(rate_limited, server_error, timeout, connection, bad_request, auth, ...)", ["provider", "model", "code"],
)
PROVIDER_RETRIES = _counter(
    "promptledger_provider_retries_total", "Requests sent again after a retryable failure", ["provider", "model"],
)
PROVIDER_LATENCY = _histogram(
    "promptledger_provider_latency_seconds", "Request time of a call's successful attempt (no queueing or backoff)",
    ["provider", "model"], (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
PROVIDER_TOKENS = _counter(
    "promptledger_provider_tokens_total", "Tokens of successful calls, by direction: input or output",
    ["provider", "model", "direction"],
)
PROVIDER_COST = _counter(
    "promptledger_provider_cost_usd_total", "Cost of successful calls in US dollars (evals.pricing)",
    ["provider", "model"],
)


_provider_series = {}


def _provider(provider, model):
    """A (provider, model)'s series of a call that answered, made once per process."""
    series = _provider_series.get((provider, model))
    if series is None:
        series = _provider_series[(provider, model)] = (
            PROVIDER_CALLS.labels(provider, model, "ok"), PROVIDER_LATENCY.labels(provider, model),
            PROVIDER_TOKENS.labels(provider, model, "input"), PROVIDER_TOKENS.labels(provider, model, "output"),
            PROVIDER_COST.labels(provider, model),
        )
    return series


@_never_raises
def provider_call_finished(*, provider, model, attempts, error_code=None, latency_seconds=0.0, input_tokens=0,
                           output_tokens=0, cost_usd=0.0):
    """One provider call ended: with a completion, or with ``error_code`` after ``attempts`` requests."""
    if not ENABLED:
        return
    model = str(model)[:100]
    if attempts > 1:
        PROVIDER_RETRIES.labels(provider, model).inc(attempts - 1)
    if error_code:
        PROVIDER_CALLS.labels(provider, model, "error").inc()
        PROVIDER_ERRORS.labels(provider, model, error_code).inc()
        return
    calls, latency, tokens_in, tokens_out, cost = _provider(provider, model)
    calls.inc()
    latency.observe(latency_seconds)
    tokens_in.inc(input_tokens)
    tokens_out.inc(output_tokens)
    cost.inc(cost_usd)


# --- Webhooks (webhooks.delivery) ----------------------------------------------------------------------
WEBHOOK_ATTEMPTS = _counter(
    "promptledger_webhook_attempts_total", "Webhook POSTs made, by event and outcome: delivered, retry (failed, "
    "will be tried again) or failed (failed, given up)", ["event", "outcome"],
)
WEBHOOK_DELIVERIES = _counter(
    "promptledger_webhook_deliveries_total", "Webhook deliveries finished, by event and outcome: delivered or "
    "failed (every attempt failed, or the webhook is paused)", ["event", "outcome"],
)
WEBHOOK_DURATION = _histogram(
    "promptledger_webhook_attempt_duration_seconds", "Time of one webhook POST", [],
    (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@_never_raises
def webhook_attempted(*, event, outcome, seconds):
    if not ENABLED:
        return
    WEBHOOK_ATTEMPTS.labels(event, outcome).inc()
    if outcome != "retry":
        WEBHOOK_DELIVERIES.labels(event, outcome).inc()
    WEBHOOK_DURATION.observe(seconds)


# --- Audit (audit.services, audit.checks) -------------------------------------------------------------
AUDIT_EVENTS = _counter(
    "promptledger_audit_events_total", "Audit events appended to the chain, by action",
    ["action"],
)
AUDIT_CHECKPOINTS = _counter("promptledger_audit_checkpoints_total", "Signed checkpoints written (committed)")
AUDIT_VERIFICATIONS = _counter(
    "promptledger_audit_chain_verifications_total", "Verifications of the whole chain, by result: ok or broken",
    ["result"],
)


@_never_raises
def audit_events_appended(actions):
    if ENABLED:
        for action in actions:
            AUDIT_EVENTS.labels(action).inc()


@_never_raises
def audit_checkpoint_written():
    if ENABLED:
        AUDIT_CHECKPOINTS.inc()


@_never_raises
def audit_chain_verified(ok):
    if ENABLED:
        AUDIT_VERIFICATIONS.labels("ok" if ok else "broken").inc()


# --- Audit stream to a SIEM (webhooks.audit_stream) --------------------------------------------------
# The stream label is a stream's name: a slug admins choose, a handful per site. Its lag is state,
# read from the database at scrape time (config.metrics).
AUDIT_STREAM_BATCHES = _counter(
    "promptledger_audit_stream_batches_total", "Batches of audit events POSTed to a SIEM, by stream and outcome: "
    "delivered (2xx) or failed (sent again after a backoff)", ["stream", "outcome"],
)
AUDIT_STREAM_EVENTS = _counter(
    "promptledger_audit_stream_delivered_events_total", "Audit events a SIEM acknowledged (2xx), by stream "
    "(a batch resent after a lost lease counts again)", ["stream"],
)


@_never_raises
def audit_stream_batch(*, stream, outcome, events):
    if not ENABLED:
        return
    AUDIT_STREAM_BATCHES.labels(stream, outcome).inc()
    if events:
        AUDIT_STREAM_EVENTS.labels(stream).inc(events)


# --- check --deploy -----------------------------------------------------------------------------------
@register(Tags.security, deploy=True)
def metrics_token_configured(app_configs, **kwargs):
    """/metrics stays closed in production until a token is set: nothing leaks, so this informs
    rather than warns (CI's deploy check runs without one)."""
    if not settings.PRODUCTION or not ENABLED or getattr(settings, "PROMPTLEDGER_METRICS_TOKEN", ""):
        return []
    return [
        Info(
            "/metrics answers 403 until PROMPTLEDGER_METRICS_TOKEN is set (Prometheus then sends it as "
            "`Authorization: Bearer ...`); set PROMPTLEDGER_METRICS=false to turn metrics off",
            id="promptledger.I001",
        )
    ]
