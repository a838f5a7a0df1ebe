"""Who belongs where, as read queries: the teams an actor sees, a team's members, and the people
with their site roles (admins). The API's team list and the pages ask the same functions."""

from django.contrib.auth import get_user_model
from django.db.models import Count, OuterRef, Prefetch, Subquery

from core import access
from core.errors import NotFound

from .models import Membership, SiteRole, Team


def visible_teams(actor):
    """Every team for those who read everything (admin, compliance, risk); otherwise the teams the
    actor belongs to."""
    queryset = Team.objects.all()
    if actor.reads_everything:
        return queryset.order_by("slug")
    if actor.user is None:
        return queryset.none()
    return queryset.filter(pk__in=access.teams_of(actor)).order_by("slug")


def team_list(actor):
    """``visible_teams`` with each team's member count and the actor's own role (``my_role``)."""
    mine = Membership.objects.filter(team=OuterRef("pk"), user=actor.user).values("role")[:1]
    return visible_teams(actor).annotate(member_count=Count("memberships", distinct=True), my_role=Subquery(mine))


def get_visible_team(actor, slug):
    team = visible_teams(actor).filter(slug=slug).first()
    if team is None:
        raise NotFound(f"no team '{slug}'", code="unknown_team")
    return team


def members(team):
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def people(actor, *, q=None):
    """Every account with its site roles prefetched (``roles``): for those who change site roles."""
    access.require(actor, "site_role.change")
    queryset = get_user_model().objects.order_by("username").prefetch_related(
        Prefetch("site_roles", queryset=SiteRole.objects.order_by("role"), to_attr="roles")
    )
    if q:
        queryset = queryset.filter(username__icontains=q.strip())
    return queryset


def creatable_teams(actor):
    """The teams where the access table lets the actor create a prompt."""
    return [t for t in visible_teams(actor) if access.may(actor, "prompt.create", team=t)]


def may_create_prompt(actor):
    """Whether the actor may create a prompt in some team: for the prompt list's "New prompt"."""
    if access.may(actor, "prompt.create"):  # admins, with no team needed
        return True
    team = access.teams_of(actor, min_role=access.rule("prompt.create").team_role).first()
    return team is not None and access.may(actor, "prompt.create", team=team)
