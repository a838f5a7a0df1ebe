"""Which rows an actor may read, as queryset filters applied before any handler sees a row.

Who may *do* what is the access table's (``core/access.py``); this is the same ``read`` rule
in the form of a query, so lists and lookups never load what the actor cannot see."""

from .models import Prompt


def visible_prompts(actor, queryset=None):
    """Prompts the actor may read: all of them for admin, compliance and risk; otherwise those of
    the teams the actor is an active member of."""
    queryset = Prompt.objects.all() if queryset is None else queryset
    if actor.reads_everything:
        return queryset
    if actor.user is None:
        return queryset.none()
    return queryset.filter(team__memberships__user=actor.user, team__memberships__user__is_active=True)


__all__ = ["visible_prompts"]
