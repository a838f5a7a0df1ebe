"""Browser pages of the audit trail: the log with its filters, exports and the chain's state, and a
prompt's History tab. Who sees which events and what a filter means come from
``audit.selectors``, the same as the API; exports go through ``audit.export.start_export``."""

import json
from dataclasses import dataclass

from django.contrib import messages
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import access, vocabulary
from core.errors import ValidationFailed
from core.models import Team
from core.pages import registry_page

from . import keyring
from .checks import verify_database
from .export import start_export
from .forms import AuditFilterForm, action_label
from .models import AuditEvent, ChainVerification
from .selectors import FILTERS, clean_filters, filter_events, is_contiguous, reads_all_events, visible_events

PAGE_SIZE = 50
EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


# --- paging ------------------------------------------------------------------------------------------
@dataclass
class EventPage:
    """One page of events, newest first, keyed on ``sequence`` so no page needs a COUNT and new
    events arriving while someone reads never shift a row onto the next page."""

    events: list
    newer: int | None  # ?after= for the page of newer events
    older: int | None  # ?before= for the page of older events
    is_newest: bool


def _sequence(value):
    return int(value) if value and value.isdigit() else None


def event_page(queryset, params, size=PAGE_SIZE):
    before, after = _sequence(params.get("before")), _sequence(params.get("after"))
    rows = []
    if after is not None:
        rows = list(queryset.filter(sequence__gt=after).order_by("sequence")[: size + 1])
        # Fewer than a page newer than ``after``: that is the newest page, shown in full.
        rows = rows[:size][::-1] if len(rows) > size else []
    if not rows:
        newest = queryset if before is None or after is not None else queryset.filter(sequence__lt=before)
        rows = list(newest.order_by("-sequence")[:size])
    if not rows:
        return EventPage([], None, None, True)
    has_newer = queryset.filter(sequence__gt=rows[0].sequence).exists()
    has_older = queryset.filter(sequence__lt=rows[-1].sequence).exists()
    return EventPage(
        rows,
        newer=rows[0].sequence if has_newer else None,
        older=rows[-1].sequence if has_older else None,
        is_newest=not has_newer,
    )


def _query(params, *, keep=FILTERS):
    query = params.copy()
    for name in list(query):
        if name not in keep:
            query.pop(name)
    return query.urlencode()


# --- what an event says ------------------------------------------------------------------------------
def _v(number):
    return f"v{number}" if number is not None else "nothing"


def _change(key, change):
    return f"{key.replace('_', ' ')} {change.get('before')!s} → {change.get('after')!s}"


def _deployment(data):
    env = data.get("environment", "?")
    before, after = data.get("from_version"), data.get("to_version")
    parts = []
    if before != after:
        if before is None:
            parts.append(f"{_v(after)} deployed to {env}")
        elif after is None:
            parts.append(f"{_v(before)} removed from {env}")
        else:
            parts.append(f"{_v(before)} → {_v(after)} in {env}")
    canary = data.get("canary") or {}
    old, new = canary.get("before") or {}, canary.get("after") or {}
    if old != new:
        if new.get("version") is None:
            parts.append(f"canary {_v(old.get('version'))} ended in {env}")
        else:
            parts.append(f"canary {_v(new.get('version'))} at {new.get('percent')}% in {env}")
    return "; ".join(parts) or f"unchanged in {env}"


def _kill_switch(data):
    env = data.get("environment", "?")
    disabled = (data.get("disabled") or {}).get("after")
    if disabled:
        reason = data.get("reason")
        return f"disabled in {env}" + (f": {reason}" if reason else "")
    return f"re-enabled in {env}"


def _role(data):
    role = data.get("role") or {}
    return role.get("before"), role.get("after")


