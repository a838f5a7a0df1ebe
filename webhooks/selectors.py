"""Read queries of webhooks: the subscriptions a person may manage, and their delivery logs.

Visibility is decided here, before any view sees a row: admins see every subscription; a team
owner sees their teams'. A subscription of a team you belong to with a lower role is refused with
its reason (403); one you cannot see at all is not found (404).
"""

from django.db.models import Count, Prefetch, Q

from core import access
from core.errors import NotFound, ValidationFailed
from registry.models import Membership

from .models import Delivery, DeliveryAttempt, Subscription


def manageable_subscriptions(actor):
    access.require(actor, "read")
    qs = Subscription.objects.select_related("team", "created_by").annotate(
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__status=Delivery.FAILED)),
    )
    if actor.is_admin:
        return qs.order_by("team__slug", "id")
    if actor.user is None:
        return qs.none()
    return qs.filter(team__in=access.teams_of(actor, Membership.OWNER)).order_by("team__slug", "id")


def _not_found(what, pk):
    return NotFound(f"no {what} {pk} (or you cannot see it)", code="webhook_not_found")


def get_subscription(*, actor, subscription_id):
    """A subscription the actor may see (its team's owners, admins); 403 with the reason for other
    members of its team. Changing it also needs the write scope, which the services check."""
    access.require(actor, "read")
    subscription = Subscription.objects.select_related("team", "created_by").filter(pk=subscription_id).first()
    if subscription is None:
        raise _not_found("webhook", subscription_id)
    if not actor.is_admin:
        if subscription.team is None or access.team_role(actor, subscription.team) is None:
            raise _not_found("webhook", subscription_id)
        access.require(actor, "webhook.read", team=subscription.team)
    return subscription


def get_delivery(*, actor, delivery_id):
    delivery = Delivery.objects.select_related("subscription__team").filter(pk=delivery_id).first()
    if delivery is None:
        raise _not_found("delivery", delivery_id)
    get_subscription(actor=actor, subscription_id=delivery.subscription_id)
    return delivery


def deliveries(subscription, *, status=None):
    """A subscription's delivery log, newest first, each with its attempts."""
    qs = subscription.deliveries.prefetch_related(
        Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number"))
    )
    if status:
        if status not in dict(Delivery.STATUS_CHOICES):
            raise ValidationFailed(
                f"unknown status '{status}'", field_errors={"status": ["pending, delivered or failed"]}
            )
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")
