"""Every configuration change of an audit stream to a SIEM: create, change, pause and resume.

Admins only (``audit_stream.manage``: a person, in the browser or through their token with
``prompts:write`` (the API); never the system), each change audited
(``audit_stream.*``). The URL passes the webhooks' checks (``webhooks.services.check_url``: http(s),
and the SSRF rules of ``webhooks.destinations``); the receiver's token is sealed at rest
(``webhooks.secret_box``) and never recorded. Sending is ``webhooks.audit_stream``'s.
"""

import re

from django.db import IntegrityError

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, NotFound, ValidationFailed

from . import audit_stream, stream_events
from .models import AuditStream
from .services import check_url

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
BATCH_RANGE, INTERVAL_RANGE = (1, 5000), (1, 3600)
STARTS = ("beginning", "now")


def require_may_manage(actor):
    access.require(actor, "audit_stream.manage")


def may_manage(actor):
    return access.may(actor, "audit_stream.manage")


def require_may_read(actor):
    access.require(actor, "audit_stream.read")


def may_read(actor):
    return access.may(actor, "audit_stream.read")


# --- input checks -----------------------------------------------------------------------------------
def _invalid(field, message):
    return ValidationFailed(f"{field}: {message}", field_errors={field: [message]})


def _name(value):
    value = (value or "").strip().lower() if isinstance(value, str) else ""
    if not NAME.match(value):
        raise _invalid("name", "lower-case letters, digits and hyphens, at most 50, e.g. splunk-prod")
    return value


def _format(value):
    if value not in dict(AuditStream.FORMAT_CHOICES):
        raise _invalid("format", f"one of {', '.join(dict(AuditStream.FORMAT_CHOICES))}")
    return value


def _number(field, value, bounds):
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(field, f"a whole number from {low} to {high}")
    return value


def _text(field, value, limit):
    value = (value or "").strip() if isinstance(value, str) else None
    if value is None or len(value) > limit:
        raise _invalid(field, f"text, at most {limit} characters")
    return value


def _checked(fields):
    checks = {
        "name": _name,
        "url": check_url,
        "format": _format,
        "batch_size": lambda v: _number("batch_size", v, BATCH_RANGE),
        "interval_seconds": lambda v: _number("interval_seconds", v, INTERVAL_RANGE),
        "sourcetype": lambda v: _text("sourcetype", v, 100) or "promptledger:audit",
        "token": lambda v: _text("token", v, 400),
    }
    return {name: checks[name](value) for name, value in fields.items() if value is not None}


# --- reads ------------------------------------------------------------------------------------------
def streams(actor):
    """Every stream, with ``lag_events`` and ``lag_seconds`` set (admins and compliance), and who
    created each (the API's list shows it)."""
    require_may_read(actor)
    found = list(AuditStream.objects.select_related("created_by").order_by("name"))
    lags = audit_stream.lags(found)
    for stream in found:
        stream.lag_events, stream.lag_seconds = lags[stream.pk]
    return found


def get_stream(*, actor, stream_id):
    require_may_read(actor)
    stream = AuditStream.objects.select_related("created_by").filter(pk=stream_id).first()
    if stream is None:
        raise NotFound(f"no audit stream {stream_id}", code="audit_stream_not_found")
    stream.lag_events, stream.lag_seconds = audit_stream.lag(stream)
    return stream


# --- changes ----------------------------------------------------------------------------------------
@retry_transient
def create_stream(*, actor, name, url, format=AuditStream.JSONL, token="", sourcetype="promptledger:audit",
                  batch_size=500, interval_seconds=10, start="beginning"):
    """A new, active stream sending every event from the first one (``start="beginning"``) or only
    those written from now on (``"now"``). The token is sealed; it is never shown again."""
    require_may_manage(actor)
    fields = _checked({"name": name, "url": url, "format": format, "token": token, "sourcetype": sourcetype,
                       "batch_size": batch_size, "interval_seconds": interval_seconds})
    if start not in STARTS:
        raise _invalid("start", "beginning (every event) or now (events from now on)")
    raw_token = fields.pop("token", "")
    try:
        with change():
            if AuditStream.objects.filter(name=fields["name"]).exists():
                raise _invalid("name", "another stream has this name")
            cursor, cursor_hash = audit_stream.starting_point(start)
            stream = AuditStream(**fields, cursor=cursor, cursor_hash=cursor_hash, created_by=actor.user)
            stream.set_auth_token(raw_token)
            stream.save()
            stream_events.stream_created(actor, stream)
    except IntegrityError as exc:  # the same name, created at the same moment
        raise _invalid("name", "another stream has this name") from exc
    return stream


@retry_transient
def update_stream(*, actor, stream, url=None, format=None, token=None, sourcetype=None, batch_size=None,
                  interval_seconds=None):
    """Change where and how a stream sends (None: unchanged; ``token=""`` removes it). Its cursor
    stays: the receiver at the new address gets the events from where the stream is. A stream that
    was backing off is due again at once."""
    require_may_manage(actor)
    fields = _checked({"url": url, "format": format, "token": token, "sourcetype": sourcetype,
                       "batch_size": batch_size, "interval_seconds": interval_seconds})
    with change():
        locked = lock_rows(AuditStream.objects).get(pk=stream.pk)
        before = stream_events.stream_state(locked)
        token_changed = "token" in fields and fields.pop("token") != locked.auth_token()
        if token_changed:
            locked.set_auth_token(token)
        for name, value in fields.items():
            setattr(locked, name, value)
        if token_changed or stream_events.stream_state(locked) != before:
            locked.next_attempt_at, locked.failures = None, 0
            locked.save()
            stream_events.stream_updated(actor, locked, before=before, token_changed=token_changed)
    return locked


@retry_transient
def set_active(*, actor, stream, active):
    """Pause a stream (nothing is sent; its cursor waits) or resume it (it catches up from there)."""
    require_may_manage(actor)
    with change():
        locked = lock_rows(AuditStream.objects).get(pk=stream.pk)
        if locked.active == active:
            raise Conflict(f"the stream is already {'active' if active else 'paused'}",
                           code="audit_stream_unchanged")
        locked.active, locked.next_attempt_at, locked.failures = active, None, 0
        locked.save(update_fields=["active", "next_attempt_at", "failures", "updated_at"])
        (stream_events.stream_resumed if active else stream_events.stream_paused)(actor, locked)
    return locked
