"""Browser pages of webhooks (/settings/webhooks/): as thin as the API views, calling the same
selectors and services. A new or rotated secret is kept in the session only until the next page
shows it, once."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from core import access
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.pages import registry_page
from registry.models import Team

from . import selectors, services, stream_services
from .forms import SubscriptionEditForm, SubscriptionForm
from .models import Delivery

LOG_PAGE_SIZE = 25
STATUS_BADGE = {Delivery.PENDING: "run-queued", Delivery.DELIVERED: "run-completed", Delivery.FAILED: "run-failed"}


def _secret_key(subscription_id):
    return f"webhooks:secret:{subscription_id}"


def _owned_teams(actor):
    if actor.is_admin:
        return list(Team.objects.order_by("name"))
    if actor.user is None:
        return []
    return list(
        access.teams_of(actor, access.OWNER).order_by("name")
    )


@registry_page
def subscription_list(request, actor):
    teams = _owned_teams(actor)
    context = {
        "section": "webhooks",
        "subscriptions": list(selectors.manageable_subscriptions(actor)),
        "may_create": any(services.may_manage(actor, team) for team in [*teams, None]),
        "may_see_streams": stream_services.may_read(actor),
    }
    return render(request, "webhooks/subscription_list.html", context)


@registry_page
@require_http_methods(["GET", "POST"])
def subscription_new(request, actor):
    teams = _owned_teams(actor)
    if not any(services.may_manage(actor, team) for team in [*teams, None]):
        raise PermissionDenied("webhooks are managed by a team's owners (site-wide ones: admins)", code="role_too_low")
    form = SubscriptionForm(request.POST or None, teams=teams, may_site_wide=actor.is_admin)
    if request.method == "POST" and form.is_valid():
        try:
            subscription, secret = services.create_subscription(
                actor=actor,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                team=form.chosen_team(),
                description=form.cleaned_data["description"],
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            request.session[_secret_key(subscription.pk)] = secret
            messages.success(request, "Webhook created. Copy its secret now: it is not shown again.")
            return redirect("webhooks:detail", subscription_id=subscription.pk)
    status = 400 if request.method == "POST" else 200
    context = {"section": "webhooks", "form": form, "no_teams": not form.fields["team"].choices}
    return render(request, "webhooks/subscription_new.html", context, status=status)


def _log_context(request, subscription):
    status = request.GET.get("status") or ""
    if status not in STATUS_BADGE:
        status = ""
    page = Paginator(selectors.deliveries(subscription, status=status or None), LOG_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    now = timezone.now()
    for delivery in page.object_list:
        delivery.badge = STATUS_BADGE[delivery.status]
        delivery.retry_due = delivery.next_attempt_at is not None and delivery.next_attempt_at <= now
    return {
        "has_pending": any(d.status == Delivery.PENDING for d in page.object_list),
        "subscription": subscription,
        "page": page,
        "status": status,
        "statuses": Delivery.STATUS_CHOICES,
        "query": f"status={status}" if status else "",
    }


def _detail(request, actor, subscription, edit_form=None, status=200):
    context = {
        "section": "webhooks",
        "secret": request.session.pop(_secret_key(subscription.pk), None),
        "edit_form": edit_form or SubscriptionEditForm.for_subscription(subscription),
        "editable": not subscription.from_settings,
        **_log_context(request, subscription),
    }
    response = render(request, "webhooks/subscription_detail.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may carry a secret shown once
    return response


@registry_page
def subscription_detail(request, actor, subscription_id):
    subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
    return _detail(request, actor, subscription)


@registry_page
def delivery_log(request, actor, subscription_id):
    """The delivery log alone: htmx swaps it in when the status filter or the page changes."""
    subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
    if not request.headers.get("HX-Request"):
        detail = reverse("webhooks:detail", kwargs={"subscription_id": subscription.pk})
        return redirect(f"{detail}?{request.GET.urlencode()}" if request.GET else detail)
    response = render(request, "webhooks/_delivery_log.html", _log_context(request, subscription))
    patch_vary_headers(response, ["HX-Request"])
    return response


@registry_page
@require_POST
def subscription_edit(request, actor, subscription_id):
    subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
    form = SubscriptionEditForm.for_subscription(subscription, data=request.POST)
    if form.is_valid():
        try:
            services.update_subscription(actor=actor, subscription=subscription, **form.cleaned_data)
        except (ValidationFailed, Conflict) as exc:
            form.add_domain_errors(exc)
        else:
            messages.success(request, "Webhook saved.")
            return redirect("webhooks:detail", subscription_id=subscription.pk)
    return _detail(request, actor, subscription, edit_form=form, status=400)


@registry_page
@require_POST
def subscription_test(request, actor, subscription_id):
    subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
    try:
        services.send_test(actor=actor, subscription=subscription)
    except Conflict as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "A ping is on its way; it appears in the delivery log below.")
    return redirect("webhooks:detail", subscription_id=subscription.pk)


@registry_page
@require_POST
def subscription_rotate(request, actor, subscription_id):
    subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
    try:
        subscription, secret = services.rotate_secret(actor=actor, subscription=subscription)
    except Conflict as exc:
        messages.error(request, exc.detail)
    else:
        request.session[_secret_key(subscription.pk)] = secret
        messages.success(request, "Secret replaced. Update your receiver: the old secret no longer verifies.")
    return redirect("webhooks:detail", subscription_id=subscription.pk)


@registry_page
@require_http_methods(["GET", "POST"])
def subscription_delete(request, actor, subscription_id):
    subscription = selectors.get_subscription(actor=actor, subscription_id=subscription_id)
    if request.method == "POST":
        try:
            services.delete_subscription(actor=actor, subscription=subscription)
        except Conflict as exc:
            messages.error(request, exc.detail)
            return redirect("webhooks:detail", subscription_id=subscription.pk)
        messages.success(request, f"Webhook to {subscription.display_url} deleted.")
        return redirect("webhooks:list")
    return render(
        request, "webhooks/subscription_delete.html", {"section": "webhooks", "subscription": subscription}
    )


@registry_page
@require_POST
def delivery_redeliver(request, actor, delivery_id):
    delivery = selectors.get_delivery(actor=actor, delivery_id=delivery_id)
    try:
        services.redeliver(actor=actor, delivery=delivery)
    except Conflict as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{delivery.event} queued again as a new delivery.")
    return redirect("webhooks:detail", subscription_id=delivery.subscription_id)
