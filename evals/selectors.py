"""Who may see which suites and runs: one definition for the API and the browser."""

from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from core import access
from core.errors import NotFound
from registry.permissions import visible_prompts

from .models import EvalResult, EvalRun, Suite


def visible_suites(actor):
    """Shared suites and those of the actor's teams (every suite for readers-of-all), with their
    case counts."""
    access.require(actor, "read")
    suites = Suite.objects.select_related("team").annotate(case_count=Count("cases", distinct=True))
    if not actor.reads_everything:
        suites = suites.filter(Q(team__isnull=True) | Q(team__in=access.teams_of(actor)))
    return suites.order_by(F("team__name").asc(nulls_last=True), "slug")


def get_visible_suite(*, actor, slug):
    suite = visible_suites(actor).filter(slug=slug).first()
    if suite is None:
        raise NotFound(f"no suite '{slug}' (or you cannot see it)", code="suite_not_found")
    return suite


def visible_runs(actor):
    """Runs of the prompts the actor can see."""
    access.require(actor, "read")
    return EvalRun.objects.filter(prompt__in=visible_prompts(actor)).select_related(
        "prompt", "version", "suite", "created_by"
    )


def get_run(actor, run_id):
    run = visible_runs(actor).filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no eval run {run_id} (or you cannot see it)", code="run_not_found")
    return run


def with_results_done(runs):
    """``runs`` with ``done``, each run's results so far (what ``runner.progress`` shows of a run
    not finished), counted by a subquery per run listed rather than a join over every result."""
    done = EvalResult.objects.filter(run=OuterRef("pk")).order_by().values("run").annotate(n=Count("pk")).values("n")
    return runs.annotate(done=Coalesce(Subquery(done), 0))
