"""Read queries of the register pages, each a fixed number of queries however many models,
prompts or runs there are: the register list with prompts by tier and eval coverage, one model's
page (linked suites with their latest pass rates, reviews, where it is live) and the live prompts a
restriction or retirement would touch."""

from collections import defaultdict

from django.core.paginator import Paginator
from django.db.models import Count, Exists, Max, OuterRef, Q

from approvals.policy import policies as tier_policies
from core.errors import NotFound
from core.tiers import TIERS
from evals.models import EvalRun
from registry.models import Deployment, LLMModel, PromptVersion, SiteRole
from registry.permissions import visible_prompts

from . import policy
from .models import ModelReview

FINISHED = ("completed", "completed_with_errors")


def _on_models(model_ids):
    """Pointers whose version or canary is on one of ``model_ids``: EXISTS with a primary-key
    lookup per pointer, where an OR across two joins would read every version twice."""
    on_model = PromptVersion.objects.filter(
        Q(pk=OuterRef("version_id")) | Q(pk=OuterRef("canary_version_id")), llm_model_id__in=model_ids
    )
    return Exists(on_model)


def _live_pointers(model_ids, actor=None):
    """Pointers serving a version (or canary) on one of ``model_ids``, visible to ``actor`` (None:
    all of them), with the prompt, team, environment and versions loaded."""
    qs = Deployment.objects.filter(_on_models(model_ids)).select_related(
        "prompt__team", "prompt__owner", "environment", "version", "canary_version"
    )
    if actor is not None:
        qs = qs.filter(prompt__in=visible_prompts(actor))
    return qs.order_by("prompt__tier", "prompt__slug", "environment__position")


def live_uses(entry, actor=None):
    """``[{prompt, tier, team, environment, version, canary, disabled}]``: where ``entry`` is live."""
    return _uses(entry, _live_pointers([entry.pk], actor))


def live_uses_page(entry, actor, number, size=100):
    """One page of ``live_uses`` (a model can carry thousands of prompts); ``.paginator.count`` is
    how many there are in all."""
    pointers = _live_pointers([entry.pk], actor)
    # The page's ids first, sorted on the narrow rows; then only those pointers with their versions.
    page = Paginator(pointers.values_list("pk", flat=True), size).get_page(number)
    ids = list(page.object_list)
    loaded = {pointer.pk: pointer for pointer in pointers.filter(pk__in=ids)}
    page.object_list = _uses(entry, [loaded[pk] for pk in ids])
    return page


def _uses(entry, pointers):
    rows = []
    for pointer in pointers:
        on_main = pointer.version is not None and pointer.version.llm_model_id == entry.pk
        version = pointer.version if on_main else pointer.canary_version
        rows.append({
            "prompt": pointer.prompt.slug, "name": pointer.prompt.name, "tier": pointer.prompt.tier,
            "team": pointer.prompt.team.slug, "owner": pointer.prompt.owner.get_username(),
            "environment": pointer.environment.slug, "version": version.number,
            "canary": not on_main, "disabled": pointer.disabled,
        })
    return rows


def effective_tiers(allowed_tiers):
    """The tiers a model restricted to ``allowed_tiers`` may carry: those named that the tier
    policies also allow a restricted model for."""
    allowed = {int(t) for t in allowed_tiers}
    return sorted(
        p.tier for p in tier_policies() if p.tier in allowed and LLMModel.RESTRICTED in p.allowed_model_statuses
    )


def affected_prompts(entry, decision, allowed_tiers=(), actor=None):
    """The live prompts a review decision would stop from being deployed again on ``entry``:
    every one for ``retire``, those of tiers the restriction leaves out for ``restrict``, none for
    ``keep``."""
    if decision == ModelReview.KEEP:
        return []
    uses = live_uses(entry, actor)
    if decision == ModelReview.RETIRE:
        return uses
    carried = set(effective_tiers(allowed_tiers))
    return [use for use in uses if use["tier"] not in carried]


def register(*, view=""):
    """The register's rows: each model with its owner, profile, review state, live prompts by tier
    and eval coverage (suites linked, suites run on it). ``view="due"``: only those due or overdue."""
    today = policy.today()
    qs = LLMModel.objects.select_related("owner", "risk_profile").annotate(
        linked_suites=Count("risk_profile__suites", distinct=True)
    )
    if view == "due":
        qs = qs.filter(next_review_due__lte=policy.due_horizon(today)).exclude(status=LLMModel.RETIRED)
        qs = qs.order_by("next_review_due", "provider", "model_id")
    models = list(qs)
    ids = [m.pk for m in models]
    by_tier = defaultdict(lambda: defaultdict(set))
    for pointer in Deployment.objects.filter(_on_models(ids)).values_list(
        "version__llm_model_id", "canary_version__llm_model_id", "prompt_id", "prompt__tier"
    ):
        main, canary, prompt_id, tier = pointer
        for model_id in {main, canary} - {None}:
            by_tier[model_id][tier].add(prompt_id)
    suites_run = dict(
        EvalRun.objects.filter(llm_model_id__in=ids, status__in=FINISHED)
        .values("llm_model_id").annotate(n=Count("suite_id", distinct=True)).values_list("llm_model_id", "n")
    )
    for entry in models:
        entry.state = policy.review_state(entry, today)
        entry.days_overdue = (today - entry.next_review_due).days if entry.state == policy.OVERDUE else 0
        entry.prompts_by_tier = [(int(t), len(by_tier[entry.pk][int(t)])) for t in TIERS]
        entry.live_prompts = sum(n for _, n in entry.prompts_by_tier)
        entry.suites_run = suites_run.get(entry.pk, 0)
    return models


REVIEWER_ROLES = (SiteRole.RISK, SiteRole.ADMIN)  # who reviews models (and so sees the due count)


def reviewer_roles(user):
    """The site roles through which ``user`` reviews models (superusers are admins besides)."""
    return SiteRole.objects.filter(user=user, role__in=REVIEWER_ROLES)


def due_count():
    """How many models' reviews are due or overdue now (the navigation's count)."""
    return (
        LLMModel.objects.filter(next_review_due__lte=policy.due_horizon())
        .exclude(status=LLMModel.RETIRED).count()
    )


def get_model(pk):
    entry = LLMModel.objects.select_related("owner", "risk_profile").filter(pk=pk).first()
    if entry is None:
        raise NotFound(f"no model {pk} in the register", code="not_found")
    return entry


def linked_suite_rates(entry, actor):
    """``[(suite, [run, ...])]``: each linked suite with the latest finished run on this model of
    every prompt the actor can see (its pass rate, prompt, version)."""
    profile = getattr(entry, "risk_profile", None)
    suites = list(profile.suites.order_by("slug")) if profile is not None else []
    if not suites:
        return []
    latest = (
        EvalRun.objects.filter(
            llm_model=entry, suite__in=suites, status__in=FINISHED, prompt__in=visible_prompts(actor)
        ).values("suite_id", "prompt_id").annotate(last=Max("id")).values_list("last", flat=True)
    )
    runs = defaultdict(list)
    for run in EvalRun.objects.filter(pk__in=list(latest)).select_related("prompt", "version").order_by("prompt__slug"):
        runs[run.suite_id].append(run)
    return [(suite, runs[suite.pk]) for suite in suites]


def reviews_of(entry):
    return list(ModelReview.objects.filter(llm_model=entry).select_related("reviewer"))
