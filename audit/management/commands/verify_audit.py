"""``manage.py verify_audit``: exit 0 and print the verified range, or exit 1 naming the first bad
event and what is wrong with it (changed, missing, inserted, reordered, a checkpoint mismatch)."""

import base64

from django.core.management.base import BaseCommand

from audit.checks import verify_database


class Command(BaseCommand):
    help = "Verify the audit chain, its signed checkpoints, their cadence and the outside sink."

    def add_arguments(self, parser):
        parser.add_argument("--public-key", help="base64 Ed25519 public key to trust (default: the configured key's)")
        parser.add_argument(
            "--max-checkpoint-age",
            type=int,
            default=None,
            help="seconds the newest checkpoint may be old (default: twice the heartbeat; 0 disables the check)",
        )

    def handle(self, public_key=None, max_checkpoint_age=None, **options):
        key = base64.b64decode(public_key) if public_key else None
        report = verify_database(public_key=key, max_checkpoint_age=max_checkpoint_age)
        if report.ok:
            self.stdout.write(self.style.SUCCESS(report.summary()))
            return
        self.stdout.write(self.style.ERROR(report.summary()))
        for problem in report.problems[1:10]:
            self.stdout.write(f"  also: {problem}")
        raise SystemExit(1)
