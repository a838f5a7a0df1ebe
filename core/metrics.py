"""Prometheus metrics that processes count as things happen: one function per thing counted, each
a no-op when ``PROMPTLEDGER_METRICS`` is off. Every name starts with ``promptledger_``.

Web (gunicorn) and Celery worker processes all count into one directory, prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, ``$PROMPTLEDGER_VAR_DIR/metrics`` by default), one
file per process and kind; ``/metrics`` (``config.metrics``) adds them up at scrape time, with the
state read from the database beside them. Files are named by host and pid, so processes of
several hosts (containers) sharing one volume never write into each other's file.

Cleaning the directory at process start, where it is safe: under a lock, when no file in it
belongs to a process of this host that is still alive, every file is removed (a deploy restarted
everything: each counter starts again from 0, which Prometheus reads as an ordinary reset). While
any process of the host is alive nothing is removed: dropping only some processes' counts would
make a sum go down by part, which ``rate()`` mistakes for a reset and turns into a spike. Files of
other hosts are never removed here.

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


def _remember_identity():
    global _identity
    _identity = f"{_HOST}-{os.getpid()}"


_remember_identity()
os.register_at_fork(after_in_child=_remember_identity)  # gunicorn's and Celery's forked workers


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


def _owner(path):
    """``(host, pid)`` of a metrics file (``counter_<host>-<pid>.db``), or None if not one of ours."""
    host, _, pid = path.stem.rsplit("_", 1)[-1].rpartition("-")
    return (host or _HOST, int(pid)) if pid.isdigit() else None


def clean_directory(directory):
    """Remove every metrics file in ``directory`` when no process of this host that wrote one is
    alive; returns how many were removed. Safe to call from any process at start."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        files = list(directory.glob("*.db"))
        owners = [_owner(path) for path in files]
        if any(owner is None or owner[0] != _HOST or _alive(owner[1]) for owner in owners):
            return 0
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return len(files)


# The value store is chosen before any metric below exists: files in DIRECTORY (named by host and
# pid) when metrics are on, plain memory that nothing reads when they are off.
if ENABLED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(DIRECTORY)  # where prometheus_client opens the files
    clean_directory(DIRECTORY)
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
