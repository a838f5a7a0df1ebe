"""Every state change of webhooks: emitting an event into the outbox, and managing subscriptions.

``emit`` writes its deliveries in the caller's transaction and signals workers only once that
transaction commits, so a rolled-back change sends nothing and a committed one is never lost (the
rows are the truth; a periodic sweep re-signals any delivery whose broker message went missing).

Team owners manage their team's subscriptions and admins the site-wide ones (which receive every
team's events). Each change is audited; the secret is returned once, by ``create_subscription``
and ``rotate_secret``, and never appears in an audit event, a log line or a body.
"""

import json
import secrets
import uuid
from functools import partial
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from audit import events as audit_events
from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, PermissionDenied, ValidationFailed

from .destinations import DestinationRefused, check_destination
from .models import ALL_EVENTS, EVENTS, PING, Delivery, Subscription
from .secret_box import seal

MANAGE_SCOPE = "prompts:write"
MAX_URL_LENGTH = 2000


class EmitOutsideTransaction(RuntimeError):
    """``emit`` was called outside the transaction of the change it reports."""


# --- who may manage what ----------------------------------------------------------------------------
def require_may_manage(actor, team):
    """Team owners (and admins) for a team's subscriptions; admins alone for site-wide ones."""
    access.require(actor, "webhook.manage", team=team)


def may_manage(actor, team):
    try:
        require_may_manage(actor, team)
    except PermissionDenied:
        return False
    return True


def _require_editable(subscription):
    if subscription.from_settings:
        raise Conflict(
            "this webhook is configured by the operator (PROMPTLEDGER_ALERT_WEBHOOK_URL); change it there",
            code="webhook_managed_by_settings",
        )


# --- input checks -----------------------------------------------------------------------------------
def check_url(value):
    """An absolute http(s) URL with a host; returned stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("url is required", field_errors={"url": ["this field is required"]})
    value = value.strip()
    if len(value) > MAX_URL_LENGTH:
        raise ValidationFailed("url is too long", field_errors={"url": [f"at most {MAX_URL_LENGTH} characters"]})
    problem = None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        problem = "this is not a valid URL"
    else:
        if parts.scheme not in ("http", "https"):
            problem = "use an http:// or https:// URL, e.g. https://hooks.example.com/promptledger"
        elif not parts.hostname:
            problem = "the URL needs a host, e.g. https://hooks.example.com/promptledger"
        elif any(ch.isspace() or ord(ch) < 32 for ch in value):
            problem = "the URL may not contain spaces or control characters"
    if problem:
        raise ValidationFailed(f"invalid webhook URL: {problem}", code="invalid_url", field_errors={"url": [problem]})
    try:
        check_destination(parts.hostname)
    except DestinationRefused as exc:
        raise ValidationFailed(
            f"this webhook URL may not be used: {exc}", code="url_not_allowed", field_errors={"url": [str(exc)]}
        ) from exc
    return value


def check_events(values):
    """A non-empty list of known event names, in the catalogue's order, or ``["*"]``."""
    allowed = ", ".join([ALL_EVENTS, *EVENTS])
    if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) for v in values):
        raise ValidationFailed(
            "choose at least one event",
            code="invalid_events",
            field_errors={"events": [f"a list of event names, or [\"*\"] for all; allowed: {allowed}"]},
        )
    unknown = sorted({v for v in values if v != ALL_EVENTS and v not in EVENTS})
    if unknown:
        raise ValidationFailed(
            f"unknown event {', '.join(unknown)}",
            code="invalid_events",
            field_errors={"events": [f"unknown: {', '.join(unknown)}; allowed: {allowed}"]},
        )
    if ALL_EVENTS in values:
        return [ALL_EVENTS]
    return [e for e in EVENTS if e in values]


def _check_description(value):
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise ValidationFailed(
            "description is too long", field_errors={"description": ["text, at most 200 characters"]}
        )
    return value.strip()


def _check_active(value):
    if not isinstance(value, bool):
        raise ValidationFailed("active is true or false", field_errors={"active": ["expected a boolean"]})
    return value


def new_secret():
    return "whsec_" + secrets.token_urlsafe(32)


# --- emitting ---------------------------------------------------------------------------------------
def _body(event_id, event, data):
    return json.dumps(
        {"id": str(event_id), "event": event, "created_at": timezone.now().isoformat(), "data": data},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )


def _queue_on_commit(delivery_ids):
    from .delivery import queue

    if delivery_ids:
        # robust: the change has committed by now; a broker that is down must not turn it into an
        # error for the caller. The sweep (webhooks.tasks.requeue_due) sends these later.
        transaction.on_commit(partial(queue, list(delivery_ids)), robust=True)


