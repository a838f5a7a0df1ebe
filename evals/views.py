"""Browser pages of evals: runs, suites and their cases, a run's live progress and results, and
comparing two runs. As thin as the API views: who sees which run, suite or case comes from the
same functions (``selectors``), and every
change goes through ``evals.services``. Domain errors become pages in ``registry_page``.

``run_panel`` and ``pass_rate_chart`` give the registry's version and prompt pages their evals
parts, so those pages need no evals query of their own."""

import json
from collections import defaultdict

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDate
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from core import access
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from core.pages import registry_page
from registry import selectors as registry_selectors
from registry.diffing import word_diff
from registry.models import Team
from registry.permissions import visible_prompts

from . import budgets, compare, drift, runner, selectors, services, suite_fit
from .forms import CaseUploadForm, RunFilterForm, RunStartForm, SuiteForm
from .models import DriftNotice, EvalRun
from .selectors import get_run, visible_runs, visible_suites, with_results_done

RUNS_PER_PAGE = 25
CASES_PER_PAGE = 50
RESULTS_PER_PAGE = 50
COMPARE_CHOICES = 50
COMPARE_PER_PAGE = 20
SCORED = (EvalRun.COMPLETED, EvalRun.COMPLETED_WITH_ERRORS)


# --- reads -----------------------------------------------------------------------------------------
def _may_edit_suite(actor, suite):
    return access.may(actor, "suite.edit", team=suite.team)


def _query_without_page(request):
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# --- parts of the registry's pages -----------------------------------------------------------------
def _run_form(actor, prompt, version, data=None):
    choices = suite_fit.run_choices(actor, prompt, version)
    return RunStartForm(data, choices=choices, default=suite_fit.default_choice(choices))


def run_panel(actor, prompt, version):
    """The version page's Run picker (only for those who may run) and its latest runs."""
    may_run = access.may(actor, "run.start", team=prompt.team)
    form = _run_form(actor, prompt, version) if may_run else None
    recent = list(EvalRun.objects.filter(version=version).select_related("suite").order_by("-created_at", "-id")[:5])
    return {"run_form": form, "recent_runs": recent}


