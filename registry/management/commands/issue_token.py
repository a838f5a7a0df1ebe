"""``manage.py issue_token USERNAME --scope S [--scope S ...]``: prints the token once, last."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.actors import Actor
from core.errors import DomainError
from registry.models import APIToken
from registry.services import issue_token, tokens


class Command(BaseCommand):
    help = "Issue a scoped API token for a user. The token is printed once and stored only as a hash."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            required=True,
            choices=APIToken.SCOPES,
            help="repeat for several scopes",
        )
        parser.add_argument("--name", default="", help="a label to recognise the token by")
        parser.add_argument(
            "--days", type=int, default=None,
            help=f"days until it expires (default {tokens.DEFAULT_DAYS}, at most PROMPTLEDGER_TOKEN_MAX_DAYS)",
        )

    def handle(self, username, scopes, name, days=None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user '{username}'")
        try:
            expires_at = timezone.now() + timedelta(days=days) if days is not None else None
            token, raw = issue_token(
                actor=Actor.for_system("issue_token"), user=user, scopes=scopes, name=name, expires_at=expires_at
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        except OverflowError as exc:
            raise CommandError(f"--days {days} is out of range") from exc
        self.stdout.write(
            f"Token {token.prefix}… for {username} with scopes {', '.join(token.scopes)}, "
            f"expires {token.expires_at:%Y-%m-%d}: {raw}"
        )
