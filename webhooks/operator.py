"""The operator's alert webhook: ``PROMPTLEDGER_ALERT_WEBHOOK_URL`` and ``_SECRET`` in the
environment become one site-wide subscription to ``drift.alert`` (``from_settings``), kept in step
by ``sync_operator_subscription``: after every ``migrate`` and by ``manage.py sync_alert_webhook``.

With a URL and a secret it is created or updated to match; with neither (or no secret: an unsigned
alert cannot be told from a forged one) it is paused. People cannot edit it through the API or the
pages; the environment is its one source. Changes are audited as the system ("settings").
"""

import logging

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from audit import events as audit_events
from audit.transactions import change, lock_rows, retry_transient
from core.actors import Actor
from core.errors import ValidationFailed

from .models import Subscription, redacted_url
from .services import check_url

log = logging.getLogger(__name__)

OPERATOR_EVENTS = ["drift.alert"]
DESCRIPTION = "Operator alert webhook (PROMPTLEDGER_ALERT_WEBHOOK_URL)"


def _wanted():
    url = settings.PROMPTLEDGER_ALERT_WEBHOOK_URL
    secret = settings.PROMPTLEDGER_ALERT_WEBHOOK_SECRET
    if not url:
        return None
    if not secret:
        log.error("PROMPTLEDGER_ALERT_WEBHOOK_URL is set but PROMPTLEDGER_ALERT_WEBHOOK_SECRET is empty: not used")
        return None
    try:
        url = check_url(url)
    except ValidationFailed as exc:
        log.error("PROMPTLEDGER_ALERT_WEBHOOK_URL (%s) is not used: %s", redacted_url(url), exc.field_errors["url"][0])
        return None
    return {"url": url, "secret": secret, "events": OPERATOR_EVENTS, "active": True, "description": DESCRIPTION}


@retry_transient
def sync_operator_subscription():
    """Make the operator subscription match the environment; returns what happened:
    ``created``, ``updated``, ``paused`` or ``unchanged``."""
    actor = Actor.for_system("settings")
    wanted = _wanted()
    with change():
        current = lock_rows(Subscription.objects).filter(from_settings=True).first()
        if wanted is None:
            if current is None or not current.active:
                return "unchanged"
            before = audit_events.webhook_state(current)
            current.active = False
            current.save(update_fields=["active", "updated_at"])
            audit_events.webhook_updated(actor, current, before=before)
            return "paused"
        secret = wanted.pop("secret")
        if current is None:
            made = Subscription(team=None, from_settings=True, **wanted)
            made.set_signing_secret(secret)
            made.save()
            audit_events.webhook_created(actor, made)
            return "created"
        same_secret = current.signing_secret() == secret
        if same_secret and all(getattr(current, name) == value for name, value in wanted.items()):
            return "unchanged"
        before = audit_events.webhook_state(current)
        for name, value in wanted.items():
            setattr(current, name, value)
        if not same_secret:
            current.set_signing_secret(secret)
        current.save()
        if audit_events.webhook_state(current) != before:
            audit_events.webhook_updated(actor, current, before=before)
        if not same_secret:
            audit_events.webhook_secret_rotated(actor, current)
        return "updated"


def sync_after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    """post_migrate: sync once the tables exist (not after migrating webhooks back to zero)."""
    if using != DEFAULT_DB_ALIAS:
        return
    if Subscription._meta.db_table not in connections[using].introspection.table_names():
        return
    outcome = sync_operator_subscription()
    if outcome != "unchanged":
        log.info("operator alert webhook: %s", outcome)
