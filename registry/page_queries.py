"""Read queries the browser pages need beyond ``registry.selectors``: list annotations, filter
choices, a prompt's timeline. Visibility always comes from ``registry.permissions``; nothing here
decides who may see what."""

from django.db.models import Prefetch

from .models import Deployment, LLMModel, Prompt, PromptVersion, Team
from .permissions import visible_prompts
from .selectors import with_latest_version


def with_list_details(prompts):
    """The listing's extra columns in a fixed number of queries: the latest version number, how
    many versions there are, and the pointers (with environment and version) for live badges."""
    pointers = Deployment.objects.select_related("environment", "version").order_by("environment__position")
    return with_latest_version(prompts, count=True).prefetch_related(
        Prefetch("deployments", queryset=pointers, to_attr="pointers")
    )


def filter_choices(actor):
    """Teams and tags the actor can filter on: only those of prompts the actor can see."""
    prompts = visible_prompts(actor, Prompt.objects.all())
    teams = Team.objects.filter(pk__in=prompts.values("team_id")).order_by("name")
    tags = set()
    for labels in prompts.values_list("tags", flat=True):
        tags.update(labels or [])
    return list(teams), sorted(tags)


def timeline(prompt):
    """Every version of a prompt, newest first, with its author."""
    return list(PromptVersion.objects.filter(prompt=prompt).select_related("author").order_by("-number"))


def latest_version(prompt):
    return (
        PromptVersion.objects.filter(prompt=prompt).select_related("author", "llm_model").order_by("-number").first()
    )


def register_models():
    """The model risk register, for the new-version form's model picker."""
    return LLMModel.objects.order_by("provider", "model_id")


def live_numbers(deployments):
    """``{version number: [(environment slug, canary percent or None)]}`` from
    ``selectors.live_deployments`` rows, so a timeline can mark what is live (or canary) where."""
    live = {}
    for environment, pointer in deployments:
        if pointer is None:
            continue
        if pointer.version is not None:
            live.setdefault(pointer.version.number, []).append((environment.slug, None))
        if pointer.canary_version is not None:
            live.setdefault(pointer.canary_version.number, []).append((environment.slug, pointer.canary_percent))
    return live
