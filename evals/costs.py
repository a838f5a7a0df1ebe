"""Eval spend: what runs cost, per team, model or prompt and per calendar month (``TIME_ZONE``).

Spend is the sum of ``EvalResult.cost_usd`` (every result of every run, whatever became of the
run), attributed to the month its result was written. It is read from the roll-up ``RunSpend``
(a run's cost per quarter hour, which the database keeps as results are written: see its model),
so a report sums thousands of roll-up rows, not every result; ``spend_report`` is one GROUP BY
query and nothing here loops over results in Python. Who sees which team's spend is the
visibility of prompts: members see their teams, admins, compliance and risk see every team.
"""

import csv
import datetime
import io
import re
from dataclasses import dataclass

from django.db.models import Count, F, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from audit.spreadsheet import safe_cell
from core import access
from core.errors import NotFound, ValidationFailed
from registry.models import Team

from .models import RunSpend

GROUPS = {  # group_by -> the columns that name a group, as (label, ORM path)
    "team": (("team", "run__prompt__team__slug"),),
    "model": (("provider", "run__llm_model__provider"), ("model", "run__llm_model__model_id")),
    "prompt": (("prompt", "run__prompt__slug"), ("team", "run__prompt__team__slug")),
}
DEFAULT_MONTHS = 6  # the range shown when none is asked for: this month and the five before
MAX_MONTHS = 36
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# --- months ----------------------------------------------------------------------------------------
def this_month(now=None):
    """The first day of the current month in ``TIME_ZONE``."""
    return timezone.localtime(now or timezone.now()).date().replace(day=1)


