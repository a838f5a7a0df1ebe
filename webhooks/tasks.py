"""Celery tasks of webhooks: small and idempotent; the rows in the database hold the work."""

from celery import shared_task

from . import delivery


@shared_task(name="webhooks.tasks.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id):
    """One attempt at a delivery; a duplicate or early message does nothing (see the claim)."""
    made = delivery.attempt(delivery_id)
    return made.outcome if made is not None else None


@shared_task(name="webhooks.tasks.requeue_due", ignore_result=True)
def requeue_due():
    """Beat, every minute: re-signal pending deliveries that are due (lost messages, long backoffs)."""
    return delivery.requeue_due()
