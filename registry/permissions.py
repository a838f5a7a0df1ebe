"""Who may do what: token scopes, site roles and team roles, checked by services and applied to
querysets before any handler sees a row."""

from .errors import PermissionDenied
from .models import Membership, Prompt, SiteRole


def require_scope(actor, scope):
    if not actor.has_scope(scope):
        raise PermissionDenied(f"this token lacks the '{scope}' scope", code="scope_missing")


def team_role(actor, team):
    if actor.user is None:
        return None
    return (
        Membership.objects.filter(team=team, user=actor.user, user__is_active=True)
        .values_list("role", flat=True)
        .first()
    )


def has_team_role(actor, team, minimum, *, scope=None):
    """Whether ``require_team_role`` would pass: for pages deciding which actions to offer."""
    try:
        require_team_role(actor, team, minimum, scope=scope)
    except PermissionDenied:
        return False
    return True


def require_team_role(actor, team, minimum, *, scope=None):
    """Pass when the actor holds at least ``minimum`` in ``team`` (or is an admin)."""
    if scope:
        require_scope(actor, scope)
    if actor.is_admin:
        return
    role = team_role(actor, team)
    if role is None:
        raise PermissionDenied(f"you are not a member of team '{team.slug}'", code="not_team_member")
    if Membership.RANK[role] < Membership.RANK[minimum]:
        raise PermissionDenied(
            f"this needs the '{minimum}' role in team '{team.slug}'; you are '{role}'", code="role_too_low"
        )


def require_site_role(actor, *roles, scope=None):
    if scope:
        require_scope(actor, scope)
    if actor.is_admin or actor.site_roles & set(roles):
        return
    raise PermissionDenied(f"this needs the site role {' or '.join(roles)}", code="site_role_required")


def visible_prompts(actor, queryset=None):
    """Prompts the actor may read: all of them for admin, compliance and risk; otherwise those of
    the teams the actor belongs to."""
    queryset = Prompt.objects.all() if queryset is None else queryset
    if actor.reads_everything:
        return queryset
    if actor.user is None:
        return queryset.none()
    return queryset.filter(team__memberships__user=actor.user, team__memberships__user__is_active=True)


def can_read_prompt(actor, prompt):
    if actor.reads_everything:
        return True
    return team_role(actor, prompt.team) is not None


__all__ = ["SiteRole", "require_scope", "require_team_role", "require_site_role", "visible_prompts"]