def pass_rate_chart(prompt):
    """Pass rate per version and per day for the prompt's scored runs, from one aggregated query:
    one row per (suite, version, day) with the mean pass rate and the number of runs."""
    rows = list(
        EvalRun.objects.filter(prompt=prompt, status__in=SCORED, pass_rate__isnull=False)
        .annotate(day=TruncDate("finished_at"))
        .values("suite__slug", "version__number", "day")
        .annotate(rate=Avg("pass_rate"), runs=Count("id"))
        .order_by("day", "version__number", "suite__slug")
    )
    per_version = defaultdict(lambda: [0.0, 0])
    per_day = defaultdict(lambda: [0.0, 0])
    for row in rows:
        for bucket in (per_version[row["version__number"]], per_day[(row["suite__slug"], row["day"])]):
            bucket[0] += row["rate"] * row["runs"]
            bucket[1] += row["runs"]
    versions = [
        {"version": number, "pass_rate": round(total / runs, 4), "runs": runs}
        for number, (total, runs) in sorted(per_version.items())
    ]
    days = sorted({day for _, day in per_day})
    suites = sorted({suite for suite, _ in per_day})
    over_time = {
        "days": [day.isoformat() for day in days],
        "suites": [
            {
                "suite": suite,
                "pass_rates": [
                    round(per_day[(suite, day)][0] / per_day[(suite, day)][1], 4) if (suite, day) in per_day else None
                    for day in days
                ],
            }
            for suite in suites
        ],
    }
    rows_by_day = [
        {"day": day, "suite": suite, "pass_rate": total / runs, "runs": runs}
        for (suite, day), (total, runs) in sorted(per_day.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return {"versions": versions, "over_time": over_time, "rows_by_day": rows_by_day} if rows else None


# --- runs ------------------------------------------------------------------------------------------
@registry_page
def run_list(request, actor):
    runs = visible_runs(actor)
    form = RunFilterForm(request.GET or None, suites=[s.slug for s in visible_suites(actor)])
    filters = form.filters() if request.GET else {}
    for field, lookup in (("prompt", "prompt__slug"), ("suite", "suite__slug"), ("status", "status")):
        if filters.get(field):
            runs = runs.filter(**{lookup: filters[field]})
    # ``done`` counted by a subquery per run shown; the page count leaves it out (unused annotation).
    runs = with_results_done(runs).order_by("-created_at", "-id")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "section": "evals",
        "form": form,
        "page": page,
        "filtered": any(filters.values()),
        "query": _query_without_page(request),
    }
    template = "evals/_run_results.html" if request.headers.get("HX-Request") else "evals/run_list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@registry_page
@require_POST
def run_start(request, actor, slug, number):
    prompt = registry_selectors.get_visible_prompt(actor=actor, slug=slug)
    version = registry_selectors.get_version(prompt=prompt, number=number)
    form = RunStartForm(request.POST, choices=suite_fit.run_choices(actor, prompt, version))
    if not form.is_valid():
        messages.error(request, "Choose a suite to run.")
        return redirect("registry:version-detail", slug=prompt.slug, number=version.number)
    suite = selectors.get_visible_suite(actor=actor, slug=form.cleaned_data["suite"])
    try:
        run = services.start_run(
            actor=actor,
            prompt=prompt,
            version=version,
            suite=suite,
            trigger=form.cleaned_data["trigger"] or EvalRun.MANUAL,
        )
    except ValidationFailed as exc:
        return _run_refused(request, actor, prompt, version, suite, exc)
    except budgets.BudgetExceeded as exc:
        messages.error(request, f"The run was not started ({exc.code}): {exc.detail}")
        return redirect("registry:version-detail", slug=prompt.slug, number=version.number)
    messages.success(request, f"Run {run.pk} queued: {run.total} case{'s' if run.total != 1 else ''} of {suite.slug}.")
    if run.budget.state in ("warning", "overridden"):
        messages.warning(request, f"Budget: {run.budget.sentence()}")
    return redirect("evals:run-detail", run_id=run.pk)


def _run_refused(request, actor, prompt, version, suite, exc):
    """The refusal as a page (400): what the service said, the first few offending cases as a list,
    and the picker again to choose another suite."""
    fit = suite_fit.fit_of(suite, version) if exc.code == "case_variables_mismatch" else None
    problems = [] if fit else [(key, text) for key, texts in exc.field_errors.items() for text in texts]
    context = {
        "section": "evals",
        "prompt": prompt,
        "version": version,
        "suite": suite,
        "error": exc,
        "fit": fit,
        "problems": problems[: suite_fit.FIRST_FEW],
        "more_problems": max(0, len(problems) - suite_fit.FIRST_FEW),
        "run_form": _run_form(actor, prompt, version),
    }
    return render(request, "evals/run_refused.html", context, status=exc.status)


def _run_context(actor, run):
    summary = run.summary or {}
    return {
        "run": run,
        "progress": runner.progress(run),
        "summary": summary,
        "assertion_rates": sorted((summary.get("assertions") or {}).items()),
        "can_cancel": services.may_cancel(actor, run),
    }


@registry_page
def run_detail(request, actor, run_id):
    run = get_run(actor, run_id)
    passed = request.GET.get("passed")
    results = run.results.select_related("case").order_by("position")
    if passed in ("true", "false"):
        results = results.filter(passed=passed == "true")
    counts = run.results.aggregate(
        every=Count("id"), passes=Count("id", filter=Q(passed=True)), failures=Count("id", filter=Q(passed=False))
    )
    others = visible_runs(actor).filter(suite=run.suite).exclude(pk=run.pk).order_by("-created_at", "-id")
    context = {
        "section": "evals",
        **_run_context(actor, run),
        "passed": passed if passed in ("true", "false") else "",
        "results": Paginator(results, RESULTS_PER_PAGE).get_page(request.GET.get("page")),
        "counts": counts,
        "query": _query_without_page(request),
        # the newest other scored run of this prompt on another version, else any other of the suite
        "compare_with": (
            others.filter(status__in=SCORED, prompt=run.prompt).exclude(content_hash=run.content_hash).first()
            or others.filter(status__in=SCORED).first()
        ),
    }
    return render(request, "evals/run_detail.html", context)


@registry_page
def run_progress(request, actor, run_id):
    """The htmx poll of a run page: the live status while it runs; once it has finished, the whole
    page reloads (``HX-Refresh``) to show the results."""
    run = get_run(actor, run_id)
    if run.finished and request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "evals/_run_live.html", {"section": "evals", **_run_context(actor, run)})


