"""``manage.py sso_check``: fetch the IdP's discovery document now and print the endpoints the
sign-in will use (a configuration mistake shows here, not at a person's first sign-in)."""

from django.core.management.base import BaseCommand, CommandError

from sso import provider
from sso.roles import group_map


class Command(BaseCommand):
    help = "Fetch the OIDC discovery document and print the endpoints and group map in use."

    def handle(self, *args, **options):
        if not provider.enabled():
            raise CommandError("single sign-on is off: set PROMPTLEDGER_OIDC_ISSUER and PROMPTLEDGER_OIDC_CLIENT_ID")
        try:
            provider.discovery(refresh=True)
            for name in provider.ENDPOINTS:
                self.stdout.write(f"{name} = {provider.setting(name)}")
        except provider.DiscoveryFailed as exc:
            raise CommandError(str(exc)) from exc
        mapping = group_map()
        self.stdout.write(f"teams managed by the IdP: {', '.join(sorted(mapping.managed_teams)) or 'none'}")
        self.stdout.write(f"site roles managed by the IdP: {', '.join(sorted(mapping.managed_site_roles)) or 'none'}")
