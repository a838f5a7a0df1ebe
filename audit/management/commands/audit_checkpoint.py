"""``manage.py audit_checkpoint``: sign the chain head now (the heartbeat does this on a schedule)."""

from django.core.management.base import BaseCommand

from audit.services import write_checkpoint


class Command(BaseCommand):
    help = "Write a signed checkpoint of the audit chain's head."

    def handle(self, **options):
        checkpoint = write_checkpoint()
        self.stdout.write(f"checkpoint at event {checkpoint.sequence}: {checkpoint.checkpoint_hash}")
