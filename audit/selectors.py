"""Which audit events an actor may read, and the filters every audit view and export share."""

import datetime

from core import access
from core.errors import ValidationFailed
from core.models import SiteRole

from .models import AuditEvent

FILTERS = ("since", "until", "team", "prompt", "actor", "action")


def reads_all_events(actor):
    return actor.system or bool(actor.site_roles & {SiteRole.ADMIN, SiteRole.COMPLIANCE})


def visible_events(actor):
    """Admins and compliance read every event; anyone else the events of their teams."""
    access.require(actor, "audit.read")
    qs = AuditEvent.objects.all()
    if reads_all_events(actor):
        return qs
    if actor.user is None:
        return qs.none()
    teams = access.teams_of(actor).values_list("slug", flat=True)
    return qs.filter(team__in=list(teams))


def _time(value, field):
    """The time ``value`` names, in UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 and
    Python allow (+16:00), and the raw SQL of the export would hand it the offset as written."""
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(
            f"{field} is not a date or time",
            field_errors={field: ["use ISO 8601, e.g. 2026-11-01 or 2026-11-01T09:00:00Z"]},
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    try:
        return parsed.astimezone(datetime.UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise ValidationFailed(
            f"{field} is out of range", field_errors={field: ["a time between the years 1 and 9999, in UTC"]}
        ) from exc


def clean_filters(params):
    """The filters given (as strings), checked; unknown keys are ignored."""
    filters = {name: params.get(name).strip() for name in FILTERS if params.get(name, "").strip()}
    for name in ("since", "until"):
        if name in filters:
            _time(filters[name], name)
    return filters


def filter_events(queryset, filters):
    """``since`` is inclusive; ``until`` is exclusive for a time, and includes the whole day for a
    date alone (until 2026-10-31 is all of October)."""
    if "since" in filters:
        queryset = queryset.filter(occurred_at__gte=_time(filters["since"], "since"))
    if "until" in filters:
        until = _time(filters["until"], "until")
        if len(filters["until"]) == 10:  # YYYY-MM-DD
            until = until + datetime.timedelta(days=1) if until.date() < datetime.date.max else None
        if until is not None:  # None: until the calendar's last day, so no bound at all
            queryset = queryset.filter(occurred_at__lt=until)
    if "team" in filters:
        queryset = queryset.filter(team=filters["team"])
    if "prompt" in filters:
        queryset = queryset.filter(prompt=filters["prompt"])
    if "actor" in filters:
        queryset = queryset.filter(actor_username=filters["actor"])
    if "action" in filters:
        action = filters["action"]
        queryset = (
            queryset.filter(action__startswith=action) if action.endswith(".") else queryset.filter(action=action)
        )
    return queryset


def is_contiguous(actor, filters):
    """An export is a contiguous stretch of the chain when only time bounds it."""
    return reads_all_events(actor) and not (set(filters) - {"since", "until"})
