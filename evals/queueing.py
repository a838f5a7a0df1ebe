"""Queueing a run's work: the broker carries only the run id (the items in the database are the
work), sent by task name, so neither the services that start a run nor the runner that hands it on
import the tasks that execute it."""

import uuid

from core.tasks import send_task

EXECUTE_RUN = "evals.tasks.execute_run"


def enqueue(run_id, copies=1):
    """Signal ``copies`` workers to work on run ``run_id``; each delivery has an id naming its run."""
    for _ in range(copies):
        send_task(EXECUTE_RUN, args=[run_id], task_id=f"run-{run_id}-{uuid.uuid4().hex[:8]}")