@registry_page
@require_POST
def run_cancel(request, actor, run_id):
    run = get_run(actor, run_id)
    run = services.cancel_run(actor=actor, run=run)
    if run.finished:
        messages.info(request, f"Run {run.pk} cancelled.")
    else:
        messages.info(request, f"Cancelling run {run.pk}: workers stop before their next call.")
    return redirect("evals:run-detail", run_id=run.pk)


@registry_page
def run_compare(request, actor, run_id):
    run = get_run(actor, run_id)
    others = list(visible_runs(actor).filter(suite=run.suite).exclude(pk=run.pk).order_by("-created_at", "-id"))
    against = request.GET.get("against", "")
    show = request.GET.get("show") or "changed"
    if show not in compare.FILTERS:
        show = "changed"
    context = {
        "section": "evals", "run": run, "others": others[:COMPARE_CHOICES], "against": against, "diff": None,
        "show": show,
    }
    if against:
        if not against.isdigit():
            raise ValidationFailed("against must be a run id", field_errors={"against": ["another run's id"]})
        base = get_run(actor, int(against))
        diff = compare.compare_runs(run, base)
        counts = diff["counts"]
        shown = Paginator(compare.filtered(diff["cases"], show), COMPARE_PER_PAGE).get_page(request.GET.get("page"))
        pairs = compare.outputs_of(run, base, [c["case"] for c in shown.object_list])
        rows = []
        for entry in shown.object_list:
            pair = pairs[entry["case"]]
            now, before = pair.get("now"), pair.get("before")
            words = word_diff(before.output, now.output) if now and before and entry["output_changed"] else None
            rows.append({**entry, "now": now, "before": before, "words": words})
        filter_counts = {
            "changed": counts["changed_output"], "regressions": counts["regression"],
            "improvements": counts["improvement"], "all": counts["cases"],
        }
        context.update(
            base=base, diff=diff, counts=counts, totals=diff["totals"], rows=rows, page=shown,
            filters=[(key, label, filter_counts[key]) for key, label in compare.FILTERS.items()],
            query=_query_without_page(request),
        )
    return render(request, "evals/run_compare.html", context)


# --- suites ----------------------------------------------------------------------------------------
def _authoring_teams(actor):
    teams = Team.objects.order_by("name")
    if actor.is_admin:
        return list(teams)
    authoring = teams.filter(pk__in=access.teams_of(actor, access.AUTHOR))
    return [team for team in authoring if access.may(actor, "suite.edit", team=team)]


@registry_page
def suite_list(request, actor):
    suites = visible_suites(actor)
    may_create = bool(_authoring_teams(actor)) or access.may(actor, "suite.edit")
    context = {"section": "evals", "suites": list(suites), "may_create": may_create}
    return render(request, "evals/suite_list.html", context)


