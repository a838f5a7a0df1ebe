"""``manage.py sso_stale_accounts --days N``: the active accounts the IdP has not vouched for in
N days (or ever), to deactivate with ``manage.py user deactivate NAME`` after checking. The
break-glass accounts are listed apart: they are local on purpose."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from sso.models import Identity


class Command(BaseCommand):
    help = "List active accounts not seen at the identity provider for N days."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="not seen for this many days (default 30)")

    def handle(self, *args, days, **options):
        if days < 0:
            self.stderr.write("--days must be 0 or more")
            raise SystemExit(2)
        cutoff = timezone.now() - timedelta(days=days)
        seen = dict(Identity.objects.values_list("user_id", "last_seen_at"))
        break_glass = set(settings.PROMPTLEDGER_BREAK_GLASS_ACCOUNTS)
        stale, glass = [], []
        for user in get_user_model().objects.filter(is_active=True).order_by("username"):
            last = seen.get(user.pk)
            if user.username in break_glass:
                glass.append(user.username)
            elif last is None or last < cutoff:
                stale.append((user.username, last))
        for username, last in stale:
            when = last.strftime("%Y-%m-%d %H:%M UTC") if last else "never"
            self.stdout.write(f"{username}\tlast seen at the IdP: {when}")
        if glass:
            self.stdout.write(f"break-glass accounts (local on purpose): {', '.join(glass)}")
        self.stdout.write(f"{len(stale)} active account(s) not seen at the IdP for {days} day(s)")
