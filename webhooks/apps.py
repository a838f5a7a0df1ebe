"""The webhooks app: subscriptions, an outbox of deliveries, and their delivery log."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from core import vocabulary

        from . import stream_events

        vocabulary.describe(stream_events.LABELS, stream_events.GROUPS)  # the audit stream's actions

        from .operator import sync_after_migrate

        # After every `migrate` (each deploy runs one) the operator's alert webhook from the
        # environment becomes, or stops being, a site-wide subscription.
        post_migrate.connect(sync_after_migrate, sender=self, dispatch_uid="webhooks-sync-operator-subscription")

        from registry import hooks

        from . import events

        # The registry announces these inside the change's transaction; each becomes a delivery.
        for event in ("version_created", "deployment_changed", "kill_switch_changed"):
            hooks.listen(event, getattr(events, event))
