"""Browser pages of the registry: as thin as the API views, calling the same selectors and
services. Domain errors become pages in one place, ``core.pages.registry_page``."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods

from audit.selectors import filter_events, visible_events
from audit.views import event_page, rows_of
from core import access
from core.errors import ValidationFailed
from core.pages import registry_page

from . import access_selectors, diffing, page_queries, panels, selectors, services
from .forms import PromptFilterForm, VersionEditor, as_json

PAGE_SIZE = 25


def _query_without_page(request):
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@registry_page
def prompt_list(request, actor):
    teams, tags = page_queries.filter_choices(actor)
    form = PromptFilterForm(request.GET or None, teams=teams, tags=tags)
    filters = form.filters() if request.GET else {}
    prompts = page_queries.with_list_details(selectors.prompt_list(actor=actor, **filters))
    page = Paginator(prompts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "section": "prompts",
        "form": form,
        "page": page,
        "filtered": any(filters.values()),
        "query": _query_without_page(request),
        "may_create": access_selectors.may_create_prompt(actor),
    }
    # htmx swaps only the results when a filter changes; the full page works without script.
    template = "registry/_prompt_results.html" if request.headers.get("HX-Request") else "registry/prompt_list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _number(value, name):
    if value in (None, ""):
        return None
    if not str(value).isdigit():
        raise ValidationFailed(f"{name} must be a version number", field_errors={name: ["a version number"]})
    return int(value)


@registry_page
def prompt_detail(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    versions = page_queries.timeline(prompt)
    deployments = selectors.live_deployments(prompt)
    live = page_queries.live_numbers(deployments)
    context = {
        "section": "prompts",
        "prompt": prompt,
        "versions": [(v, live.get(v.number, [])) for v in versions],
        "deployments": deployments,
        "latest": versions[0] if versions else None,
        "compare_from": versions[1].number if len(versions) > 1 else None,
        "can_author": access.may(actor, "version.create", team=prompt.team),
        "can_edit": access.may(actor, "prompt.edit", team=prompt.team),
        "can_kill_switch": access.may(actor, "kill_switch.set", team=prompt.team),
        **panels.prompt_page_parts(actor, prompt),  # evals' pass rates and drift, approvals' panel
    }
    return render(request, "registry/prompt_detail.html", context)


@registry_page
def version_detail(request, actor, slug, number):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    version = selectors.get_version(prompt=prompt, number=number)
    live = page_queries.live_numbers(selectors.live_deployments(prompt)).get(version.number, [])
    context = {
        "section": "prompts",
        "prompt": prompt,
        "version": version,
        "live": live,
        "parent_number": version.parent.number if version.parent_id else None,
        "model": version.model_config,
        "params_json": as_json(version.model_config.get("params") or {}),
        "schema_json": as_json(version.model_config.get("response_schema")),
        "can_author": access.may(actor, "version.create", team=prompt.team),
        **panels.version_page_parts(actor, prompt, version),  # evals' Run form and latest runs
        "can_request_deploy": access.may(actor, "deploy_request.open", team=prompt.team),
    }
    return render(request, "registry/version_detail.html", context)


@registry_page
def version_diff(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    numbers = [v.number for v in page_queries.timeline(prompt)]
    new_number = _number(request.GET.get("to"), "to") or (numbers[0] if numbers else None)
    old_number = _number(request.GET.get("from"), "from")
    context = {"section": "prompts", "prompt": prompt, "numbers": numbers, "rows": None}
    if not numbers:  # the empty state offers the first version only to those who may write it
        context["can_author"] = access.may(actor, "version.create", team=prompt.team)
    if new_number is not None:
        new = selectors.get_version(prompt=prompt, number=new_number)
        if old_number is None:
            old_number = new.parent.number if new.parent else new.number
        old = selectors.get_version(prompt=prompt, number=old_number)
        rows = diffing.side_by_side(old, new)
        context.update(
            old=old,
            new=new,
            rows=rows,
            changes=sum(1 for row in rows if row[0] != "equal"),
            per_message=diffing.per_message(old, new),
        )
    return render(request, "registry/version_diff.html", context)


@registry_page
@require_http_methods(["GET", "POST"])
def version_new(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    access.require(actor, "version.create", team=prompt.team)  # before anyone fills the form in
    llm_models = page_queries.register_models()
    if request.method == "POST":
        editor = VersionEditor(request.POST, llm_models=llm_models)
        if "add_message" in request.POST:
            editor = editor.with_extra_message(request.POST)
        elif editor.is_valid():
            try:
                version, created = services.create_version(actor=actor, prompt=prompt, **editor.payload())
            except ValidationFailed as exc:
                editor.add_domain_errors(exc)
            else:
                if created:
                    messages.success(request, f"Version {version.number} saved.")
                else:
                    messages.info(
                        request,
                        f"Nothing new: this content matches the existing version {version.number}, "
                        "so no version was written.",
                    )
                return redirect("registry:version-detail", slug=prompt.slug, number=version.number)
    else:
        source_number = _number(request.GET.get("from"), "from")
        source = (
            selectors.get_version(prompt=prompt, number=source_number)
            if source_number
            else page_queries.latest_version(prompt)
        )
        editor = VersionEditor(llm_models=llm_models, initial=VersionEditor.initial_from(source))
    context = {
        "section": "prompts",
        "prompt": prompt,
        "editor": editor,
        "latest": page_queries.latest_version(prompt),
        "source_number": request.GET.get("from"),
    }
    return render(request, "registry/version_new.html", context)


@registry_page
def prompt_history(request, actor, slug):
    """The prompt's History tab: its audit events, newest first (the audit log's rows, filtered)."""
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    page = event_page(filter_events(visible_events(actor), {"prompt": prompt.slug}), request.GET)
    context = {"section": "prompts", "prompt": prompt, "page": page, "rows": rows_of(page.events), "query": ""}
    return render(request, "audit/prompt_history.html", context)
