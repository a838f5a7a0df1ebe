"""Monthly eval budgets per team: set by owners, checked where runs start, overridden for a month.

- ``set_budget`` (team owners, admins) sets or removes a team's monthly ceiling; audited.
- ``check_run_allowed`` is asked by ``evals.services.start_run``, the one place runs start (the
  browser, the API, the CLI, CI and the drift scheduler all go through it): at 100% of the month's
  budget the run is refused with ``budget_exceeded`` unless the month was overridden; at 80% the
  warning is recorded once per team and month (audit event and webhook ``budget.warning``).
- ``override_budget`` (team owners, admins; a person, with a reason) lets runs go on past 100%
  for the current month; audited, once per team and month.
- ``note_spend`` is called as a run finishes, so a warning is sent when the run's own results
  cross 80%, not only when the next run starts.

The check reads the spend of results already written and takes no lock: two runs that start at
once at 99% both start, and the month ends above its budget by what they cost. docs/costs.md says
why that is the trade made.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from audit.transactions import change, lock_rows, retry_transient
from core import access
from core.errors import Conflict, PermissionDenied, ValidationFailed
from registry.services.validation import check_text
from webhooks import events as webhook_events

from . import events
from .costs import month_bounds, spend_between, this_month
from .models import BudgetOverride, BudgetWarning, TeamBudget

log = logging.getLogger(__name__)

WARN_AT = Decimal("0.8")
MAX_BUDGET = Decimal("9999999999.99")


class BudgetExceeded(PermissionDenied):
    """A new run refused: the team spent its whole budget for the month and nobody overrode it."""

    code = "budget_exceeded"


@dataclass(frozen=True)
class BudgetStatus:
    """A team's month against its budget: ``state`` is ``none`` (no budget), ``ok``, ``warning``
    (80% or more), ``exceeded`` (100% or more) or ``overridden`` (100% or more, allowed)."""

    team: object
    month: object
    budget: Decimal | None
    spent: float
    override: BudgetOverride | None

    @property
    def ratio(self):
        return self.spent / float(self.budget) if self.budget else None

    @property
    def percent(self):
        return None if self.ratio is None else round(100 * self.ratio, 1)

    @property
    def bar_width(self):
        """0..1000 for the SVG gauge (full at 100% and beyond)."""
        return 0 if self.ratio is None else round(1000 * min(self.ratio, 1.0), 1)

    @property
    def state(self):
        if self.budget is None:
            return "none"
        if self.spent >= float(self.budget):
            return "overridden" if self.override else "exceeded"
        if self.spent >= float(self.budget * WARN_AT):
            return "warning"
        return "ok"

    @property
    def month_label(self):
        return self.month.strftime("%B %Y")

    def sentence(self):
        if self.budget is None:
            return f"Team {self.team.slug} has no eval budget."
        said = (
            f"Team {self.team.slug} has spent ${self.spent:,.2f} of its ${self.budget:,.2f} eval budget for "
            f"{self.month_label} ({self.percent:g}%)."
        )
        if self.state == "exceeded":
            said += " New runs are refused until next month, unless a team owner overrides the budget."
        elif self.state == "overridden":
            said += f" {self.override.created_by or 'An owner'} allowed runs past it: {self.override.reason}"
        return said


def _month_spend(month):
    return spend_between(*month_bounds(month))


def month_spend(team, month):
    """The team's eval spend in ``month``: one SUM over that month's roll-up rows (an index range)."""
    spent = _month_spend(month).filter(run__prompt__team=team).aggregate(total=Coalesce(Sum("cost_usd"), 0.0))
    return float(spent["total"])


def budget_status(team, month=None):
    """Where ``team`` stands this month (or in ``month``), without a lock: ONE query (the budget with
    the month's spend as a subquery), and a second for the override only at 100% or more."""
    month = month or this_month()
    spend = (
        _month_spend(month).filter(run__prompt__team=OuterRef("team")).order_by()
        .values("run__prompt__team").annotate(total=Sum("cost_usd")).values("total")
    )
    row = (
        TeamBudget.objects.filter(team=team).annotate(spent=Coalesce(Subquery(spend), 0.0))
        .values("monthly_usd", "spent").first()
    )
    if row is None:
        return BudgetStatus(team=team, month=month, budget=None, spent=0.0, override=None)
    budget, spent = row["monthly_usd"], float(row["spent"])
    override = None
    if spent >= float(budget):
        override = BudgetOverride.objects.filter(team=team, month=month).select_related("created_by").first()
    return BudgetStatus(team=team, month=month, budget=budget, spent=spent, override=override)


def statuses(teams, month=None):
    """``budget_status`` of several teams in three queries (the cost page's budget panel)."""
    month = month or this_month()
    teams = list(teams)
    budgets = dict(TeamBudget.objects.filter(team__in=teams).values_list("team_id", "monthly_usd"))
    overrides = {
        o.team_id: o
        for o in BudgetOverride.objects.filter(team__in=teams, month=month).select_related("created_by")
    }
    spent = dict(
        _month_spend(month).filter(run__prompt__team_id__in=list(budgets))
        .values_list("run__prompt__team_id")
        .annotate(total=Sum("cost_usd"))
        .values_list("run__prompt__team_id", "total")
        .order_by()
    ) if budgets else {}
    return [
        BudgetStatus(team=t, month=month, budget=budgets.get(t.pk), spent=float(spent.get(t.pk) or 0.0),
                     override=overrides.get(t.pk))
        for t in teams
    ]


# --- the check where runs start ---------------------------------------------------------------------
def check_run_allowed(team):
    """Called by ``start_run`` inside its change: raise ``BudgetExceeded`` at 100% (unless
    overridden), record the month's warning once at 80%. Returns the status for the caller to show."""
    status = budget_status(team)
    if status.state == "exceeded":
        raise BudgetExceeded(status.sentence())
    if status.state in ("warning", "exceeded", "overridden"):
        _warn_once(status)
    return status


def _warn_once(status):
    """The month's warning row, its audit event and its webhook, once: the unique (team, month)
    row decides, so two runs racing past 80% send one webhook. Inside the caller's change."""
    try:
        with transaction.atomic():  # a savepoint: losing the race leaves the change usable
            warning = BudgetWarning.objects.create(
                team=status.team, month=status.month, budget_usd=status.budget, spent_usd=status.spent
            )
    except IntegrityError:
        return None
    events.budget_warning(status.team, warning)
    webhook_events.budget_warning(
        team=status.team, month=status.month.strftime("%Y-%m"), budget_usd=status.budget, spent_usd=status.spent
    )
    return warning


def note_spend(team):
    """A run of ``team`` finished: send the month's warning if its results crossed 80%. Runs in a
    nested change of the run's finalize; a failure here is logged and never keeps a run open."""
    try:
        with change():
            status = budget_status(team)
            if status.state in ("warning", "exceeded", "overridden"):
                _warn_once(status)
    except Exception:  # noqa: BLE001 - the run still finishes; the next start checks again
        log.exception("budget check of team %s after a run failed", team.slug)


# --- owners' changes ---------------------------------------------------------------------------------
def _amount(value):
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0 or amount > MAX_BUDGET:
        raise ValidationFailed(
            "the budget must be an amount in US dollars above 0", code="invalid_budget",
            field_errors={"monthly_usd": ["an amount above 0, e.g. 250.00 (empty: no budget)"]},
        )
    return amount


@retry_transient
def set_budget(*, actor, team, monthly_usd):
    """Set the team's monthly budget (``None`` or empty removes it). Team owners and admins;
    audited with the amount before and after. Returns the ``TeamBudget`` or None."""
    access.require(actor, "budget.set", team=team)
    amount = _amount(monthly_usd)
    try:
        return _write_budget(actor, team, amount)
    except IntegrityError as exc:  # another first budget of the team committed meanwhile
        raise Conflict(
            f"the budget of team '{team.slug}' changed meanwhile; look again", code="budget_changed"
        ) from exc


def _write_budget(actor, team, amount):
    with change():
        current = lock_rows(TeamBudget.objects).filter(team=team).first()
        before = str(current.monthly_usd) if current else None
        if amount is None:
            if current is not None:
                current.delete()
            budget = None
        elif current is None:
            budget = TeamBudget.objects.create(team=team, monthly_usd=amount, updated_by=actor.user)
        else:
            current.monthly_usd, current.updated_by = amount, actor.user
            current.save(update_fields=["monthly_usd", "updated_by", "updated_at"])
            budget = current
        after = str(amount) if amount is not None else None
        if before != after:
            events.budget_set(actor, team, before=before, after=after)
    return budget


def override_refusal(status):
    """Why the month of ``status`` cannot be overridden: ``(code, sentence)``, or None when it can.
    The one rule the cost page (whether to offer the form) and ``override_budget`` (whether to
    refuse) both ask: the team has a budget, the month is not overridden yet, and its spend has
    reached the warning (80%), where the page starts to offer it. Who may override is
    ``access`` (``budget.override``)."""
    slug = status.team.slug
    if status.budget is None:
        return "no_budget", f"team '{slug}' has no budget to override"
    if status.override is not None:
        return "budget_overridden", f"the budget of team '{slug}' is already overridden for {status.month_label}"
    if status.state == "ok":
        return "budget_not_reached", (
            f"team '{slug}' has spent {status.percent:g}% of its budget for {status.month_label}; an override is "
            f"for a month that reached {int(WARN_AT * 100)}%"
        )
    return None


@retry_transient
def override_budget(*, actor, team, reason):
    """Let the team's runs go on past its budget for the current month: a person who owns the team
    (or an admin), with a written reason, once the month reached 80%; once per team and month,
    audited."""
    access.require(actor, "budget.override", team=team)
    reason = check_text(reason, "reason", max_length=2000)
    refusal = override_refusal(budget_status(team))
    if refusal is not None:
        code, sentence = refusal
        if code == "no_budget":
            raise ValidationFailed(sentence, code=code, field_errors={"reason": ["no budget"]})
        raise Conflict(sentence, code=code)
    month = this_month()
    try:
        with change():
            override = BudgetOverride.objects.create(team=team, month=month, reason=reason, created_by=actor.user)
            events.budget_overridden(actor, override)
    except IntegrityError as exc:  # another override of the month won the race
        raise Conflict(
            f"the budget of team '{team.slug}' is already overridden for {month:%B %Y}", code="budget_overridden"
        ) from exc
    return override
