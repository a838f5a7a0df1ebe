"""The cost page (/costs/): eval spend by team, model or prompt and month, as a table, a
server-drawn SVG bar chart and a CSV download; each team's monthly budget with its 80% warning and
100% refusal, and the forms owners use to set a budget or override it for the month. Thin: the
numbers come from ``evals.costs`` and ``evals.budgets``, every change goes through
``evals.budgets``' services, and who sees which team is ``costs.visible_teams``."""

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from core import access
from core.errors import Conflict, NotFound, ValidationFailed
from core.pages import registry_page

from . import budgets, costs

GROUP_CHOICES = [("team", "Team"), ("model", "Model"), ("prompt", "Prompt")]


class CostFilterForm(forms.Form):
    """The cost page's filters (shape only: ``costs.cost_query`` decides what is valid)."""

    group_by = forms.ChoiceField(label="Group by", choices=GROUP_CHOICES, required=False)
    team = forms.ChoiceField(label="Team", required=False)
    since = forms.CharField(label="From month", required=False, widget=forms.TextInput(attrs={"type": "month"}))
    until = forms.CharField(label="To month", required=False, widget=forms.TextInput(attrs={"type": "month"}))

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All teams you can see")] + [(t.slug, t.name) for t in teams]


class BudgetForm(forms.Form):
    monthly_usd = forms.CharField(label="Monthly budget (USD)", required=False, max_length=20,
                                  widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 250"}))


class OverrideForm(forms.Form):
    reason = forms.CharField(label="Why runs must go on this month", max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}))


def _query(actor, params):
    return costs.cost_query(
        actor, group_by=params.get("group_by", ""), team=params.get("team", ""),
        since=params.get("since", ""), until=params.get("until", ""),
    )


def _budget_rows(actor, teams, *, chosen=None):
    """Each team's month against its budget, with what the actor may do about it: the teams with a
    budget, plus a team without one that the actor may give one when it is the chosen team or one
    of the actor's own (an admin picks any other in the Team filter, so the panel stays short)."""
    rows = []
    own = set(access.teams_of(actor).values_list("pk", flat=True)) if chosen is None else {chosen.pk}
    for status in budgets.statuses(teams):
        if status.budget is None and status.team.pk not in own:
            continue
        may_set = access.may(actor, "budget.set", team=status.team)
        if status.budget is None and not may_set:
            continue
        rows.append({
            "status": status, "may_set": may_set,
            "may_override": budgets.override_refusal(status) is None
            and access.may(actor, "budget.override", team=status.team),
        })
    return rows


@registry_page
def cost_page(request, actor):
    teams = list(costs.visible_teams(actor))
    error = None
    try:
        query = _query(actor, request.GET)
    except ValidationFailed as exc:
        error, query = exc, _query(actor, {})
    # The form shows the range in force (the defaults too), or what was typed when it was refused.
    form = CostFilterForm({**query.as_params(), **request.GET.dict()}, teams=teams)
    rows = costs.spend_report(actor, query)
    labels = [label for label, _ in costs.GROUPS[query.group_by]]
    for row in rows:
        row["cells"] = [row[label] for label in labels]
    totals = costs.totals_by_group(rows, query.group_by)
    shown_teams = [query.team] if query.team else teams
    budget_rows = _budget_rows(actor, shown_teams, chosen=query.team)
    context = {
        "section": "evals",
        "form": form,
        "error": error,
        "query": query,
        "params": query.as_params(),
        "rows": rows,
        "labels": labels,
        "bars": costs.bar_chart(totals),
        "total": sum(cost for _, cost in totals),
        "budget_rows": budget_rows,
        "notices": [r["status"] for r in budget_rows if r["status"].state in ("warning", "exceeded", "overridden")],
        "export_url": reverse("costs:export") + "?" + urlencode(query.as_params()),
        "budget_form": BudgetForm(),
        "override_form": OverrideForm(),
        "filtered": bool(request.GET),
        "may_set_any": query.team is None and access.may(actor, "budget.set", team=None),
    }
    return render(request, "evals/costs.html", context, status=400 if error else 200)


@registry_page
def cost_export(request, actor):
    query = _query(actor, request.GET)
    body = costs.report_csv(costs.spend_report(actor, query), query.group_by)
    name = f"eval-costs-{query.group_by}-{query.since:%Y-%m}-{query.until:%Y-%m}.csv"
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _team(actor, slug):
    team = costs.visible_teams(actor).filter(slug=slug).first()
    if team is None:
        raise NotFound(f"no team '{slug}' (or you cannot see it)", code="team_not_found")
    return team


def _back(team):
    return redirect(reverse("costs:page") + "?" + urlencode({"team": team.slug}))


@registry_page
@require_POST
def budget_save(request, actor, slug):
    team = _team(actor, slug)
    form = BudgetForm(request.POST)
    form.is_valid()
    try:
        budget = budgets.set_budget(actor=actor, team=team, monthly_usd=form.cleaned_data.get("monthly_usd", ""))
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, f"The budget was not saved: {exc.detail}.")
        return _back(team)
    if budget is None:
        messages.success(request, f"Team {team.slug} has no eval budget now.")
    else:
        messages.success(request, f"Team {team.slug}'s eval budget is ${budget.monthly_usd:,.2f} a month.")
    return _back(team)


@registry_page
@require_POST
def budget_override(request, actor, slug):
    team = _team(actor, slug)
    form = OverrideForm(request.POST)
    form.is_valid()
    try:
        override = budgets.override_budget(actor=actor, team=team, reason=form.cleaned_data.get("reason", ""))
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, f"The budget was not overridden: {exc.detail}.")
        return _back(team)
    messages.success(request, f"Runs of team {team.slug} may go on past the budget in {override.month:%B %Y}.")
    return _back(team)


def team_budget_panel(actor, team):
    """The team page's line about its budget this month (registry.panels)."""
    return {"status": budgets.budget_status(team), "may_set": access.may(actor, "budget.set", team=team)}
