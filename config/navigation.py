"""What the navigation shows each signed-in person beyond its links: the pending-approvals count
for those who approve for some team, the models' due-review count for those who review models.
Deciding who gets either costs one query, made only when a full page renders its navigation
(``nav_badges`` is lazy: htmx fragments and signed-out pages never ask); the counts themselves
are htmx fragments fetched after the page, only by those people."""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils.functional import SimpleLazyObject

from approvals.selectors import approver_memberships
from risk.selectors import reviewer_roles


def _badges(user):
    row = (
        get_user_model().objects.filter(pk=user.pk)
        .annotate(approves=Exists(approver_memberships(OuterRef("pk"))), reviews=Exists(reviewer_roles(OuterRef("pk"))))
        .values("approves", "reviews").first()
    ) or {"approves": False, "reviews": False}
    return {"approves": row["approves"], "reviews": row["reviews"] or user.is_superuser}


def nav_badges(request):
    """Context processor: ``nav_badges.approves`` / ``nav_badges.reviews``, evaluated on first use."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_badges": SimpleLazyObject(lambda: _badges(user))}
