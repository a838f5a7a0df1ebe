"""IdP groups → Promptledger roles (``PROMPTLEDGER_OIDC_GROUP_MAP``).

The map is JSON: each IdP group names one grant or a list of them, a team role
(``{"team": "payments", "role": "approver"}``) or a site role (``{"site_role": "compliance"}``).
The teams and site roles the map names are the IdP's: at each sign-in a person gets exactly what
their groups grant there (the highest role where several groups name one team) and loses what
they no longer grant. Teams and site roles the map never names are left to the admins.
"""

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from registry.models import Membership, SiteRole

SITE_ROLES = [role for role, _ in SiteRole.ROLE_CHOICES]


@dataclass(frozen=True)
class GroupMap:
    teams: dict = field(default_factory=dict)  # group -> {team slug: role}
    site_roles: dict = field(default_factory=dict)  # group -> {site role}

    @property
    def managed_teams(self):
        return {team for grants in self.teams.values() for team in grants}

    @property
    def managed_site_roles(self):
        return {role for roles in self.site_roles.values() for role in roles}

    def granted(self, groups):
        """(team slug → role, site roles) that ``groups`` grant."""
        teams, site_roles = {}, set()
        for group in groups:
            for team, role in self.teams.get(group, {}).items():
                if team not in teams or Membership.RANK[role] > Membership.RANK[teams[team]]:
                    teams[team] = role
            site_roles |= self.site_roles.get(group, set())
        return teams, site_roles


def parse(text):
    """The map from its JSON text; ``ImproperlyConfigured`` naming what is wrong otherwise."""
    name = "PROMPTLEDGER_OIDC_GROUP_MAP"
    try:
        raw = json.loads(text or "{}")
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object of IdP group → grant(s)")
    teams, site_roles = {}, {}
    for group, grants in raw.items():
        for grant in grants if isinstance(grants, list) else [grants]:
            if isinstance(grant, dict) and set(grant) == {"team", "role"}:
                if grant["role"] not in Membership.RANK or not isinstance(grant["team"], str):
                    raise ImproperlyConfigured(
                        f"{name}[{group!r}]: role must be one of {', '.join(Membership.RANK)}"
                    )
                mine = teams.setdefault(group, {})
                role = grant["role"]
                if grant["team"] not in mine or Membership.RANK[role] > Membership.RANK[mine[grant["team"]]]:
                    mine[grant["team"]] = role
            elif isinstance(grant, dict) and set(grant) == {"site_role"} and grant["site_role"] in SITE_ROLES:
                site_roles.setdefault(group, set()).add(grant["site_role"])
            else:
                raise ImproperlyConfigured(
                    f"{name}[{group!r}]: each grant is {{\"team\": slug, \"role\": role}} or "
                    f"{{\"site_role\": one of {', '.join(SITE_ROLES)}}}"
                )
    return GroupMap(teams=teams, site_roles=site_roles)


def group_map():
    return parse(settings.PROMPTLEDGER_OIDC_GROUP_MAP)
