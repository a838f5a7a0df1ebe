"""Celery tasks of evals: small, idempotent, each calling the runner (or drift)."""

from celery import shared_task

from . import drift, runner


@shared_task(name="evals.tasks.execute_run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_run(run_id):
    """Work on a run; safe to deliver twice or to run on several workers at once."""
    run = runner.execute(run_id)
    return getattr(run, "status", None)


@shared_task(name="evals.tasks.reap_expired_leases", ignore_result=True)
def reap_expired_leases():
    """Every 15 s (beat): take back the leases of lost workers and give their runs a worker again,
    finish runs left unclosed (``runner.reap``)."""
    return runner.reap()


@shared_task(name="evals.tasks.schedule_drift", ignore_result=True)
def schedule_drift():
    """Nightly (beat): re-run the gate suites of every version live in production; safe to repeat
    the same day (it starts nothing twice)."""
    return [run.pk for run in drift.schedule_drift_runs()]

