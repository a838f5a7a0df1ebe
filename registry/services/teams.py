"""Teams and their members' roles."""

from django.db import IntegrityError

from audit import events
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, NotFound

from ..models import Membership, SiteRole, Team
from .validation import check_choice, check_slug, check_text, get_active_user

ROLES = [role for role, _ in Membership.ROLE_CHOICES]


@retry_transient
def create_team(*, actor, slug, name):
    """Create a team; admins only."""
    access.require(actor, "team.create")
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
    access.require(actor, "team.members", team=team)
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
    access.require(actor, "team.members", team=team)
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
    access.require(actor, "site_role.change")
    check_choice(role, "role", [r for r, _ in SiteRole.ROLE_CHOICES])
    user = get_active_user(username, "username")
    with change():
        grant, created = SiteRole.objects.get_or_create(user=user, role=role)
        if created:
            events.site_role_changed(actor, username=username, role=role, granted=True)
    return grant


@retry_transient
def revoke_site_role(*, actor, username, role):
    access.require(actor, "site_role.change")
    with change():
        grant = lock_rows(SiteRole.objects, deleting=True).filter(user__username=username, role=role).first()
        if grant is None:
            raise NotFound(f"'{username}' does not have the site role '{role}'")
        grant.delete()
        events.site_role_changed(actor, username=username, role=role, granted=False)
