"""Celery tasks of evals: small, idempotent, each calling the runner (or drift and alerts)."""

from celery import shared_task

from . import alerts, drift, runner


@shared_task(name="evals.tasks.execute_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_run(run_id):
    """Work on a run; safe to deliver twice or to run on several workers at once."""
    run = runner.execute(run_id)
    return getattr(run, "status", None)


@shared_task(name="evals.tasks.reap_expired_leases", ignore_result=True)
def reap_expired_leases():
    return runner.reap()


@shared_task(name="evals.tasks.schedule_drift", ignore_result=True)
def schedule_drift():
    """Nightly (beat): re-run the gate suites of every version live in production; safe to repeat
    the same day (it starts nothing twice)."""
    return [run.pk for run in drift.schedule_drift_runs()]


# Backoff of 15 s doubling to a 10-minute cap, six retries (about 16 minutes in all): every
# countdown stays well under the broker's visibility timeout (an hour). A retry re-sends the same
# body (same delivery id) with a fresh timestamp and signature; receivers drop duplicates by id.
@shared_task(
    name="evals.tasks.deliver_alert",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(alerts.AlertDeliveryFailed,),
    retry_backoff=15,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def deliver_alert(event, body):
    """POST one signed alert (``evals.alerts.deliver``); retried with backoff when it fails."""
    return alerts.deliver(event, body)
