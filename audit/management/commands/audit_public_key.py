"""``manage.py audit_public_key``: list the public keys auditors use to check signatures, with their
ids: every retired one that still verifies older checkpoints, then the current signing key (the
last word of the output is always the current public key)."""

from django.core.management.base import BaseCommand

from audit import keyring, signing


class Command(BaseCommand):
    help = (
        "List the audit signing keys (base64 Ed25519 public keys with their key ids): the current one and "
        "the retired ones; give them to auditors."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--generate-private",
            action="store_true",
            help="print a new random private key seed instead (for PROMPTLEDGER_AUDIT_SIGNING_KEY)",
        )

    def handle(self, generate_private=False, **options):
        if generate_private:
            self.stdout.write(signing.generate_seed_b64())
            return
        ring = keyring.load()
        for key in ring.retired:
            self.stdout.write(f"retired ({key.source}): key id {key.key_id}: {key.public_b64}")
        # The current key last: scripts take the output's last word (deploy/smoke_test.py does).
        self.stdout.write(f"key id {ring.current.key_id}: {ring.current.public_b64}")
        for problem in ring.problems:
            self.stderr.write(self.style.WARNING(f"warning: {problem}"))