def add_months(month, n):
    index = month.year * 12 + month.month - 1 + n
    return datetime.date(index // 12, index % 12 + 1, 1)


def month_bounds(month):
    """``[start, end)`` of a month as aware datetimes in ``TIME_ZONE``."""
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(month, datetime.time.min)
    end = datetime.datetime.combine(add_months(month, 1), datetime.time.min)
    return timezone.make_aware(start, tz), timezone.make_aware(end, tz)


def parse_month(value, field):
    """``YYYY-MM`` as the month's first day; a clear 400 naming ``field`` otherwise."""
    match = _MONTH.match(value or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise ValidationFailed(
            f"{field} must be a month as YYYY-MM", code="invalid_month", field_errors={field: ["a month, e.g. 2026-12"]}
        )
    return datetime.date(int(match.group(1)), int(match.group(2)), 1)


@dataclass(frozen=True)
class CostQuery:
    """A checked request for spend: grouping, an optional team, and a month range (inclusive)."""

    group_by: str
    team: Team | None
    since: datetime.date
    until: datetime.date

    @property
    def months(self):
        return [add_months(self.since, i) for i in range((self.until.year - self.since.year) * 12
                                                          + self.until.month - self.since.month + 1)]

    def as_params(self):
        return {
            "group_by": self.group_by,
            "team": self.team.slug if self.team else "",
            "since": self.since.strftime("%Y-%m"),
            "until": self.until.strftime("%Y-%m"),
        }


def visible_teams(actor):
    """The teams whose spend the actor may see: their own (active memberships), or every team for
    admins, compliance and risk."""
    access.require(actor, "read")
    teams = Team.objects.order_by("name")
    return teams if actor.reads_everything else teams.filter(pk__in=access.teams_of(actor))


def cost_query(actor, *, group_by="", team="", since="", until=""):
    """Check what a page or the API asked for: an unknown grouping or a bad month is a 400 naming
    the field, a team the actor cannot see a 404 (as for its prompts)."""
    group_by = group_by or "team"
    if group_by not in GROUPS:
        raise ValidationFailed(
            f"group_by must be one of {', '.join(GROUPS)}", code="invalid_group",
            field_errors={"group_by": [f"one of {', '.join(GROUPS)}"]},
        )
    chosen = None
    if team:
        chosen = visible_teams(actor).filter(slug=team).first()
        if chosen is None:
            raise NotFound(f"no team '{team[:64]}' (or you cannot see it)", code="team_not_found")
    else:
        access.require(actor, "read")
    last = parse_month(until, "until") if until else this_month()
    first = parse_month(since, "since") if since else add_months(last, 1 - DEFAULT_MONTHS)
    if first > last:
        raise ValidationFailed(
            "since is after until", code="invalid_month", field_errors={"since": ["not after until"]}
        )
    if (last.year - first.year) * 12 + last.month - first.month >= MAX_MONTHS:
        raise ValidationFailed(
            f"at most {MAX_MONTHS} months at a time", code="range_too_long",
            field_errors={"since": [f"within {MAX_MONTHS} months of until"]},
        )
    return CostQuery(group_by=group_by, team=chosen, since=first, until=last)


# --- the report ------------------------------------------------------------------------------------
def spend_between(start, end):
    """The roll-up rows of spend incurred in ``[start, end)`` (bounds on quarter hours, as every
    month's are): the one place spend is read from, here and in ``evals.budgets``."""
    return RunSpend.objects.filter(bucket__gte=start, bucket__lt=end, results__gt=0)


def _spend(actor, query):
    start, _ = month_bounds(query.since)
    _, end = month_bounds(query.until)
    spend = spend_between(start, end)
    if query.team is not None:
        return spend.filter(run__prompt__team=query.team)
    if not actor.reads_everything:
        spend = spend.filter(run__prompt__team__in=access.teams_of(actor))
    return spend


def spend_report(actor, query):
    """Rows of ``{<group columns>, month: "YYYY-MM", cost_usd, runs, results}`` by group and month
    (newest month first, then the dearest group), from one GROUP BY query."""
    columns = GROUPS[query.group_by]
    names = {label: F(path) for label, path in columns}
    rows = (
        _spend(actor, query)
        .annotate(month=TruncMonth("bucket"), **names)
        .values("month", *names)
        .annotate(cost_usd=Coalesce(Sum("cost_usd"), 0.0), runs=Count("run", distinct=True), results=Sum("results"))
        .order_by("-month", "-cost_usd", *names)
    )
    return [
        {
            **{label: row[label] for label in names},
            "month": timezone.localtime(row["month"]).strftime("%Y-%m")
            if isinstance(row["month"], datetime.datetime) else row["month"].strftime("%Y-%m"),
            "cost_usd": round(row["cost_usd"], 6),
            "runs": row["runs"],
            "results": row["results"],
        }
        for row in rows
    ]


def group_label(row, group_by):
    if group_by == "model":
        return f"{row['provider']}:{row['model']}"
    if group_by == "prompt":
        return f"{row['prompt']} ({row['team']})"
    return row["team"]


def totals_by_group(rows, group_by):
    """The range's total per group, dearest first (a sum over the already aggregated rows)."""
    totals = {}
    for row in rows:
        label = group_label(row, group_by)
        totals[label] = totals.get(label, 0.0) + row["cost_usd"]
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def bar_chart(totals, limit=20):
    """Geometry for the server-drawn SVG bars: each bar's label, amount and width in 0..1000
    (the SVG's viewBox), the dearest group the full width. Groups past ``limit`` are summed as one."""
    shown = list(totals[:limit])
    if len(totals) > limit:
        shown.append((f"{len(totals) - limit} more", sum(cost for _, cost in totals[limit:])))
    top = max((cost for _, cost in shown), default=0.0)
    return [
        {"label": label, "cost_usd": cost, "width": round(1000 * cost / top, 1) if top else 0.0}
        for label, cost in shown
    ]


def report_csv(rows, group_by):
    """The report as CSV, every cell neutralised against spreadsheet formulas (audit.spreadsheet)."""
    labels = [label for label, _ in GROUPS[group_by]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*labels, "month", "cost_usd", "runs", "results"])
    for row in rows:
        writer.writerow(
            [safe_cell(row[label]) for label in labels]
            + [row["month"], f"{row['cost_usd']:.6f}", row["runs"], row["results"]]
        )
    return out.getvalue()
