"""Celery tasks of the risk workspace: small, idempotent, each calling a service."""

from celery import shared_task

from . import services


@shared_task(name="risk.tasks.notify_due_reviews", ignore_result=True)
def notify_due_reviews():
    """Daily (beat): one ``model.review_due`` per model and due date; safe to repeat the same day."""
    return services.notify_due_reviews()