def emit(event, data, *, team=None):
    """Write one pending delivery per active subscription that wants ``event`` for ``team`` (a
    ``registry.models.Team``, or None for events of no team); site-wide subscriptions match every
    team. Must run inside the transaction of the change; workers are signalled after it commits.
    Returns the deliveries written."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if not connection.in_atomic_block:
        raise EmitOutsideTransaction(f"webhook event '{event}' must be emitted inside the change's transaction")
    for_team = Q(team__isnull=True) if team is None else Q(team__isnull=True) | Q(team_id=team.pk)
    candidates = Subscription.objects.filter(for_team, active=True)
    wanted = [s for s in candidates.order_by("id") if s.wants(event)]
    if not wanted:
        return []
    event_id, now = uuid.uuid4(), timezone.now()
    body = _body(event_id, event, data)
    made = Delivery.objects.bulk_create(
        [Delivery(subscription=s, event=event, event_id=event_id, body=body, next_attempt_at=now) for s in wanted]
    )
    _queue_on_commit([d.pk for d in made])
    return made


def _locked(subscription):
    """The subscription's row, locked for this transaction, as it is now."""
    return lock_rows(Subscription.objects).select_related("team").get(pk=subscription.pk)


# --- managing subscriptions ---------------------------------------------------------------------------
@retry_transient
def create_subscription(*, actor, url, events, team=None, description="", active=True):
    """Subscribe ``url`` to ``events`` of ``team`` (None: site-wide, admins only). Returns
    ``(subscription, secret)``; the secret is shown to the caller this once."""
    require_may_manage(actor, team)
    url, events = check_url(url), check_events(events)
    description, active = _check_description(description), _check_active(active)
    secret = new_secret()
    with change():
        subscription = Subscription.objects.create(
            team=team,
            url=url,
            events=events,
            secret=seal(secret),
            active=active,
            description=description,
            created_by=actor.user,
        )
        audit_events.webhook_created(actor, subscription)
    return subscription, secret


@retry_transient
def update_subscription(*, actor, subscription, url=None, events=None, active=None, description=None):
    """Change a subscription's URL, events, active flag or description (None: unchanged)."""
    require_may_manage(actor, subscription.team)
    _require_editable(subscription)
    changes = {}
    if url is not None:
        changes["url"] = check_url(url)
    if events is not None:
        changes["events"] = check_events(events)
    if active is not None:
        changes["active"] = _check_active(active)
    if description is not None:
        changes["description"] = _check_description(description)
    with change():
        locked = _locked(subscription)
        before = audit_events.webhook_state(locked)
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save()
        if audit_events.webhook_state(locked) != before:
            audit_events.webhook_updated(actor, locked, before=before)
    return locked


@retry_transient
def delete_subscription(*, actor, subscription):
    """Delete a subscription and its delivery log; pending deliveries are dropped, not sent."""
    require_may_manage(actor, subscription.team)
    _require_editable(subscription)
    with change():
        locked = lock_rows(Subscription.objects, deleting=True).select_related("team").get(pk=subscription.pk)
        audit_events.webhook_deleted(actor, locked)
        locked.delete()


@retry_transient
def rotate_secret(*, actor, subscription):
    """Replace the signing secret; returns ``(subscription, new_secret)``, shown this once.
    Attempts from now on, retries of earlier deliveries included, are signed with the new one."""
    require_may_manage(actor, subscription.team)
    _require_editable(subscription)
    with change():
        locked = _locked(subscription)
        raw = new_secret()
        locked.set_signing_secret(raw)
        locked.save(update_fields=["secret", "updated_at"])
        audit_events.webhook_secret_rotated(actor, locked)
    return locked, raw


@retry_transient
def send_test(*, actor, subscription):
    """Queue a ``ping`` to this subscription alone (whatever events it wants); returns the delivery."""
    require_may_manage(actor, subscription.team)
    with change():
        subscription = _locked(subscription)
        if not subscription.active:
            raise Conflict("this webhook is paused; activate it to send a test", code="webhook_inactive")
        event_id = uuid.uuid4()
        data = {
            "subscription": subscription.pk,
            "team": subscription.team.slug if subscription.team_id else None,
            "events": subscription.events,
            "actor": {"username": actor.username, "type": actor.kind},
            "message": "A test from Promptledger: this endpoint receives its webhooks.",
        }
        delivery = Delivery.objects.create(
            subscription=subscription,
            event=PING,
            event_id=event_id,
            body=_body(event_id, PING, data),
            next_attempt_at=timezone.now(),
        )
        audit_events.webhook_test_sent(actor, delivery)
        _queue_on_commit([delivery.pk])
    return delivery


@retry_transient
def redeliver(*, actor, delivery):
    """Send a finished delivery again as a new delivery (same body and event id, a new delivery
    id and attempt count); returns it. A pending one is still being tried: 409."""
    require_may_manage(actor, delivery.subscription.team)
    with change():
        subscription = _locked(delivery.subscription)
        if Delivery.objects.filter(pk=delivery.pk, status=Delivery.PENDING).exists():
            raise Conflict("this delivery is still being attempted", code="delivery_pending")
        if not subscription.active:
            raise Conflict("this webhook is paused; activate it to redeliver", code="webhook_inactive")
        again = Delivery.objects.create(
            subscription=subscription,
            event=delivery.event,
            event_id=delivery.event_id,
            body=delivery.body,
            redelivery_of=delivery,
            next_attempt_at=timezone.now(),
        )
        audit_events.webhook_redelivered(actor, again, original=delivery)
        _queue_on_commit([again.pk])
    return again
