"""Browser pages for setting a prompt up: a new prompt with its first version, its settings (details,
named approvers, raising the tier) and its gate with a preview of today's verdict.

Each form calls the service the API calls for the same change (``create_prompt`` and
``create_version`` as ``POST /prompts/`` and ``.../versions/``, ``update_prompt`` as ``PATCH``,
the gate's ``set_gate`` as ``PUT .../gate``), so every rule stays in the service; a form is offered
only to those the access table lets submit it. The gate lives in evals, which the registry does not
import: evals provides its functions through ``registry.hooks`` when it starts."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core import access
from core.errors import DomainError, PermissionDenied, ValidationFailed
from core.pages import registry_page
from core.tiers import parse_tier

from . import access_selectors, hooks, page_queries, selectors, services
from .forms import VersionEditor
from .forms_setup import (
    ApproversForm,
    GateForm,
    PromptCreateForm,
    PromptSettingsForm,
    TierLowerForm,
    TierRaiseForm,
)
from .models import Environment, Membership

ELIGIBLE_ROLES = (Membership.APPROVER, Membership.OWNER)  # offered as named approvers; the service decides


# --- who may create ------------------------------------------------------------------------------
@registry_page
@require_http_methods(["GET", "POST"])
def prompt_new(request, actor):
    teams = access_selectors.creatable_teams(actor)
    if not teams:  # the refusal names what is missing; nobody fills in a form they cannot save
        if access.may(actor, "prompt.create"):
            return render(request, "registry/prompt_new.html", {"section": "prompts", "no_team": True})
        access.require(actor, "prompt.create", team=next(iter(access_selectors.visible_teams(actor)), None))
    llm_models = page_queries.register_models()
    status = 200
    if request.method == "POST":
        form = PromptCreateForm(request.POST, teams=teams)
        editor = VersionEditor(request.POST, llm_models=llm_models)
        if "add_message" in request.POST:
            editor = editor.with_extra_message(request.POST)
        else:
            status = 400
            if form.is_valid() & editor.is_valid():
                by_slug = {t.slug: t for t in teams}
                data = form.values()
                try:
                    prompt, version = services.create_prompt_with_first_version(
                        actor=actor, version=editor.payload(),
                        slug=data["slug"], name=data["name"], team=by_slug.get(data["team"]),
                        tier=parse_tier(data["tier"]), owner=data["owner"], description=data["description"],
                        tags=data["tags"], data_categories=data["data_categories"],
                    )
                except services.FirstVersionRefused as stage:
                    editor.add_domain_errors(stage.error)
                    status = stage.error.status
                except DomainError as exc:
                    form.add_domain_errors(exc)
                    status = exc.status
                else:
                    messages.success(request, f"Prompt {prompt.slug} created with version {version.number}.")
                    return redirect("registry:prompt-detail", slug=prompt.slug)
    else:
        form = PromptCreateForm(
            teams=teams,
            initial={"owner": request.user.get_username(), "tier": "2", "team": request.GET.get("team", "")},
        )
        editor = VersionEditor(llm_models=llm_models, initial=VersionEditor.initial_from(None))
    context = {
        "section": "prompts", "form": form, "editor": editor, "has_models": llm_models.exists(),
        "members": _members_of(teams),
    }
    return render(request, "registry/prompt_new.html", context, status=status)


def _members_of(teams):
    """Usernames of the given teams' active members, for the owner field's suggestions."""
    return sorted(
        set(
            Membership.objects.filter(team__in=teams, user__is_active=True).values_list("user__username", flat=True)
        )
    )


# --- settings: details, approvers, tier -----------------------------------------------------------
def _candidates(prompt):
    rows = (
        Membership.objects.filter(team=prompt.team, role__in=ELIGIBLE_ROLES, user__is_active=True)
        .select_related("user")
        .order_by("user__username")
    )
    return [(m.user.get_username(), f"{m.user.get_full_name() or m.user.get_username()} ({m.role})") for m in rows]


def _named(prompt):
    named_approvers = hooks.provided("named_approvers")
    return named_approvers(prompt) if named_approvers else {"approvers": [], "approver_groups": []}


def _settings_page(request, actor, prompt, *, details=None, approvers=None, raise_form=None, status=200):
    may_edit = access.may(actor, "prompt.edit", team=prompt.team)
    govern = access.may(actor, "prompt.govern", team=prompt.team)
    may_name_approvers = access.may(actor, "approvers.set", team=prompt.team)
    if not may_edit:
        # Nothing here a reader could change: say so, rather than show forms that would be refused.
        access.require(actor, "prompt.edit", team=prompt.team)
    named = _named(prompt)
    context = {
        "section": "prompts",
        "prompt": prompt,
        "details": details or PromptSettingsForm(initial=PromptSettingsForm.initial_from(prompt), govern=govern),
        "govern": govern,
        "approvers": (approvers or ApproversForm(
            candidates=_candidates(prompt),
            initial={"approvers": named["approvers"], "approver_groups": ", ".join(named["approver_groups"])},
        )) if may_name_approvers else None,
        "named": named,
        "raise_form": (raise_form or TierRaiseForm(current=prompt.tier)) if govern else None,
        "lower_form": TierLowerForm(current=prompt.tier)
        if access.may(actor, "tier_change.open", team=prompt.team) and prompt.tier < 3 else None,
        "may_gate": access.may(actor, "gate.set", team=prompt.team) and hooks.provided("set_gate") is not None,
    }
    return render(request, "registry/prompt_settings.html", context, status=status)


@registry_page
@require_http_methods(["GET", "POST"])
def prompt_settings(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    if request.method == "GET":
        return _settings_page(request, actor, prompt)
    access.require(actor, "prompt.edit", team=prompt.team)  # before reading the form
    govern = access.may(actor, "prompt.govern", team=prompt.team)
    form = PromptSettingsForm(request.POST, govern=govern)
    if form.is_valid():
        try:
            services.update_prompt(actor=actor, prompt=prompt, **form.values())
        except DomainError as exc:
            form.add_domain_errors(exc)
            return _settings_page(request, actor, prompt, details=form, status=exc.status)
        messages.success(request, "Settings saved.")
        return redirect("registry:prompt-settings", slug=prompt.slug)
    return _settings_page(request, actor, prompt, details=form, status=400)


@registry_page
@require_POST
def prompt_approvers(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    access.require(actor, "approvers.set", team=prompt.team)
    form = ApproversForm(request.POST, candidates=_candidates(prompt))
    if form.is_valid():
        try:
            services.update_prompt(actor=actor, prompt=prompt, **form.values())
        except DomainError as exc:
            form.add_domain_errors(exc)
            return _settings_page(request, actor, prompt, approvers=form, status=exc.status)
        messages.success(request, "Approvers saved.")
        return redirect("registry:prompt-settings", slug=prompt.slug)
    return _settings_page(request, actor, prompt, approvers=form, status=400)


@registry_page
@require_POST
def prompt_tier(request, actor, slug):
    """Raise the tier at once. A lower tier is refused by the service (it needs the current tier's
    approvals); the page then says so next to the field and offers the request form."""
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    access.require(actor, "prompt.govern", team=prompt.team)
    form = TierRaiseForm(request.POST, current=prompt.tier)
    form.is_valid()
    try:
        updated = services.update_prompt(actor=actor, prompt=prompt, tier=parse_tier(form.cleaned_data.get("tier")))
    except DomainError as exc:
        if isinstance(exc, PermissionDenied) and exc.code == "tier_lowering_needs_approval":
            exc = ValidationFailed(
                "lowering the tier needs approval",
                field_errors={"tier": ["lowering the tier needs the approvals of its current tier: ask for it with "
                                       "“Request a lower tier” below"]},
                status=exc.status,
            )
        form.add_domain_errors(exc)
        return _settings_page(request, actor, prompt, raise_form=form, status=exc.status)
    messages.success(request, f"Tier raised to {updated.tier}: deploys now need what tier {updated.tier} demands.")
    return redirect("registry:prompt-settings", slug=prompt.slug)


# --- the gate ------------------------------------------------------------------------------------
def _verdicts(actor, prompt):
    """Today's verdict of the prompt's gate for its latest version, per environment (nothing
    recorded: a preview)."""
    verdict = hooks.provided("gate_verdict")
    latest = page_queries.latest_version(prompt)
    if verdict is None or latest is None:
        return latest, []
    return latest, [
        (environment, verdict(actor=actor, prompt=prompt, version=latest, environment=environment))
        for environment in Environment.objects.all()
    ]


@registry_page
@require_http_methods(["GET", "POST"])
def prompt_gate(request, actor, slug):
    prompt = selectors.get_visible_prompt(actor=actor, slug=slug)
    gate_config, set_gate, gate_suites = (hooks.provided(n) for n in ("gate_config", "set_gate", "gate_suites"))
    if gate_config is None:
        raise ValidationFailed("no gate is kept here: the evals app is not installed", code="no_gates")
    may_set = access.may(actor, "gate.set", team=prompt.team)
    suites = list(gate_suites(actor, prompt))
    config = gate_config(prompt)
    form = GateForm(suites=suites, config=config) if may_set else None
    status = 200
    if request.method == "POST":
        access.require(actor, "gate.set", team=prompt.team)
        form = GateForm(request.POST, suites=suites, config=config)
        status = 400
        if form.is_valid():
            try:
                set_gate(actor=actor, prompt=prompt, **form.values())
            except DomainError as exc:
                form.add_domain_errors(exc)
                status = exc.status
            else:
                messages.success(request, "Gate saved. Today's verdict below uses it.")
                return redirect("registry:prompt-gate", slug=prompt.slug)
    latest, verdicts = _verdicts(actor, prompt)
    context = {
        "section": "prompts", "prompt": prompt, "form": form, "config": config, "latest": latest,
        "verdicts": verdicts, "can_edit": access.may(actor, "prompt.edit", team=prompt.team),
    }
    return render(request, "registry/prompt_gate.html", context, status=status)
