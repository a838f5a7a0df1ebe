"""``manage.py user``: an operator's way to manage accounts, through the same audited services as
everything else (the audit log names the system, with ``manage.py user`` as the request id).

    python manage.py user create ava --email ava@example.org --password-stdin < secret.txt
    python manage.py user set-password ava            # asks twice, or --password-stdin
    python manage.py user deactivate ava              # her tokens and sessions stop at once
    python manage.py user activate ava
    python manage.py user flags ava --superuser yes --staff no
    python manage.py user grant-role ava compliance   # admin, compliance or risk
    python manage.py user revoke-role ava compliance
"""

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.errors import DomainError
from registry.models import SiteRole
from registry.services import create_user, grant_site_role, revoke_site_role, set_password, set_user_flags

YES_NO = {"yes": True, "no": False}


class Command(BaseCommand):
    help = "Create accounts, set passwords, (de)activate, set staff/superuser flags and site roles; audited."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        made = sub.add_parser("create", help="a new active account")
        made.add_argument("username")
        made.add_argument("--email", default="")
        made.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        password = sub.add_parser("set-password", help="set the password (asked twice unless --password-stdin)")
        password.add_argument("username")
        password.add_argument("--password-stdin", action="store_true")
        for name in ("activate", "deactivate"):
            sub.add_parser(name).add_argument("username")
        flags = sub.add_parser("flags", help="set the staff and superuser flags")
        flags.add_argument("username")
        flags.add_argument("--staff", choices=YES_NO)
        flags.add_argument("--superuser", choices=YES_NO)
        roles = [r for r, _ in SiteRole.ROLE_CHOICES]
        for name in ("grant-role", "revoke-role"):
            role = sub.add_parser(name)
            role.add_argument("username")
            role.add_argument("role", choices=roles)

    def _password(self, from_stdin):
        if from_stdin:
            return sys.stdin.readline().rstrip("\n")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the two passwords differ")
        return first

    def handle(self, action, username, **options):
        actor = Actor.for_system("manage.py user")
        try:
            if action == "create":
                password = self._password(True) if options["password_stdin"] else None
                create_user(actor=actor, username=username, email=options["email"], password=password)
                self.stdout.write(f"Created {username}" + ("" if password else " (no password yet: set-password)"))
            elif action == "set-password":
                set_password(actor=actor, username=username, password=self._password(options["password_stdin"]))
                self.stdout.write(f"Password set for {username}")
            elif action in ("activate", "deactivate"):
                set_user_flags(actor=actor, username=username, is_active=action == "activate")
                self.stdout.write(f"{username} is {'active' if action == 'activate' else 'deactivated'}")
            elif action == "flags":
                flags = {}
                if options["staff"]:
                    flags["is_staff"] = YES_NO[options["staff"]]
                if options["superuser"]:
                    flags["is_superuser"] = YES_NO[options["superuser"]]
                if not flags:
                    raise CommandError("give --staff and/or --superuser (yes or no)")
                user = set_user_flags(actor=actor, username=username, **flags)
                self.stdout.write(f"{username}: staff {user.is_staff}, superuser {user.is_superuser}")
            elif action == "grant-role":
                grant_site_role(actor=actor, username=username, role=options["role"])
                self.stdout.write(f"{username} has the site role {options['role']}")
            else:
                revoke_site_role(actor=actor, username=username, role=options["role"])
                self.stdout.write(f"{username} no longer has the site role {options['role']}")
        except DomainError as exc:
            fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.field_errors.items())
            raise CommandError(f"{exc.detail}" + (f" ({fields})" if fields else "")) from exc
