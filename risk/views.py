"""The model register in the browser: the list (due and overdue first for the risk role), a page
per model, the edit and review forms, the live prompts a decision would affect (an htmx partial),
the per-tier rule on overdue reviews, and the navigation's due count. Thin: every change is a
service call, and a refusal re-renders the form with the service's own words and status."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from approvals import browser_signing
from core import access
from core.errors import DomainError
from core.pages import registry_page
from evals.models import Suite
from registry.models import SiteRole

from . import policy, selectors, services
from .forms import ModelEditForm, ReviewForm, RiskPolicyForm
from .models import ModelReview

VIEWS = ("due", "all")


def _is_risk(actor):
    return SiteRole.RISK in actor.site_roles


@registry_page
@require_GET
def model_list(request, actor):
    view = request.GET.get("view")
    due = selectors.due_count()
    if view not in VIEWS:  # the risk role lands on what needs reviewing
        view = "due" if _is_risk(actor) and due else "all"
    context = {
        "section": "models", "view": view, "due": due, "rows": selectors.register(view=view),
        "may_review": access.may(actor, "model_review.sign"), "may_set_policy": access.may(actor, "risk_policy.update"),
    }
    return render(request, "risk/model_list.html", context)


@registry_page
@require_GET
def due_count(request, actor):
    """The navigation's badge: how many reviews are due or overdue, for those who review."""
    if not actor.site_roles & set(selectors.REVIEWER_ROLES):
        return HttpResponse("")
    return render(request, "risk/_due_count.html", {"due": selectors.due_count()})


@registry_page
@require_GET
def model_detail(request, actor, model_id):
    entry = selectors.get_model(model_id)
    context = {
        "section": "models", "entry": entry, "profile": getattr(entry, "risk_profile", None),
        "state": policy.review_state(entry), "today": policy.today(),
        "suite_rates": selectors.linked_suite_rates(entry, actor), "reviews": selectors.reviews_of(entry),
        "live": selectors.live_uses_page(entry, actor, request.GET.get("page")),
        "may_edit": access.may(actor, "model_profile.edit"), "may_review": access.may(actor, "model_review.sign"),
    }
    return render(request, "risk/model_detail.html", context)


def _error(form, exc):
    for field, errors in exc.field_errors.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


@registry_page
@require_http_methods(["GET", "POST"])
def model_edit(request, actor, model_id):
    entry = selectors.get_model(model_id)
    profile = getattr(entry, "risk_profile", None)
    suites = Suite.objects.order_by("slug")
    initial = {
        "owner": entry.owner.get_username(), "failure_modes": entry.failure_modes,
        "limitations": profile.limitations if profile else "", "intended_use": profile.intended_use if profile else "",
        "suites": list(profile.suites.values_list("slug", flat=True)) if profile else [],
    }
    form = ModelEditForm(request.POST or None, initial=initial, suites=suites)
    status, error = 200, None
    if request.method == "GET":
        access.require(actor, "model_profile.edit")
    elif form.is_valid():
        data = form.cleaned_data
        try:
            services.edit_model(
                actor=actor, llm_model=entry, owner=data["owner"], failure_modes=data["failure_modes"],
                limitations=data["limitations"], intended_use=data["intended_use"], suites=data["suites"],
            )
        except DomainError as exc:
            _error(form, exc)
            status, error = exc.status, exc
        else:
            messages.success(request, f"{entry} updated.")
            return redirect("risk:model-detail", model_id=entry.pk)
    else:
        status = 400
    context = {"section": "models", "entry": entry, "form": form, "error": error}
    return render(request, "risk/model_edit.html", context, status=status)


@registry_page
@require_http_methods(["GET", "POST"])
def model_review(request, actor, model_id):
    entry = selectors.get_model(model_id)
    today = policy.today()
    form = ReviewForm(request.POST or None, today=today)
    status, error = 200, None
    if request.method == "GET":
        access.require(actor, "model_review.sign")
    elif form.is_valid():
        data = form.cleaned_data
        try:
            review = services.record_review(
                actor=actor, llm_model=entry, findings=data["findings"], decision=data["decision"],
                next_review_due=data["next_review_due"], evidence_links=form.links(), allowed_tiers=form.tiers(),
                signature=browser_signing.signature(request.session, actor, data.get("password"), what="the review"),
            )
        except DomainError as exc:
            _error(form, exc)
            status, error = exc.status, exc
        else:
            affected = len(review.affected_prompts)
            note = f" It affects {affected} live prompt{'s' if affected != 1 else ''}." if affected else ""
            messages.success(request, f"Review of {entry} signed: {review.get_decision_display().lower()}.{note}")
            return redirect("risk:model-detail", model_id=entry.pk)
    else:
        status = 400
    decision = (form.data.get("decision") if form.is_bound else None) or ModelReview.KEEP
    tiers = form.data.getlist("allowed_tiers") if form.is_bound else []
    context = {
        "section": "models", "entry": entry, "form": form, "error": error, "state": policy.review_state(entry, today),
        "needs_password": browser_signing.needs_password(request.session, actor, services.REVIEW_SIGNING),
        "idp_reauth_url": browser_signing.idp_reauth_url(request.session, request.path),
        "live": selectors.live_uses(entry, actor),
        "affected": _affected(entry, actor, decision, tiers), "decision": decision,
    }
    return render(request, "risk/model_review.html", context, status=status)


def _affected(entry, actor, decision, tiers):
    """The live prompts ``decision`` would affect; None when it affects none by its nature (keep) or
    cannot say yet (a restriction with no tier chosen)."""
    tiers = [int(t) for t in tiers if str(t).isdigit()]
    if decision not in (ModelReview.RESTRICT, ModelReview.RETIRE) or (decision == ModelReview.RESTRICT and not tiers):
        return None
    return selectors.affected_prompts(entry, decision, tiers, actor=actor)


@registry_page
@require_GET
def affected(request, actor, model_id):
    """The live prompts a decision would affect, redrawn as the review form's decision changes."""
    entry = selectors.get_model(model_id)
    decision = request.GET.get("decision", "")
    context = {
        "entry": entry, "decision": decision,
        "affected": _affected(entry, actor, decision, request.GET.getlist("allowed_tiers")),
    }
    return render(request, "risk/_affected.html", context)


@registry_page
@require_http_methods(["GET", "POST"])
def risk_policy(request, actor):
    status, error = 200, None
    if request.method == "POST":
        form = RiskPolicyForm(request.POST)
        if form.is_valid():
            try:
                services.update_risk_policy(actor=actor, **form.cleaned_data)
            except DomainError as exc:
                status, error = exc.status, exc
            else:
                messages.success(request, f"Tier {form.cleaned_data['tier']}: rule on overdue reviews saved.")
                return redirect("risk:policy")
        else:
            status = 400
            error = DomainError("choose a tier and refuse or warn", code="invalid")
    context = {
        "section": "models", "policies": policy.risk_policies(), "error": error,
        "may_set_policy": access.may(actor, "risk_policy.update"),
    }
    return render(request, "risk/policy.html", context, status=status)
