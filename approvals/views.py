"""Browser pages of the approval flow: the inbox, a request's page (diff against what is live, the
gate against its baseline, the model's register status, the checklist, decisions, deploy and the
timeline), and the forms that open requests. Every action calls the same services as the API; a
refusal re-renders the request page with the service's own words and status."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from audit.selectors import visible_events
from audit.views import rows_of
from core import access
from core.errors import DomainError, ValidationFailed
from core.pages import registry_page
from evals.gates import evaluate_gate
from registry import diffing
from registry import selectors as registry_selectors
from registry.models import Deployment, SiteRole
from registry.services.deployments import get_environment

from . import administration, browser_signing, selectors, services
from .forms import BreakGlassForm, DecisionForm, PolicyForm, RequestForm, RollbackForm, TierChangeForm
from .models import DeployRequest
from .policy import policies as policies_in_force
from .policy import policy_for
from .requirements import checklist, first_unmet, refusal_to_decide


@registry_page
def inbox(request, actor):
    user = actor.user
    context = {
        "section": "approvals",
        "waiting": selectors.waiting_for(user),
        "reviews": selectors.reviews_waiting_for(user),
        "mine": selectors.requested_by(user),
        "decisions": selectors.recent_decisions(actor, limit=25),
        "open_count": selectors.visible_requests(actor).filter(status__in=DeployRequest.OPEN).count(),
    }
    return render(request, "approvals/inbox.html", context)


@registry_page
def request_list(request, actor):
    status = request.GET.get("status") or ""
    qs = selectors.filtered(actor, prompt=request.GET.get("prompt"), status=status or None)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "section": "approvals", "page": page, "status": status, "prompt": request.GET.get("prompt", ""),
        "statuses": [s for s, _ in DeployRequest.STATUS_CHOICES], "query": query.urlencode(),
    }
    return render(request, "approvals/request_list.html", context)


def _live_now(dr):
    """The version live now in the request's environment (None when nothing is), so the page's
    labels follow a deploy made after the request was opened, this one's included."""
    if dr.environment_id is None:
        return None
    pointer = Deployment.objects.filter(prompt_id=dr.prompt_id, environment_id=dr.environment_id).select_related(
        "version"
    ).first()
    return pointer.version if pointer is not None else None


def _page_context(actor, dr, request=None):
    prompt = dr.prompt
    items = checklist(dr, actor=actor) if dr.is_open else []
    context = {
        "section": "approvals", "dr": dr, "prompt": prompt, "checklist": items, "live_now": _live_now(dr),
        "can_still_sign": selectors.who_can_still_sign(dr),
        "deployable": bool(items) and first_unmet(items) is None,
        "approvals": list(dr.approvals.select_related("user")),
        "policy": policy_for(prompt.tier),
        "timeline": rows_of(
            visible_events(actor).filter(target_type="deploy_request", target_id=str(dr.pk)).order_by("sequence")
        ),
        "form": DecisionForm(),
        "needs_password": browser_signing.needs_password(
            getattr(request, "session", None), actor, policy_for(dr.prompt.tier)
        ),
        "idp_reauth_url": browser_signing.idp_reauth_url(
            getattr(request, "session", None), reverse("approvals:request-detail", args=[dr.pk])
        ),
    }
    user = actor.user
    mine = dr.approvals.filter(user=user, withdrawn_at__isnull=True).first() if user else None
    refusal = refusal_to_decide(dr, user) if user else None
    context.update(
        my_decision=mine,
        can_decide=dr.is_open and mine is None and refusal is None,
        cannot_decide_reason=refusal.detail if refusal is not None and dr.is_open else "",
        can_sign=dr.review_status == DeployRequest.REVIEW_PENDING and mine is None and refusal is None,
        can_deploy=dr.is_open and access.may(actor, "deploy_request.deploy", team=prompt.team),
        can_withdraw=dr.is_open and access.may(
            actor, "deploy_request.withdraw", team=prompt.team, own=user is not None and user.pk == dr.requested_by_id
        ),
    )
    if dr.version_id:
        old = dr.base_version or dr.version
        rows = diffing.side_by_side(old, dr.version)
        context.update(old=old, new=dr.version, rows=rows, changes=sum(1 for r in rows if r[0] != "equal"))
        context["gate"] = evaluate_gate(
            actor=actor, prompt=prompt, version=dr.version, environment=dr.environment, record_decision=False
        )
        context["model"] = dr.version.llm_model
    return context


