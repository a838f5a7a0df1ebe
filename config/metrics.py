"""``/metrics``: the Prometheus exposition of every process's counts and of the state kept in the
database, read at scrape time.

What the processes counted (``core.metrics``) is added up from the multiprocess directory, and
resolve's answers by outcome are read from the requests counted for its route. What is state, not
an event (runs by status, items in flight, how old the newest signed checkpoint is, the last
verification's result, the webhook backlog), is read from the database on each scrape with a
handful of indexed queries, so it holds whichever process changed it, and after any restart.

Access: ``Authorization: Bearer $PROMPTLEDGER_METRICS_TOKEN`` when that is set (401 without it); with
no token set, open in development (the embedded mode) and 403 in production, where ``check --deploy``
says to set one. 404 when ``PROMPTLEDGER_METRICS`` is off.
"""

import hmac
import logging

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from audit.models import AuditCheckpoint, ChainVerification
from core import metrics
from evals.models import EvalItem, EvalRun
from registry.api.errors import json_error
from webhooks import audit_stream
from webhooks.models import AuditStream, Delivery

log = logging.getLogger(__name__)


def _gauge(name, documentation, value=None, labels=()):
    family = GaugeMetricFamily(name, documentation, labels=list(labels) or None)
    if value is not None:
        family.add_metric([], value)
    return family


def _age(now, moment):
    return max(0.0, (now - moment).total_seconds()) if moment is not None else None


def eval_state(now):
    """Runs by status, and how long the oldest queued run has waited and the oldest running one run."""
    runs = GaugeMetricFamily("promptledger_eval_runs", "Eval runs by status", labels=["status"])
    counts = dict(EvalRun.objects.order_by().values_list("status").annotate(n=Count("id")))
    for status, _ in EvalRun.STATUS_CHOICES:
        runs.add_metric([status], counts.get(status, 0))
    active = EvalRun.objects.filter(status__in=[EvalRun.QUEUED, EvalRun.RUNNING]).aggregate(
        queued=Min("created_at", filter=Q(status=EvalRun.QUEUED)),
        running=Min("started_at", filter=Q(status=EvalRun.RUNNING)),
    )
    yield runs
    yield _gauge("promptledger_eval_oldest_running_run_seconds",
                 "Seconds since the longest-running eval run started (0 when none runs)",
                 _age(now, active["running"]) or 0.0)
    yield from runner_state(now, oldest_queued=active["queued"])


def runner_state(now, *, oldest_queued):
    """The eval runner's work as the database holds it. Measurements the runner makes itself (a
    claim's wait, an item's duration) are counted in ``core.metrics`` (its "Eval runner" part)."""
    items = EvalItem.objects.filter(status__in=EvalItem.OPEN).aggregate(
        in_flight=Count("id", filter=Q(status=EvalItem.CLAIMED, lease_until__gt=now)),
        pending=Count("id", filter=Q(status=EvalItem.PENDING, run__status=EvalRun.RUNNING)),
    )
    yield _gauge("promptledger_eval_items_in_flight", "Eval items claimed by a worker whose lease has not expired",
                 items["in_flight"])
    yield _gauge("promptledger_eval_items_pending", "Eval items of running runs waiting for a worker",
                 items["pending"])
    yield _gauge("promptledger_eval_queue_lag_seconds",
                 "Seconds the oldest queued eval run has waited for a worker to start it (0 when none waits)",
                 _age(now, oldest_queued) or 0.0)


def audit_state(now):
    newest = AuditCheckpoint.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    yield _gauge("promptledger_audit_checkpoint_age_seconds",
                 "Seconds since the newest signed checkpoint was written (absent before the first)",
                 _age(now, newest))
    last = ChainVerification.objects.order_by("-verified_at").values_list("ok", "verified_at").first()
    yield _gauge("promptledger_audit_chain_verification_ok",
                 "1 when the last verification of the whole chain found it intact, 0 when broken (absent before "
                 "the first)", None if last is None else float(last[0]))
    yield _gauge("promptledger_audit_chain_verification_age_seconds",
                 "Seconds since the chain was last verified (absent before the first)",
                 None if last is None else _age(now, last[1]))


