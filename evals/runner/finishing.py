"""Closing a run, and what is shown of it.

``finalize`` closes a run once every item is done (or it was cancelled): its summary, pass rate and
status are written once, audited, in one transaction, whoever calls it (a worker or the reaper) and
however often. ``summarize`` and ``progress`` are what the pages and the API show of a run.
"""

import statistics
from collections import defaultdict

from django.utils import timezone

from audit.transactions import change, lock_rows, retry_transient

from .. import events
from ..models import EvalItem, EvalRun

# Called with a scheduled (nightly) run inside the transaction that finishes it, so what they decide
# happens exactly once: drift registers its check here when the app is ready (evals.apps), so the
# runner does not import the drift module that starts runs through the services.
scheduled_run_finished = []


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
        from ..budgets import note_spend

        note_spend(run.prompt.team)  # the run's own spend may have crossed the month's 80%
        if run.trigger == EvalRun.SCHEDULE:  # drift: decided in this transaction, so exactly once
            for listener in scheduled_run_finished:
                listener(run)
    return run


def progress(run):
    """Results so far of ``total``. A run read with ``done`` annotated (its results counted in the
    list's own query, as the run lists do) needs no query of its own."""
    if run.finished:
        done = run.summary.get("done", 0)
    else:
        done = run.done if hasattr(run, "done") else run.results.count()
    return {"total": run.total, "done": done, "percent": round(100 * done / run.total, 1) if run.total else 100.0}
