"""The quarterly access review SOC 2 auditors ask for: every account with its site roles, team roles,
the scopes of its live API tokens, its last sign-in and last token use, and what it may approve —
which tiers in which team, derived by ``approvals.policy.approval_eligibility`` (the rule a decision
is checked against, never a copy of it). The page, the CSV, the JSON API and a sign-off all read
``build()``; ``fingerprint()`` is the sha256 of its canonical JSON, which a sign-off records.

Times are given to the day (UTC): a review asks who has not signed in for a quarter, not at which
second, and a report that changed with every request of every token could never be signed."""

import csv
import datetime
import hashlib
import io

from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.policy import approval_eligibility, policies
from audit.chain import canonical
from audit.spreadsheet import safe_cell
from core import access
from registry.models import APIToken, Membership, Prompt, SiteRole, Team

COLUMNS = [
    "username", "name", "email", "active", "django_admin", "site_roles", "team_roles", "token_scopes",
    "active_tokens", "last_sign_in", "last_token_use", "can_approve",
]


def _day(value):
    return value.astimezone(datetime.UTC).date().isoformat() if value else None


def current_period(today=None):
    today = today or timezone.now().date()
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"


def _approval_rights(teams, in_force):
    """``(per user id: [{team, tier, prompts}], the matrix by team and tier)``; ``prompts`` None
    means every prompt of that tier in the team. Every team has a cell for every tier that asks for
    approvals, even one nobody may approve in."""
    rows = approval_eligibility(list(teams))
    slugs = dict(Prompt.objects.filter(pk__in={r.prompt_id for r in rows if r.prompt_id}).values_list("pk", "slug"))
    by_user, matrix = {}, {}
    for slug in teams.values():
        for policy in in_force:
            if policy.required_approvals:
                matrix[(slug, policy.tier)] = {"team": slug, "tier": policy.tier, "any_prompt": [], "prompts": {},
                                               "named_approvers_only": policy.named_approvers_only}
    for row in rows:
        key = (teams[row.team_id], row.tier)
        cell = matrix.setdefault(key, {
            "team": key[0], "tier": row.tier, "named_approvers_only": row.named_approvers_only,
            "any_prompt": [], "prompts": {},
        })
        if row.prompt_id is not None:  # listed even when nobody may approve it
            cell["prompts"].setdefault(slugs[row.prompt_id], [])
        for uid in row.user_ids:
            rights = by_user.setdefault(uid, {}).setdefault(key, {"team": key[0], "tier": row.tier, "prompts": []})
            if row.prompt_id is None:
                rights["prompts"] = None
                cell["any_prompt"].append(uid)
            else:
                rights["prompts"].append(slugs[row.prompt_id])
                cell["prompts"].setdefault(slugs[row.prompt_id], []).append(uid)
    return by_user, matrix


def build(*, actor):
    """The report as a dict of plain JSON values (users by username, then who may approve what)."""
    access.require(actor, "access_review.read")
    now = timezone.now()
    users = list(get_user_model().objects.order_by("username"))
    names = {u.pk: u.get_username() for u in users}
    site = {}
    for uid, role in SiteRole.objects.order_by("role").values_list("user_id", "role"):
        site.setdefault(uid, []).append(role)
    teams = dict(Team.objects.order_by("slug").values_list("pk", "slug"))
    memberships = {}
    for uid, team_id, role in Membership.objects.values_list("user_id", "team_id", "role"):
        memberships.setdefault(uid, []).append({"team": teams[team_id], "role": role})
    tokens, last_use = {}, {}
    for token in APIToken.objects.order_by("prefix"):
        if token.last_used_at and (token.user_id not in last_use or token.last_used_at > last_use[token.user_id]):
            last_use[token.user_id] = token.last_used_at
        if token.revoked_at is None and (token.expires_at is None or token.expires_at > now):
            tokens.setdefault(token.user_id, []).append({
                "prefix": token.prefix, "name": token.name, "scopes": sorted(token.scopes),
                "expires": _day(token.expires_at), "last_used": _day(token.last_used_at),
            })
    in_force = policies()
    rights, matrix = _approval_rights(teams, in_force)
    people = []
    for user in users:
        live = tokens.get(user.pk, [])
        people.append({
            "username": user.get_username(), "name": user.get_full_name(), "email": user.email,
            "active": user.is_active, "django_admin": user.is_active and (user.is_staff or user.is_superuser),
            "superuser": user.is_superuser, "site_roles": site.get(user.pk, []),
            "team_roles": sorted(memberships.get(user.pk, []), key=lambda m: m["team"]),
            "token_scopes": sorted({scope for token in live for scope in token["scopes"]}),
            "tokens": live, "last_sign_in": _day(user.last_login), "last_token_use": _day(last_use.get(user.pk)),
            "can_approve": sorted(rights.get(user.pk, {}).values(), key=lambda r: (r["team"], r["tier"])),
        })
    approvers = []
    for (_team, _tier), cell in sorted(matrix.items()):
        approvers.append({
            "team": cell["team"], "tier": cell["tier"], "named_approvers_only": cell["named_approvers_only"],
            "any_prompt": sorted(names[u] for u in cell["any_prompt"]),
            "prompts": {slug: sorted(names[u] for u in uids) for slug, uids in sorted(cell["prompts"].items())},
        })
    tiers = [{"tier": p.tier, "required_approvals": p.required_approvals,
              "named_approvers_only": p.named_approvers_only, "policy_version": p.version} for p in in_force]
    return {"as_of": now.date().isoformat(), "users": people, "approvers": approvers, "tier_policies": tiers}


def fingerprint(report):
    """The sha256 of the report's canonical JSON: what a sign-off records as the content signed."""
    return hashlib.sha256(canonical(report)).hexdigest()


def approve_text(rights):
    """``payments tier 0: loan-letter, card-letter; payments tier 1: every prompt``."""
    return "; ".join(
        f"{r['team']} tier {r['tier']}: {', '.join(r['prompts']) if r['prompts'] is not None else 'every prompt'}"
        for r in rights
    )


def as_csv(report):
    """One row per account, every cell neutralised for spreadsheets (``audit.spreadsheet``)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for person in report["users"]:
        writer.writerow([safe_cell(value) for value in (
            person["username"], person["name"], person["email"], "yes" if person["active"] else "no",
            "superuser" if person["superuser"] else ("staff" if person["django_admin"] else ""),
            " ".join(person["site_roles"]), " ".join(f"{m['team']}:{m['role']}" for m in person["team_roles"]),
            " ".join(person["token_scopes"]),
            "; ".join(f"{t['prefix']} ({t['name'] or 'unnamed'}): {' '.join(t['scopes'])}" for t in person["tokens"]),
            person["last_sign_in"] or "never", person["last_token_use"] or "never", approve_text(person["can_approve"]),
        )])
    return out.getvalue()
