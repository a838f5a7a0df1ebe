"""``manage.py audit_rotate_key``: a new audit signing key signs from now on; the old public key is
retired (listed outside the database) so older checkpoints and exports still verify.

A key in ``PROMPTLEDGER_AUDIT_SIGNING_KEY_FILE`` is rotated in place and the rotation is recorded
and signed at once. A key in ``PROMPTLEDGER_AUDIT_SIGNING_KEY`` (the environment) cannot be changed
from here: the command prints the exact steps and changes nothing; ``--record-from OLD_KEY_ID``
records the rotation once they are done. docs/audit-keys.md is the whole procedure.
"""

from django.core.management.base import BaseCommand, CommandError

from audit import rotation, signing
from core.actors import Actor


class Command(BaseCommand):
    help = "Rotate the audit signing key (file-held), or print the steps for a key held in the environment."

    def add_arguments(self, parser):
        parser.add_argument(
            "--record-from",
            metavar="OLD_KEY_ID",
            help="record a rotation made by hand (an environment-held key): OLD_KEY_ID must be retired already "
            "and the new key in place; signs a checkpoint with the new key",
        )

    def handle(self, record_from=None, **options):
        actor = Actor.for_system("manage.py audit_rotate_key")
        try:
            if record_from:
                checkpoint = rotation.record_manual_rotation(actor=actor, old_key_id=record_from)
                self.stdout.write(
                    self.style.SUCCESS(
                        f"recorded the rotation from key id {record_from} to {signing.key_id()}; "
                        f"checkpoint at event {checkpoint.sequence} signed by {checkpoint.key_id}"
                    )
                )
                return
            if signing.from_env():
                self._print_env_steps(rotation.env_rotation_steps())
                return
            done = rotation.rotate_signing_key(actor=actor)
        except rotation.RotationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"rotated the audit signing key: key id {done.old_key_id} → {done.new_key_id}")
        )
        self.stdout.write(f"  new public key (give it to auditors): {done.new_public_key}")
        self.stdout.write(f"  old public key {done.old_public_key} is listed in {done.retired_file}")
        self.stdout.write(
            f"  checkpoint at event {done.checkpoint.sequence} signed by {done.checkpoint.key_id}; "
            "recorded as audit.key_rotated"
        )
        self.stdout.write(
            "  processes re-read the key file when it changes; restart web, workers and beat on other hosts "
            "after copying the new key file and the retired keys file to them"
        )

    def _print_env_steps(self, steps):
        write = self.stdout.write
        write(
            "The audit signing key is held in PROMPTLEDGER_AUDIT_SIGNING_KEY, which this command cannot change. "
            "Nothing was changed. To rotate it:"
        )
        write("")
        write(f"1. Retire the current key (key id {steps.old_key_id}) so older checkpoints and exports still verify:")
        write(f"     PROMPTLEDGER_AUDIT_RETIRED_KEYS={steps.retired_setting}")
        write(f"   (or add the line {steps.old_public_key} to PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE)")
        write("2. Set the new signing key. It is secret: keep it where the old one was kept, and nowhere else:")
        write(f"     PROMPTLEDGER_AUDIT_SIGNING_KEY={steps.new_seed}")
        write(f"   Its key id will be {steps.new_key_id}, its public key {steps.new_public_key}")
        write("3. Restart every web, worker and beat process with both settings: they read the environment at start.")
        write("4. Record the rotation in the audit trail and sign a checkpoint with the new key:")
        write(f"     python manage.py audit_rotate_key --record-from {steps.old_key_id}")
        write("5. Give auditors the new public key: python manage.py audit_public_key lists every key.")