def _show(request, actor, pk, *, error=None, form=None, confirm=False):
    dr = selectors.get_request(actor, pk)
    context = _page_context(actor, dr, request)
    if form is not None:
        context["form"] = form
    # The deploy asks first, naming the version and environment: a page of its own state, so it
    # works without JavaScript (the Deploy button is a link to it) and from the keyboard.
    context["confirm_deploy"] = confirm and context["deployable"] and context["can_deploy"]
    status = 200
    if error is not None:
        context["error"], status = error, error.status
    return render(request, "approvals/request_detail.html", context, status=status)


@registry_page
def request_detail(request, actor, pk):
    return _show(request, actor, pk, confirm=request.GET.get("confirm") == "deploy")


@registry_page
def pending_count(request, actor):
    """The navigation's count: open requests the signed-in person could approve now (htmx)."""
    count = selectors.pending_count(actor.user)
    if not count:
        return HttpResponse("")
    return render(request, "approvals/_pending_count.html", {"pending": count})


def _asks_first(actor, dr, data):
    """A deploy the browser has not confirmed yet shows its confirmation instead, when it could go
    ahead; one that could not goes to the service, whose refusal says why."""
    if dr.kind == DeployRequest.TIER_CHANGE or data.get("confirmed") == "yes" or not dr.is_open:
        return False
    return first_unmet(checklist(dr, actor=actor)) is None


ACTIONS = {"approve", "reject", "sign-review", "withdraw", "withdraw-decision", "deploy"}


@registry_page
@require_POST
def request_action(request, actor, pk, action):
    if action not in ACTIONS:
        raise ValidationFailed(f"no action '{action}'")
    dr = selectors.get_request(actor, pk)
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        if action in ("approve", "reject", "sign-review"):
            signature = browser_signing.signature(
                request.session, actor, form.cleaned_data.get("password") or "", what="the decision"
            )
            comment = form.cleaned_data.get("comment", "")
            call = {"approve": services.approve, "reject": services.reject, "sign-review": services.sign_review}
            call[action](actor=actor, request=dr, comment=comment, signature=signature)
        elif action == "withdraw":
            services.withdraw_request(actor=actor, request=dr)
        elif action == "withdraw-decision":
            services.withdraw_decision(actor=actor, request=dr)
        elif _asks_first(actor, dr, request.POST):
            return _show(request, actor, pk, confirm=True)
        else:
            services.deploy(actor=actor, request=dr)
    except DomainError as exc:
        return _show(request, actor, pk, error=exc, form=form)
    done = {
        "approve": "Approved.", "reject": "Rejected.", "sign-review": "Review signed.",
        "withdraw": "Request withdrawn.", "withdraw-decision": "Your decision was withdrawn.", "deploy": "Deployed.",
    }
    messages.success(request, done[action])
    return redirect("approvals:request-detail", pk=pk)


def _prompt_and_version(actor, slug, number):
    prompt = registry_selectors.get_visible_prompt(actor=actor, slug=slug)
    return prompt, registry_selectors.get_version(prompt=prompt, number=number)


def _apply_errors(form, exc):
    for field, errors in exc.field_errors.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)
    if not exc.field_errors:
        form.add_error(None, exc.detail)


@registry_page
@require_http_methods(["GET", "POST"])
def request_new(request, actor, slug, number):
    prompt, version = _prompt_and_version(actor, slug, number)
    form = RequestForm(request.POST or None, initial={"environment": request.GET.get("environment", "production")})
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            made = services.open_request(
                actor=actor, prompt=prompt, version=version,
                environment=get_environment(form.cleaned_data["environment"]),
                rationale=form.cleaned_data["rationale"], canary_percent=form.cleaned_data["canary_percent"],
            )
        except DomainError as exc:
            _apply_errors(form, exc)
            status = exc.status
        else:
            messages.success(request, "Deployed at once (tier 3)." if made.status == "deployed" else "Request opened.")
            return redirect("approvals:request-detail", pk=made.pk)
    elif request.method == "POST":
        status = 400
    context = {
        "section": "approvals", "prompt": prompt, "version": version, "form": form,
        "policy": policy_for(prompt.tier),
    }
    return render(request, "approvals/request_new.html", context, status=status)