SUMMARIES = {
    "auth.login_failed": lambda d: f"as {d.get('username', '?')}",
    "token.issued": lambda d: f"{d.get('prefix')} for {d.get('for_user')}: {', '.join(d.get('scopes') or [])}",
    "token.revoked": lambda d: f"{d.get('prefix')} of {d.get('for_user')}",
    "team.created": lambda d: d.get("name", ""),
    "membership.added": lambda d: f"{d.get('username')} as {_role(d)[1]}",
    "membership.changed": lambda d: f"{d.get('username')}: role {_role(d)[0]} → {_role(d)[1]}",
    "membership.removed": lambda d: f"{d.get('username')} (was {_role(d)[0]})",
    "site_role.granted": lambda d: f"{d.get('role')} to {d.get('username')}",
    "site_role.revoked": lambda d: f"{d.get('role')} from {d.get('username')}",
    "llm_model.registered": lambda d: f"{d.get('provider')}:{d.get('model_id')} ({d.get('status')})",
    "llm_model.updated": lambda d: f"{d.get('provider')}:{d.get('model_id')}: "
    + "; ".join(_change(k, c) for k, c in (d.get("changes") or {}).items()),
    "prompt.created": lambda d: f"tier {d.get('tier')}, owner {d.get('owner')}",
    "prompt.updated": lambda d: "; ".join(_change(k, c) for k, c in (d.get("changes") or {}).items()),
    "version.created": lambda d: f"v{d.get('number')}"
    + (f" from v{d['parent']}" if d.get("parent") else "")
    + (f": {d['message']}" if d.get("message") else ""),
    "deployment.changed": _deployment,
    "kill_switch.changed": _kill_switch,
    "audit.key_rotated": lambda d: f"key {d.get('old_key_id')} retired, {d.get('new_key_id')} signs from now on",
    "audit.exported": lambda d: (d.get("format") or "").upper()
    + "".join(f", {k}={v}" for k, v in (d.get("filters") or {}).items()),
}


def summarize(event):
    """A line a person can read at a glance; the full JSON is one click away."""
    data = event.data or {}
    try:
        text = SUMMARIES[event.action](data) if event.action in SUMMARIES else ""
    except (AttributeError, KeyError, TypeError):  # an older payload shape: fall back to the keys
        text = ""
    if not text and data:
        text = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in data.items())
    return text if len(text) <= 160 else text[:159] + "…"


@dataclass
class EventRow:
    event: AuditEvent
    label: str
    summary: str
    target: str
    details: str


def rows_of(events):
    return [
        EventRow(
            event=e,
            label=action_label(e.action),
            summary=summarize(e),
            target=e.target_type.replace("_", " "),
            details=json.dumps(e.as_chain_dict(), indent=2, ensure_ascii=False),
        )
        for e in events
    ]


# --- the chain's state -------------------------------------------------------------------------------
def chain_state():
    """The latest stored verification, the checkpoint it covered, and how far the chain has grown
    since (events after it are not covered yet)."""
    latest = ChainVerification.objects.order_by("-verified_at", "-id").first()
    if latest is None:
        return None
    checkpoint = None
    if latest.ok and latest.last_checkpoint_sequence is not None:
        checkpoint = {"sequence": latest.last_checkpoint_sequence, "created_at": latest.last_checkpoint_at}
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    problem = latest.problem or latest.summary
    if latest.problem_sequence is not None:  # the heading already names the event
        problem = problem.removeprefix(f"event {latest.problem_sequence}: ")
    return {
        "result": latest,
        "problem": problem,
        "checkpoint": checkpoint,
        "unverified": max(0, (head or 0) - (latest.last_sequence or 0)),
    }


def signing_keys(*, show_problems):
    """The keys an auditor copies: the current one and the retired ones, and the verify command
    trusting all of them. What is wrong with the retired list (it names server paths) only for
    those who may verify the chain."""
    ring = keyring.load()
    command = " ".join(f"--public-key {key.public_b64}" for key in (ring.current, *ring.retired))
    return {
        "public_key": ring.current.public_b64,
        "signing_key": ring.current,
        "retired_keys": ring.retired,
        "verify_keys": command,
        "key_problems": ring.problems if show_problems else [],
    }


# --- pages -------------------------------------------------------------------------------------------
def _teams_for(actor):
    teams = Team.objects.order_by("name")
    return teams if reads_all_events(actor) else teams.filter(pk__in=access.teams_of(actor))


