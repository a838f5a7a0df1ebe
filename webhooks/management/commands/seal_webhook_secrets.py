"""``manage.py seal_webhook_secrets``: seal every webhook secret under the first key of
``PROMPTLEDGER_SECRETS_KEY`` (after putting a new key first, to rotate; the old one stays after it
until this has run)."""

from django.core.management.base import BaseCommand

from webhooks.models import Subscription
from webhooks.secret_box import reseal


class Command(BaseCommand):
    help = "Re-seal every webhook secret under the first key of PROMPTLEDGER_SECRETS_KEY."

    def handle(self, **options):
        count = 0
        for subscription in Subscription.objects.only("pk", "secret"):
            Subscription.objects.filter(pk=subscription.pk).update(secret=reseal(subscription.secret))
            count += 1
        self.stdout.write(f"Sealed {count} webhook secret(s) under the first key.")