def webhook_state(now):
    pending = Delivery.objects.filter(status=Delivery.PENDING).aggregate(n=Count("id"), oldest=Min("created_at"))
    yield _gauge("promptledger_webhook_deliveries_pending", "Webhook deliveries not yet delivered or given up",
                 pending["n"])
    yield _gauge("promptledger_webhook_oldest_pending_seconds",
                 "Age of the oldest webhook delivery still pending (0 when none is)",
                 _age(now, pending["oldest"]) or 0.0)


def audit_stream_state(now):
    """Each audit stream's lag behind the chain's head (webhooks.audit_stream.lag), paused ones too."""
    events = GaugeMetricFamily("promptledger_audit_stream_lag_events",
                               "Audit events not yet acknowledged by the stream's receiver", labels=["stream"])
    seconds = GaugeMetricFamily("promptledger_audit_stream_lag_seconds",
                                "Age of the oldest audit event the stream's receiver has not acknowledged (0 when "
                                "caught up)", labels=["stream"])
    streams = list(AuditStream.objects.order_by("name"))
    lags = audit_stream.lags(streams, now=now)
    for stream in streams:
        behind, age = lags[stream.pk]
        events.add_metric([stream.name], behind)
        seconds.add_metric([stream.name], age)
    yield events
    yield seconds


class DatabaseState:
    """A collector: the state gauges, read when Prometheus scrapes. A database that does not answer
    leaves them out and sets ``promptledger_metrics_database_ok`` to 0; the counts still go out."""

    def collect(self):
        now = timezone.now()
        try:
            families = [*eval_state(now), *audit_state(now), *webhook_state(now), *audit_stream_state(now)]
        except DatabaseError:
            log.exception("metrics: the database state could not be read")
            families = []
        yield from families
        yield _gauge("promptledger_metrics_database_ok", "1 when this scrape read the state from the database",
                     1.0 if families else 0.0)


class ProcessCounts(MultiProcessCollector):
    """What every process sharing the directory counted, added up; and resolve's answers by outcome,
    read from the requests of its route (so resolve itself pays for one count, not two)."""

    def collect(self):
        resolves = CounterMetricFamily(
            "promptledger_resolve_requests", "Resolve answers by outcome: hit (200), not_modified (304), not_found "
            "(404), disabled (423, kill switch), unauthenticated, forbidden, throttled, invalid, error",
            labels=["outcome"],
        )
        outcomes = dict.fromkeys([*dict.fromkeys(metrics.RESOLVE_OUTCOMES.values()), "error"], 0.0)
        for family in super().collect():
            if family.name == "promptledger_http_requests":
                for sample in family.samples:
                    if sample.labels.get("route") == metrics.RESOLVE_ROUTE:
                        outcome = metrics.RESOLVE_OUTCOMES.get(sample.labels.get("status"), "error")
                        outcomes[outcome] += sample.value
            yield family
        for outcome, count in outcomes.items():
            resolves.add_metric([outcome], count)
        yield resolves


def exposition():
    """The text Prometheus reads: the counts of every process sharing the directory, then the state."""
    metrics.REQUESTS.flush()  # this process's last second of requests
    registry = CollectorRegistry(auto_describe=False)
    ProcessCounts(registry, path=str(metrics.DIRECTORY))
    registry.register(DatabaseState())
    return generate_latest(registry)


def _bearer(meta):
    parts = meta.get("HTTP_AUTHORIZATION", "").split()
    return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else None


def _refusal(request):
    token = settings.PROMPTLEDGER_METRICS_TOKEN
    if not token:
        if settings.PRODUCTION:
            return json_error("metrics_token_required", "Set PROMPTLEDGER_METRICS_TOKEN to scrape /metrics.", 403)
        return None
    sent = _bearer(request.META)
    if sent is not None and hmac.compare_digest(sent.encode(), token.encode()):
        return None
    response = json_error("invalid_token" if sent else "not_authenticated",
                          "Send Authorization: Bearer <PROMPTLEDGER_METRICS_TOKEN>.", 401)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics_view(request):
    if not metrics.ENABLED or not settings.PROMPTLEDGER_METRICS:
        return json_error("not_found", "Metrics are turned off (PROMPTLEDGER_METRICS=false).", 404)
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
