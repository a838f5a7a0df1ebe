"""``manage.py sync_alert_webhook``: make the operator's site-wide alert subscription match
PROMPTLEDGER_ALERT_WEBHOOK_URL / _SECRET now (``migrate`` also does it). Prints no secret."""

from django.core.management.base import BaseCommand

from webhooks.operator import sync_operator_subscription


class Command(BaseCommand):
    help = "Create, update or pause the site-wide drift.alert webhook configured in the environment."

    def handle(self, *args, **options):
        outcome = sync_operator_subscription()
        self.stdout.write(f"operator alert webhook: {outcome}")
