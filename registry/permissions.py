"""Which rows an actor may read, as queryset filters applied before any handler sees a row.

Who may *do* what is the access table's (``core/access.py``); this is the same ``read`` rule
in the form of a query, so lists and lookups never load what the actor cannot see."""

from .models import Membership, Prompt


def visible_prompts(actor, queryset=None):
    """Prompts the actor may read: all of them for admin, compliance and risk; otherwise those of
    the teams the actor is an active member of."""
    queryset = Prompt.objects.all() if queryset is None else queryset
    if actor.reads_everything:
        return queryset
    if actor.user is None:
        return queryset.none()
    # A subquery, not a join through memberships: no row comes twice, so lists need no DISTINCT
    # (which would make PostgreSQL aggregate every prompt before it can take one page of them).
    teams = Membership.objects.filter(user=actor.user, user__is_active=True).values("team_id")
    return queryset.filter(team_id__in=teams)


__all__ = ["visible_prompts"]