def _prompt_form(request, actor, slug, form_class, template, submit):
    prompt = registry_selectors.get_visible_prompt(actor=actor, slug=slug)
    form = form_class(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            made = submit(prompt, form.cleaned_data)
        except DomainError as exc:
            _apply_errors(form, exc)
            status = exc.status
        else:
            return redirect("approvals:request-detail", pk=made.pk)
    elif request.method == "POST":
        status = 400
    context = {"section": "approvals", "prompt": prompt, "form": form, "policy": policy_for(prompt.tier)}
    return render(request, template, context, status=status)


@registry_page
@require_http_methods(["GET", "POST"])
def rollback(request, actor, slug):
    return _prompt_form(request, actor, slug, RollbackForm, "approvals/rollback.html", lambda prompt, data: (
        services.open_rollback(
            actor=actor, prompt=prompt, environment=get_environment(data["environment"]),
            rationale=data["rationale"],
        )
    ))


@registry_page
@require_http_methods(["GET", "POST"])
def break_glass(request, actor, slug):
    def submit(prompt, data):
        version = prompt.versions.filter(number=data["version"]).first()
        if version is None:
            raise ValidationFailed("no such version", field_errors={"version": [f"no version {data['version']}"]})
        return services.break_glass_rollback(
            actor=actor, prompt=prompt, environment=get_environment(data["environment"]), version=version,
            reason=data["reason"],
        )

    return _prompt_form(request, actor, slug, BreakGlassForm, "approvals/break_glass.html", submit)


@registry_page
@require_http_methods(["GET", "POST"])
def tier_change(request, actor, slug):
    return _prompt_form(request, actor, slug, TierChangeForm, "approvals/tier_change.html", lambda prompt, data: (
        services.open_tier_change(actor=actor, prompt=prompt, target_tier=data["tier"], rationale=data["rationale"])
    ))


@registry_page
@require_http_methods(["GET", "POST"])
def policies(request, actor):
    rows = policies_in_force()
    is_admin = actor.is_admin
    forms_by_tier = {
        p.tier: PolicyForm(prefix=f"tier{p.tier}", initial=p.snapshot()) for p in rows
    }
    status = 200
    if request.method == "POST":
        access.require(actor, "policy.update")  # before reading the form
        raw_tier = request.POST.get("tier", "")
        tier = int(raw_tier) if raw_tier.isdigit() else -1
        if tier not in forms_by_tier:
            raise ValidationFailed(
                "no such tier: a policy is for tier 0, 1, 2 or 3", field_errors={"tier": ["0, 1, 2 or 3"]}
            )
        form = PolicyForm(request.POST, prefix=f"tier{tier}")
        forms_by_tier[tier] = form
        if form.is_valid():
            try:
                administration.update_policy(actor=actor, tier=tier, **form.cleaned_data)
            except DomainError as exc:
                _apply_errors(form, exc)
                status = exc.status
            else:
                messages.success(request, f"Tier {tier} policy saved.")
                return redirect("approvals:policies")
        else:
            status = 400
    context = {
        "section": "approvals", "rows": [(p, forms_by_tier[p.tier]) for p in rows], "is_admin": is_admin,
        "admin_role": SiteRole.ADMIN,
    }
    return render(request, "approvals/policies.html", context, status=status)


def prompt_panel(actor, prompt):
    """What the prompt page shows of approvals: named approvers, open requests, break-glass flags."""
    named = administration.approvers_of(prompt)
    requests = selectors.visible_requests(actor).filter(prompt=prompt)
    return {
        "named": named,
        "open_requests": list(requests.filter(status__in=DeployRequest.OPEN)[:10]),
        "break_glass": list(requests.filter(break_glass=True).order_by("-created_at")[:5]),
        "policy": policy_for(prompt.tier),
        "can_lower_tier": access.may(actor, "tier_change.open", team=prompt.team),
        "can_break_glass": access.may(actor, "break_glass", team=prompt.team),
        "can_request": access.may(actor, "deploy_request.open", team=prompt.team),
    }