def describe(filters, *, reads_all):
    """The filters in words, as the export panel states them: what an export will hold."""
    words = []
    since, until = filters.get("since"), filters.get("until")
    if since and until:
        words.append(f"from {since} until {until} (UTC)")
    elif since or until:
        words.append(f"from {since} on (UTC)" if since else f"until {until} (UTC)")
    if "team" in filters:
        words.append(f"of team {filters['team']}")
    if "version" in filters:
        words.append(f"naming v{filters['version']} of prompt {filters['prompt']}")
    elif "prompt" in filters:
        words.append(f"about prompt {filters['prompt']}")
    if "deploy_request" in filters:
        words.append(f"about deploy request #{filters['deploy_request']}, with what its requests recorded "
                     "(the deploy's pointer move and gate check)")
    if "actor" in filters:
        words.append(f"by {filters['actor']}")
    action = filters.get("action")
    if action:
        if action.endswith("."):
            words.append(f"of kind “{vocabulary.GROUPS.get(action, action + '*')}”")
        else:
            words.append(f"of action “{action_label(action)}” ({action})")
    if filters.get("sign_ins") == "hide":
        words.append("without successful sign-ins and sign-outs")
    if not reads_all:
        words.append("of your teams only")
    return words


def page_filters(params):
    """The page's filters: sign-ins are hidden unless the form says to show them (the API and the
    export show everything unless asked), so one's own sign-ins do not bury the changes."""
    if "sign_ins" in params:
        return params
    params = params.copy()
    params["sign_ins"] = "hide"
    return params


def _page_query(filters):
    """The query of this view, for the page's own links: the filters as cleaned, with the sign-in
    choice spelled out (its default differs between the page and the export)."""
    query = QueryDict(mutable=True)
    for name in FILTERS:
        if name in filters:
            query[name] = filters[name]
    query["sign_ins"] = filters.get("sign_ins", "show")
    return query.urlencode()


EXPORT_COUNT_CAP = 10_000


@registry_page
def event_log(request, actor):
    params = page_filters(request.GET)
    form = AuditFilterForm(params, teams=_teams_for(actor))
    try:
        filters = clean_filters(params)
    except ValidationFailed as exc:
        form.show_errors(exc)
        filters, page, count = None, None, None
    else:
        events = filter_events(visible_events(actor), filters)
        page = event_page(events, request.GET)
        # Counted up to a cap: past it the panel says "more than", and a log of a million events
        # does not pay for counting every one of them on each page view.
        count = events.order_by()[:EXPORT_COUNT_CAP + 1].count()
    reads_all = reads_all_events(actor)
    context = {
        "section": "audit",
        "form": form,
        "filters": filters,
        "filtered": bool(filters and set(filters) - {"sign_ins"}),
        "hiding_sign_ins": params.get("sign_ins") == "hide",
        "page": page,
        "count": count,
        "count_cap": f"{EXPORT_COUNT_CAP:,}" if count is not None and count > EXPORT_COUNT_CAP else "",
        "described": describe(filters, reads_all=reads_all) if filters is not None else [],
        "contiguous": filters is not None and is_contiguous(actor, filters),
        "export_query": _page_query(filters) if filters is not None else "",
        "show_sign_ins_query": _page_query({k: v for k, v in (filters or {}).items() if k != "sign_ins"}),
        "rows": rows_of(page.events) if page else [],
        "query": _page_query(filters) if filters is not None else _query(request.GET),
        "may_review_access": access.may(actor, "access_review.read"),
        "reads_all": reads_all,
        "may_verify": access.may(actor, "audit.verify"),
        "chain": chain_state(),
        **signing_keys(show_problems=access.may(actor, "audit.verify")),
    }
    return render(request, "audit/event_log.html", context)


@registry_page
def export(request, actor):
    """The export the API serves, for the log's buttons: same filters, same event recorded."""
    fmt = request.GET.get("format", "jsonl")
    if fmt not in EXPORT_TYPES:
        raise ValidationFailed(f"unknown export format '{fmt}'", field_errors={"format": ["jsonl or csv"]})
    body = start_export(actor=actor, format=fmt, filters=clean_filters(request.GET))
    response = StreamingHttpResponse(body, content_type=EXPORT_TYPES[fmt])
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="promptledger-audit-{stamp}.{fmt}"'
    return response


@registry_page
@require_POST
def verify_now(request, actor):
    access.require(actor, "audit.verify")
    report = verify_database()
    if report.ok:
        messages.success(request, f"The audit chain verified: {report.summary()}")
    else:
        messages.error(request, f"The audit chain did not verify: {report.summary()}")
    # Back to the same filtered view; only known filter names survive, so this is no open redirect.
    query = _query(QueryDict(request.POST.get("query", "")))
    return redirect(reverse("audit:log") + (f"?{query}" if query else ""))

