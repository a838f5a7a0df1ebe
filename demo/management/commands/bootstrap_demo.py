"""``manage.py bootstrap_demo [--password P]``: load the demo world (``demo/data``, see
``demo.loader``) through the services, then print a table of the demo logins.

Idempotent: running it again (``run_embedded`` does on every start) writes nothing and keeps what
was changed since.
"""

from django.contrib.auth.hashers import check_password
from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from demo.loader import DemoWorld
from evals.case_files import CaseFileError
from promptledger.prompt_files import PromptFilesInvalid

DEFAULT_PASSWORD = "promptledger-demo"  # noqa: S105 - a demo login, printed on purpose


class Command(BaseCommand):
    help = "Create demo teams, users, models, prompts, versions and deployments (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"password for the demo users it creates (default: {DEFAULT_PASSWORD}); existing users keep theirs",
        )

    def handle(self, password, **options):
        if not password:
            raise CommandError("--password must not be empty")
        try:
            world = DemoWorld(password=password)
            world.load()
        except PromptFilesInvalid as exc:
            raise CommandError("the demo's prompt files are invalid:\n" + "\n".join(map(str, exc.problems))) from exc
        except CaseFileError as exc:
            raise CommandError(f"the demo's cases are invalid: {exc}") from exc
        except DomainError as exc:
            raise CommandError(f"demo data was refused ({exc.code}): {exc.detail} {exc.field_errors or ''}") from exc
        self.report(world, password)

    def report(self, world, password):
        made = ", ".join(f"{count} {what}" for what, count in world.created.items() if count)
        self.stdout.write(self.style.SUCCESS(f"Demo data: created {made}.") if made else "Demo data: already loaded.")
        for note in world.notes:
            self.stdout.write(self.style.WARNING(note))
        known = {}  # hash → whether the given password opens it (every demo user shares one hash)
        rows = []
        for user, roles in world.logins:
            if user.password not in known:
                known[user.password] = check_password(password, user.password)
            rows.append((user.username, password if known[user.password] else "(set earlier)", roles))
        header = ("username", "password", "roles")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        line = "  ".join("-" * w for w in widths)
        self.stdout.write("\nDemo logins:")
        for row in [header, None, *rows]:
            cells = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) if row else line
            self.stdout.write(cells.rstrip())
