"""Teams and their members' roles."""

from django.db import IntegrityError

from audit import events
from audit.transactions import change, lock_rows, retry_transient

from ..errors import Conflict, NotFound
from ..models import Membership, SiteRole, Team
from ..permissions import require_site_role, require_team_role
from .validation import check_choice, check_slug, check_text, get_active_user

ROLES = [role for role, _ in Membership.ROLE_CHOICES]
# Who may change teams and roles also needs a token that may write: a read-only token of an owner
# or an admin must not grant anyone anything. (The access table of issue 12 will name one scope
# per action; until then, team administration asks for prompts:write.)
ADMIN_SCOPE = "prompts:write"


@retry_transient
def create_team(*, actor, slug, name):
    """Create a team; admins only."""
    require_site_role(actor, scope=ADMIN_SCOPE)
    check_slug(slug, max_length=64)
    name = check_text(name, "name")
    try:
        with change():
            team = Team.objects.create(slug=slug, name=name)
            events.team_created(actor, team)
            return team
    except IntegrityError as exc:
        raise Conflict(
            f"team '{slug}' already exists", code="slug_taken", field_errors={"slug": ["already taken"]}
        ) from exc


@retry_transient
def add_member(*, actor, team, username, role):
    """Add a user to a team, or change their role; the team's owners and admins only."""
    require_team_role(actor, team, Membership.OWNER, scope=ADMIN_SCOPE)
    check_choice(role, "role", ROLES)
    user = get_active_user(username, "username")
    with change():
        before = lock_rows(Membership.objects).filter(team=team, user=user).values_list("role", flat=True)
        before_role = before.first()
        membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
        if before_role != role:
            events.membership_changed(actor, membership, before_role=before_role)
    return membership


@retry_transient
def remove_member(*, actor, team, username):
    require_team_role(actor, team, Membership.OWNER, scope=ADMIN_SCOPE)
    with change():
        membership = lock_rows(Membership.objects, deleting=True).filter(team=team, user__username=username).first()
        if membership is None:
            raise NotFound(f"'{username}' is not a member of '{team.slug}'")
        role = membership.role
        membership.delete()
        events.membership_removed(actor, team=team, username=username, role=role)


@retry_transient
def grant_site_role(*, actor, username, role):
    """Give a user a site-wide role (admin, compliance, risk); admins only."""
    require_site_role(actor, scope=ADMIN_SCOPE)
    check_choice(role, "role", [r for r, _ in SiteRole.ROLE_CHOICES])
    user = get_active_user(username, "username")
    with change():
        grant, created = SiteRole.objects.get_or_create(user=user, role=role)
        if created:
            events.site_role_changed(actor, username=username, role=role, granted=True)
    return grant


@retry_transient
def revoke_site_role(*, actor, username, role):
    require_site_role(actor, scope=ADMIN_SCOPE)
    with change():
        grant = lock_rows(SiteRole.objects, deleting=True).filter(user__username=username, role=role).first()
        if grant is None:
            raise NotFound(f"'{username}' does not have the site role '{role}'")
        grant.delete()
        events.site_role_changed(actor, username=username, role=role, granted=False)
