"""Browser pages for who may do what: your API tokens (/settings/tokens/), teams and their members
(/teams/), and people's site roles (/settings/people/, admins). As thin as the API views: every
change goes through ``registry.services`` (tokens, teams), whose messages the pages show."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core import access
from core.errors import Conflict, NotFound, ValidationFailed
from core.pages import registry_page

from . import access_selectors, panels, services
from .access_forms import SCOPE_HELP, MemberForm, SiteRoleForm, TeamForm, TokenForm
from .models import APIToken, Membership, SiteRole
from .services import tokens

PAGE_SIZE = 50


def _settings(actor, tab, **context):
    return {"section": "settings", "tab": tab, "may_see_people": access.may(actor, "site_role.change"), **context}


# --- API tokens ----------------------------------------------------------------------------------
def _token_form(data=None):
    return TokenForm(data, default_days=tokens.default_days(), max_days=tokens.max_days())


@registry_page
@require_http_methods(["GET", "POST"])
def token_list(request, actor):
    """Your tokens (admins: everyone's), the form for a new one, and a new token's secret, shown in
    the answer to the POST that made it and kept nowhere else."""
    form = _token_form(request.POST if request.method == "POST" else None)
    created, status = None, 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                token, secret = tokens.issue_token(
                    actor=actor, user=request.user, scopes=form.cleaned_data["scopes"],
                    name=form.cleaned_data["name"], expires_at=form.expires_at(),
                )
            except ValidationFailed as exc:
                form.add_domain_errors(exc)
            else:
                created, status, form = {"token": token, "secret": secret}, 200, _token_form()
    user_filter = request.GET.get("user", "").strip() if actor.is_admin else ""
    page = Paginator(tokens.visible_tokens(actor, username=user_filter or None), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    now = timezone.now()
    rows = [(t, tokens.token_state(t, now), tokens.may_revoke_token(actor, t)) for t in page.object_list]
    grantable = set(tokens.grantable_scopes(request.user))
    chosen = set(form["scopes"].value() or [])
    scope_choices = [
        {"value": scope, "help": SCOPE_HELP[scope], "allowed": scope in grantable, "checked": scope in chosen}
        for scope in APIToken.SCOPES
    ]
    context = _settings(
        actor, "tokens", form=form, created=created, rows=rows, page=page, scope_choices=scope_choices,
        show_user=actor.is_admin, user_filter=user_filter, query=f"user={user_filter}" if user_filter else "",
        max_days=tokens.max_days(),
    )
    response = render(request, "registry/token_list.html", context, status=status)
    response["Cache-Control"] = "no-store"  # it may carry a secret shown once
    return response


@registry_page
@require_POST
def token_revoke(request, actor, token_id):
    token = tokens.get_visible_token(actor, token_id)
    tokens.revoke_token(actor=actor, token=token)
    messages.success(request, f"Token {token.prefix}… revoked: it stops working at once.")
    return redirect("registry:token-list")


# --- teams ---------------------------------------------------------------------------------------
@registry_page
@require_http_methods(["GET", "POST"])
def team_list(request, actor):
    """The teams you belong to (everyone's for admins, compliance and risk); admins create teams."""
    form = TeamForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                team = services.create_team(actor=actor, slug=form.cleaned_data["slug"], name=form.cleaned_data["name"])
            except (ValidationFailed, Conflict) as exc:
                form.add_domain_errors(exc)
            else:
                messages.success(request, f"Team {team.name} created. Add its first owner below.")
                return redirect("registry:team-detail", slug=team.slug)
    context = _settings(
        actor, "teams", teams=list(access_selectors.team_list(actor)), form=form,
        may_create=access.may(actor, "team.create"),
    )
    return render(request, "registry/team_list.html", context, status=status)


def _team_page(request, actor, team, *, add_form=None, status=200):
    context = _settings(
        actor, "teams", team=team, memberships=list(access_selectors.members(team)),
        may_manage=access.may(actor, "team.members", team=team), add_form=add_form or MemberForm(),
        roles=Membership.ROLE_CHOICES, **panels.team_page_parts(actor, team),  # evals' budget
    )
    return render(request, "registry/team_detail.html", context, status=status)


@registry_page
def team_detail(request, actor, slug):
    return _team_page(request, actor, access_selectors.get_visible_team(actor, slug))


@registry_page
@require_POST
def team_member_save(request, actor, slug):
    """Add a member, or change a member's role (the same service call)."""
    team = access_selectors.get_visible_team(actor, slug)
    form = MemberForm(request.POST)
    if form.is_valid():
        try:
            membership = services.add_member(
                actor=actor, team=team, username=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            messages.success(request, f"{membership.user.get_username()} is now {membership.role} of {team.name}.")
            return redirect("registry:team-detail", slug=team.slug)
    return _team_page(request, actor, team, add_form=form, status=400)


@registry_page
@require_POST
def team_member_remove(request, actor, slug):
    team = access_selectors.get_visible_team(actor, slug)
    username = request.POST.get("username", "")
    try:
        services.remove_member(actor=actor, team=team, username=username)
    except NotFound as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{username} removed from {team.name}.")
    return redirect("registry:team-detail", slug=team.slug)


# --- people and site roles (admins) --------------------------------------------------------------
def _people_page(request, actor, *, form=None, status=200):
    q = request.GET.get("q", "").strip()
    page = Paginator(access_selectors.people(actor, q=q), PAGE_SIZE).get_page(request.GET.get("page"))
    context = _settings(
        actor, "people", page=page, q=q, query=f"q={q}" if q else "", form=form or SiteRoleForm(),
        site_roles=SiteRole.ROLE_CHOICES,
    )
    return render(request, "registry/people.html", context, status=status)


@registry_page
def people(request, actor):
    return _people_page(request, actor)


@registry_page
@require_POST
def site_role_grant(request, actor):
    form = SiteRoleForm(request.POST)
    if form.is_valid():
        try:
            services.grant_site_role(
                actor=actor, username=form.cleaned_data["username"], role=form.cleaned_data["role"]
            )
        except ValidationFailed as exc:
            form.add_domain_errors(exc)
        else:
            messages.success(request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}.")
            return redirect("registry:people")
    return _people_page(request, actor, form=form, status=400)


@registry_page
@require_POST
def site_role_revoke(request, actor):
    username, role = request.POST.get("username", ""), request.POST.get("role", "")
    try:
        services.revoke_site_role(actor=actor, username=username, role=role)
    except NotFound as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{username} is no longer {role}.")
    return redirect("registry:people")
