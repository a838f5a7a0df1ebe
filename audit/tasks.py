"""Celery tasks of the audit trail."""

from celery import shared_task

from . import services


@shared_task(name="audit.tasks.write_checkpoint", ignore_result=True)
def write_checkpoint():
    """The heartbeat: a signed checkpoint even when nothing happened, so a deleted tail shows."""
    checkpoint = services.write_checkpoint()
    return checkpoint.sequence


@shared_task(name="audit.tasks.verify_chain", ignore_result=True)
def verify_chain():
    """Re-verify the chain so the audit page shows its state as of minutes ago."""
    from .checks import verify_database

    return verify_database().ok
