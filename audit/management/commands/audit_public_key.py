"""``manage.py audit_public_key``: print the public key auditors use to check signatures."""

from django.core.management.base import BaseCommand

from audit import signing


class Command(BaseCommand):
    help = "Print the base64 Ed25519 public key of the audit signing key (give it to auditors)."

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
        self.stdout.write(f"key id {signing.key_id()}: {signing.public_key_b64()}")
