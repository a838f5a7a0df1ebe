"""``manage.py verify_audit``: exit 0 and print the verified range, or exit 1 naming the first bad
event and what is wrong with it (changed, missing, inserted, reordered, a checkpoint mismatch, a
checkpoint signed by a key that is neither the current one nor retired)."""

from django.core.management.base import BaseCommand, CommandError

from audit.checks import verify_database
from audit.keyring import parse_public_key


class Command(BaseCommand):
    help = "Verify the audit chain, its signed checkpoints, their cadence and the outside sink."

    def add_arguments(self, parser):
        parser.add_argument(
            "--public-key",
            action="append",
            help="base64 Ed25519 public key to trust; give it once per key (the current one and each retired one "
            "whose checkpoints should verify); exactly these are trusted (default: the configured current key "
            "and the retired keys)",
        )
        parser.add_argument(
            "--max-checkpoint-age",
            type=int,
            default=None,
            help="seconds the newest checkpoint may be old (default: twice the heartbeat; 0 disables the check)",
        )

    def handle(self, public_key=None, max_checkpoint_age=None, **options):
        keys = []
        for text in public_key or []:
            raw = parse_public_key(text)
            if raw is None:
                raise CommandError(f"--public-key {text!r} is not a base64 Ed25519 public key (32 bytes)")
            keys.append(raw)
        report = verify_database(public_key=keys or None, max_checkpoint_age=max_checkpoint_age)
        if report.ok:
            self.stdout.write(self.style.SUCCESS(report.summary()))
            return
        self.stdout.write(self.style.ERROR(report.summary()))
        for problem in report.problems[1:10]:
            self.stdout.write(f"  also: {problem}")
        raise SystemExit(1)
