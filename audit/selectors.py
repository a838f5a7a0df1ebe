"""Which audit events an actor may read, and the filters every audit view and export share.

Every filter narrows through an index of ``AuditEvent`` (time, team, prompt, actor, action, the
target, the request id), so each stays quick on a log of millions of events:
- ``deploy_request``: the events about the request (target ``deploy_request``/id) and those recorded
  by the same requests on the same prompt (the pointer move and gate check of its deploy, the
  request it superseded), found by their request id;
- ``version`` (with ``prompt``): the events naming that version: its creation, gate checks, eval
  runs, deploy requests for it, and the deployments that put it live or took it off;
- ``sign_ins=hide``: leaves out successful sign-ins and sign-outs (failures and lockouts stay), unless
  the action filter asks for them.
"""

import datetime

from django.db.models import F, Max, Min, Q

from core import access
from core.errors import ValidationFailed
from core.models import SiteRole

from .models import AuditEvent

FILTERS = ("since", "until", "team", "prompt", "version", "deploy_request", "actor", "action", "sign_ins")
SIGN_INS = ("auth.login", "auth.logout")  # the routine ones; auth.login_failed and auth.locked_out stay


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


def _number(value, field, what):
    if not value.isdigit() or int(value) < 1 or len(value) > 18:
        raise ValidationFailed(f"{field} is not a {what}", field_errors={field: [f"a {what}, e.g. 3"]})
    return str(int(value))


def asks_for_sign_ins(action):
    """Whether an action filter names sign-ins (an explicit ask wins over hiding them)."""
    return bool(action) and any(a.startswith(action) if action.endswith(".") else a == action for a in SIGN_INS)


def clean_filters(params):
    """The filters given (as strings), checked; unknown keys are ignored. ``sign_ins`` is ``hide``
    or ``show`` (showing is no filter, so it is left out)."""
    filters = {name: params.get(name).strip() for name in FILTERS if params.get(name, "").strip()}
    for name in ("since", "until"):
        if name in filters:
            _time(filters[name], name)
    if "deploy_request" in filters:
        filters["deploy_request"] = _number(filters["deploy_request"], "deploy_request", "deploy request id")
    if "version" in filters:
        filters["version"] = _number(filters["version"].removeprefix("v"), "version", "version number")
        if "prompt" not in filters:
            raise ValidationFailed(
                "a version is a prompt's: choose the prompt too",
                field_errors={"version": ["choose the prompt too"], "prompt": ["needed with a version"]},
            )
    sign_ins = filters.pop("sign_ins", "show")
    if sign_ins not in ("hide", "show"):
        raise ValidationFailed(f"sign_ins is '{sign_ins[:20]}'", field_errors={"sign_ins": ["hide or show"]})
    if sign_ins == "hide" and not asks_for_sign_ins(filters.get("action", "")):
        filters["sign_ins"] = "hide"
    return filters


def _about_deploy_request(number):
    """The request's own events, and those its requests recorded on the same prompt."""
    about = Q(target_type="deploy_request", target_id=number)
    pairs = set(AuditEvent.objects.filter(about).exclude(request_id="").values_list("request_id", "prompt"))
    if pairs:
        about |= Q(request_id__in={r for r, _ in pairs}, prompt__in={p for _, p in pairs})
    return about


def _about_version(prompt, number):
    n = int(number)
    return (
        Q(target_type="prompt_version", target_id=f"{prompt}@{n}") | Q(data__version=n)
        | Q(data__to_version=n) | Q(data__from_version=n)
    )


def filter_events(queryset, filters):
    """``since`` is inclusive; ``until`` is exclusive for a time, and includes the whole day for a
    date alone (until 2026-10-31 is all of October)."""
    times = {}
    if "since" in filters:
        times["occurred_at__gte"] = _time(filters["since"], "since")
    if "until" in filters:
        until = _time(filters["until"], "until")
        if len(filters["until"]) == 10:  # YYYY-MM-DD
            until = until + datetime.timedelta(days=1) if until.date() < datetime.date.max else None
        if until is not None:  # None: until the calendar's last day, so no bound at all
            times["occurred_at__lt"] = until
    if times:
        queryset = queryset.filter(**times)
    if "occurred_at__lt" in times:
        queryset = _within_sequences(queryset, times)
    if "team" in filters:
        queryset = queryset.filter(team=filters["team"])
    if "prompt" in filters:
        queryset = queryset.filter(prompt=filters["prompt"])
    if "version" in filters:
        queryset = queryset.filter(_about_version(filters["prompt"], filters["version"]))
    if "deploy_request" in filters:
        queryset = queryset.filter(_about_deploy_request(filters["deploy_request"]))
    if "actor" in filters:
        queryset = queryset.filter(actor_username=filters["actor"])
    if "action" in filters:
        action = filters["action"]
        queryset = (
            queryset.filter(action__startswith=action) if action.endswith(".") else queryset.filter(action=action)
        )
    if filters.get("sign_ins") == "hide":
        queryset = queryset.exclude(action__in=SIGN_INS)
    return queryset


def _within_sequences(queryset, times):
    """The same events, also bounded by the least and the greatest sequence of the time range.

    A page lists events newest sequence first. Given a time range that ends in the past, PostgreSQL
    walks the sequence index back from the newest event until it has a page in range (it assumes
    time and sequence unrelated), so a week a year back read most of the table (190 to 750 ms on a
    million events). The range's own sequences, read through the time index, tell it where to
    start and stop. They are exact bounds, not an estimate: time and sequence need not agree (an
    event's time is taken when it is recorded, its sequence when its change commits, perhaps on
    another host), as the bounds are the least and greatest sequence of the events in the range
    themselves. Skipped when the range reaches past the newest event: the walk from the newest is
    then the quick way, and reading the range would not be."""
    newest = AuditEvent.objects.order_by("-sequence").values_list("occurred_at", flat=True).first()
    if newest is None or times["occurred_at__lt"] > newest:
        return queryset
    # "+ 0": min() and max() of the bare column would be answered by walking the sequence index, the
    # slow way this avoids; of an expression, through the time index over the range alone.
    bounds = AuditEvent.objects.filter(**times).aggregate(low=Min(F("sequence") + 0), high=Max(F("sequence") + 0))
    low, high = (bounds["low"], bounds["high"]) if bounds["low"] is not None else (1, 0)  # none: an empty stretch
    return queryset.filter(sequence__gte=low, sequence__lte=high)


def is_contiguous(actor, filters):
    """An export is a contiguous stretch of the chain when only time bounds it."""
    return reads_all_events(actor) and not (set(filters) - {"since", "until"})