@registry_page
@require_http_methods(["GET", "POST"])
def suite_new(request, actor):
    teams = _authoring_teams(actor)
    if not teams and not access.may(actor, "suite.edit"):
        raise PermissionDenied(
            "a new suite needs the author role in a team (shared suites: admins)", code="role_too_low"
        )
    form = SuiteForm(request.POST or None, teams=teams, may_site_wide=actor.is_admin)
    if request.method == "POST" and form.is_valid():
        try:
            suite = services.create_suite(
                actor=actor,
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                team=form.chosen_team(),
                description=form.cleaned_data["description"],
            )
        except (ValidationFailed, Conflict) as exc:
            form.add_domain_errors(exc)
        else:
            messages.success(request, f"Suite {suite.slug} created. Upload its cases next.")
            return redirect("evals:suite-detail", slug=suite.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "evals/suite_new.html", {"section": "evals", "form": form}, status=status)


def _assertion_text(assertion):
    """An assertion's arguments on one line: ``value="Ada"``, ``pattern=...``."""
    args = {
        k: v
        for k, v in assertion.items()
        if k not in ("type", "name") and v not in (None, False) and not (k == "weight" and v == 1)
    }
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())


def _suite_page(request, actor, suite, upload_form, upload_errors=(), status=200):
    cases = Paginator(suite.cases.order_by("position"), CASES_PER_PAGE).get_page(request.GET.get("page"))
    for case in cases.object_list:
        case.vars_json = json.dumps(case.vars, ensure_ascii=False, indent=1)
        case.assertion_rows = [(a, _assertion_text(a)) for a in case.assertions]
    export = reverse("evals-api:case-export", kwargs={"slug": suite.slug})
    context = {
        "section": "evals",
        "suite": suite,
        "cases": cases,
        "may_edit": _may_edit_suite(actor, suite),
        "upload_form": upload_form,
        "upload_errors": upload_errors,
        "export_url": export,
        "runs": list(visible_runs(actor).filter(suite=suite).order_by("-created_at", "-id")[:10]),
    }
    return render(request, "evals/suite_detail.html", context, status=status)


@registry_page
def suite_detail(request, actor, slug):
    suite = selectors.get_visible_suite(actor=actor, slug=slug)
    return _suite_page(request, actor, suite, CaseUploadForm())


@registry_page
@require_POST
def suite_upload(request, actor, slug):
    suite = selectors.get_visible_suite(actor=actor, slug=slug)
    access.require(actor, "suite.edit", team=suite.team)  # before reading the upload
    form = CaseUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _suite_page(request, actor, suite, form, status=400)
    try:
        made = services.add_cases(
            actor=actor, suite=suite, cases=form.cleaned_data["file"], replace=form.cleaned_data["replace"]
        )
    except (ValidationFailed, Conflict) as exc:
        return _suite_page(request, actor, suite, form, upload_errors=form.case_errors(exc), status=exc.status)
    verb = "now holds" if form.cleaned_data["replace"] else "gained"
    messages.success(request, f"{suite.slug} {verb} {len(made)} case{'s' if len(made) != 1 else ''}.")
    return redirect("evals:suite-detail", slug=suite.slug)


def drift_panel(actor, prompt):
    """The prompt page's drift notices not yet acknowledged, and whether the actor may acknowledge."""
    notices = list(
        DriftNotice.objects.filter(prompt=prompt, acknowledged_at__isnull=True).select_related(
            "suite", "run__version"  # the panel names each run's version
        )[:10]
    )
    return {"notices": notices, "can_ack": access.may(actor, "drift.acknowledge", team=prompt.team)}


@registry_page
@require_POST
def notice_acknowledge(request, actor, notice_id):
    notice = DriftNotice.objects.filter(pk=notice_id, prompt__in=visible_prompts(actor)).select_related(
        "prompt__team", "suite"
    ).first()
    if notice is None:
        raise NotFound(f"no drift notice {notice_id} (or it is not visible to you)")
    drift.acknowledge_notice(actor=actor, notice=notice)
    messages.success(request, "Drift notice acknowledged.")
    return redirect("registry:prompt-detail", slug=notice.prompt.slug)

