"""Celery tasks of webhooks: small and idempotent; the rows in the database hold the work."""

from celery import shared_task

from . import audit_stream, delivery


@shared_task(name="webhooks.tasks.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(delivery_id):
    """One attempt at a delivery; a duplicate or early message does nothing (see the claim)."""
    made = delivery.attempt(delivery_id)
    return made.outcome if made is not None else None


@shared_task(name="webhooks.tasks.requeue_due", ignore_result=True)
def requeue_due():
    """Beat, every minute: re-signal pending deliveries that are due (lost messages, long backoffs)."""
    return delivery.requeue_due()


@shared_task(name="webhooks.tasks.send_audit_stream", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def send_audit_stream(stream_id):
    """Send one audit stream's due batches; a duplicate message finds the lease taken and does nothing."""
    return audit_stream.run(stream_id)


@shared_task(name="webhooks.tasks.audit_stream_tick", ignore_result=True)
def audit_stream_tick():
    """Beat, every PROMPTLEDGER_AUDIT_STREAM_TICK seconds: signal each audit stream that is due."""
    return audit_stream.tick()
