"""Who may do what, in one table.

Every action a service performs names its rule here: the token scope it needs, the least team
role (on the team of the object acted on), the site roles that may do it without a team role,
whether site admins may, and whether the actor's own object is enough. Services call
``require(actor, action, team=…)`` before they write; pages and serializers ask ``may(…)`` to
decide what to offer, so the rule lives once. An action missing from the table cannot run:
``require`` raises ``UnknownAction``, and tests/test_access_table.py fails when a service that
opens an audited change asks for no entry. ``docs/access.md`` is generated from this table
(``python manage.py access_table``).
"""

from dataclasses import dataclass

from .errors import PermissionDenied
from .models import Membership, SiteRole

VIEWER, AUTHOR, APPROVER, OWNER = Membership.VIEWER, Membership.AUTHOR, Membership.APPROVER, Membership.OWNER
ADMIN, COMPLIANCE, RISK = SiteRole.ADMIN, SiteRole.COMPLIANCE, SiteRole.RISK
READERS = frozenset({COMPLIANCE, RISK})  # read every team's prompts (admins do too)


class UnknownAction(LookupError):
    """An action with no entry in ``ACTIONS``: a programming error, so nothing runs."""


@dataclass(frozen=True)
class Rule:
    scope: str  # the token scope needed (a browser session carries every scope)
    team_role: str | None = None  # least role in the object's team; None: no team role grants it
    site_roles: frozenset = frozenset()  # site roles that may, with no team role
    admins: bool = True  # site admins (and the system) may
    everyone: bool = False  # any signed-in person or token with the scope (lists filter by visibility)
    own: bool = False  # the actor's own object (their token, request, run) is enough, with the scope
    person: bool = False  # a person must act: never the system or a service account's job
    denied_code: str = ""  # the error code when refused, where a more telling one than the default exists
    summary: str = ""

    def who(self):
        """The rule in words, for docs/access.md and error pages."""
        parts = []
        if self.everyone:
            parts.append("anyone signed in")
        if self.team_role:
            parts.append(f"team {self.team_role}s and above")
        parts += [f"{role} (site)" for role in sorted(self.site_roles)]
        if self.admins and not self.everyone:
            parts.append("admins")
        if self.own:
            parts.append("the actor's own")
        return ", ".join(parts) or "nobody"


ACTIONS = {
    # -- registry: prompts, versions, pointers ------------------------------------------------------
    "read": Rule(
        "prompts:read", everyone=True,
        summary="read what one can see: prompts (team members; admin, compliance, risk all), versions, renders, "
        "teams, models, suites, runs, requests, policies (visibility filters every list and lookup)",
    ),
    "prompt.create": Rule("prompts:write", AUTHOR, summary="create a prompt in a team"),
    "prompt.edit": Rule("prompts:write", AUTHOR, summary="change name, description, tags"),
    "prompt.govern": Rule(
        "prompts:write", OWNER, summary="change owner, data categories, named approvers; raise the tier"
    ),
    "version.create": Rule("prompts:write", AUTHOR, person=True, summary="push a new version (a named person)"),
    "deployment.seed": Rule("deploy", OWNER, summary="point an environment at a version with no request (demo, tests)"),
    "kill_switch.set": Rule("deploy", APPROVER, summary="disable or re-enable serving in an environment"),
    "llm_model.create": Rule("prompts:write", site_roles=frozenset({RISK}), summary="register a model"),
    "llm_model.update": Rule("prompts:write", site_roles=frozenset({RISK}), summary="change a model's entry"),
    # -- risk: the model register's document and reviews ------------------------------------------
    "model_profile.edit": Rule(
        "prompts:write", site_roles=frozenset({RISK}),
        summary="change a model's document: owner, failure modes, intended use, limitations, linked suites",
    ),
    "model_review.sign": Rule(
        "prompts:write", site_roles=frozenset({RISK}), person=True,
        summary="sign a model's quarterly review: keep, restrict to tiers, retire (re-authenticated like tier 0)",
    ),
    "access_review.read": Rule(
        "audit:read", site_roles=frozenset({COMPLIANCE}),
        summary="read and export the access review: every account's roles, tokens, last use, approval rights",
    ),
    "access_review.sign_off": Rule(
        "audit:read", site_roles=frozenset({COMPLIANCE}), admins=False, person=True,
        summary="sign off a quarter's access review (in the browser, re-authenticated like tier 0)",
    ),
    "risk_policy.update": Rule("deploy", summary="choose per tier whether an overdue model review refuses or warns"),
    "evidence_pack.export": Rule(
        "audit:read", VIEWER, site_roles=frozenset({COMPLIANCE}),
        summary="download a deploy's evidence pack (the prompt's team, compliance: who may read its audit events)",
    ),
    # -- people, teams, tokens --------------------------------------------------------------------
    "team.create": Rule("prompts:write", summary="create a team"),
    "team.members": Rule("prompts:write", OWNER, summary="add, change or remove a member"),
    "site_role.change": Rule("prompts:write", summary="grant or revoke admin, compliance, risk"),
    "user.create": Rule("prompts:write", summary="create an account"),
    "user.flags": Rule("prompts:write", summary="activate, deactivate, staff, superuser"),
    "user.password": Rule("prompts:write", summary="set someone's password"),
    "token.issue": Rule("prompts:read", own=True, summary="issue an API token (one's own; admins anyone's)"),
    "token.revoke": Rule("prompts:read", own=True, summary="revoke an API token (one's own; admins anyone's)"),
    # -- approvals --------------------------------------------------------------------------------
    "deploy_request.open": Rule("deploy", AUTHOR, person=True, summary="open a deploy or rollback request"),
    "deploy_request.withdraw": Rule("deploy", OWNER, own=True, summary="withdraw an open request (its requester)"),
    "deploy_request.decide": Rule(
        "deploy", everyone=True, person=True,
        summary="approve, reject, sign a review (who is eligible is the tier policy's: named approvers, SoD)",
    ),
    "deploy_request.deploy": Rule("deploy", AUTHOR, summary="deploy an approved request"),
    "break_glass": Rule(
        "deploy", OWNER, admins=False, person=True, denied_code="break_glass_owners_only",
        summary="roll back at once, reviewed afterwards",
    ),
    "tier_change.open": Rule("prompts:write", OWNER, summary="ask to lower a prompt's tier"),
    "approvers.set": Rule("prompts:write", OWNER, summary="name a prompt's approvers and approver groups"),
    "approver_group.save": Rule("prompts:write", OWNER, summary="create or change a team's approver group"),
    "policy.update": Rule("deploy", summary="edit a tier's approval policy"),
    # -- evals ------------------------------------------------------------------------------------
    "suite.edit": Rule("evals:run", AUTHOR, summary="create a suite, add or replace cases (site-wide: admins)"),
    "run.start": Rule("evals:run", AUTHOR, summary="start an eval run"),
    "run.cancel": Rule("evals:run", APPROVER, own=True, summary="cancel a run (its starter, or approvers)"),
    "gate.set": Rule("prompts:write", OWNER, summary="choose a prompt's gate suites"),
    "drift.acknowledge": Rule("evals:run", APPROVER, summary="acknowledge a drift notice"),
    "budget.set": Rule("prompts:write", OWNER, summary="set or remove a team's monthly eval budget"),
    "budget.override": Rule(
        "evals:run", OWNER, person=True,
        summary="let a team's runs go on past its budget for the current month, with a reason",
    ),
    # -- webhooks ---------------------------------------------------------------------------------
    "webhook.read": Rule("prompts:read", OWNER, summary="see subscriptions and deliveries (site-wide: admins)"),
    "webhook.manage": Rule(
        "prompts:write", OWNER, summary="create, change, delete, test, redeliver, rotate (site-wide: admins)"
    ),
    # -- the audit stream to a SIEM (webhooks.audit_stream) --------------------------------------
    "audit_stream.read": Rule(
        "audit:read", site_roles=frozenset({COMPLIANCE}), summary="see audit streams: cursor, lag, last error"
    ),
    "audit_stream.manage": Rule(
        "prompts:write", person=True, summary="create, change, pause or resume an audit stream to a SIEM"
    ),
    # -- audit ------------------------------------------------------------------------------------
    "audit.read": Rule("audit:read", everyone=True, summary="read and export audit events (filtered to the visible)"),
    "audit.verify": Rule("audit:read", site_roles=frozenset({COMPLIANCE}), summary="verify the audit chain"),
    "audit.rotate_key": Rule(
        "prompts:write",
        summary="rotate the audit signing key (the operator's `manage.py audit_rotate_key`, as the system)",
    ),
}

# Services that open an audited change without an entry of their own, and why.
INTERNAL = {
    "registry.services.deployments.move_pointer": "the pointer move inside approvals.deploy and break-glass",
    "registry.services.prompts.create_prompt_with_first_version": "create_prompt and create_version in one change, "
    "each asking its own row",
    "evals.gates.evaluate_gate": "a check inside deploy, or behind the reader check of the gate API",
    "evals.drift._schedule_one": "the drift scheduler's own runs, as the system (beat)",
    "evals.runner.finishing.finalize": "a worker closing a run, as the system",
    "webhooks.operator.sync_operator_subscription": "the operator's alert webhook, from settings at start-up",
    "risk.services.notify_review_due": "the daily model.review_due reminder, as the system (beat)",
    "sso.identities._sign_in": "an OIDC sign-in, as the system for the IdP: its account and role changes go "
    "through the registry's services, each asking its own row",
}


def as_markdown():
    """The table as docs/access.md shows it (a test keeps the two the same)."""
    lines = [
        "# Who may do what",
        "",
        "Generated from `core/access.py` by `python manage.py access_table`; do not edit by hand.",
        "Every service checks its row before it writes. A browser session carries every scope; an API",
        "token only those it was issued with. Team roles rank viewer < author < approver < owner and",
        "apply to the team of the object acted on; site-wide objects (shared suites, site-wide",
        "webhooks) have no team, so only the site roles listed may act on them.",
        "",
        "| Action | What it is | Token scope | Who may |",
        "|---|---|---|---|",
    ]
    for action, entry in ACTIONS.items():
        who = entry.who() + ("; a person, never the system" if entry.person else "")
        lines.append(f"| `{action}` | {entry.summary} | `{entry.scope}` | {who} |")
    lines += ["", "Checks inside another action, with no row of their own:", ""]
    lines += [f"- `{name}`: {why}" for name, why in INTERNAL.items()]
    return "\n".join(lines) + "\n"


def rule(action):
    try:
        return ACTIONS[action]
    except KeyError:
        raise UnknownAction(f"no access rule for '{action}': add it to core/access.py") from None


def teams_of(actor, min_role=VIEWER):
    """The teams where the actor is an active member with at least ``min_role``, as a queryset:
    every membership query of the apps goes through here, so none forgets ``is_active``."""
    from .models import Team

    if actor.user is None or not actor.user.is_active:
        return Team.objects.none()
    roles = [role for role, rank in Membership.RANK.items() if rank >= Membership.RANK[min_role]]
    return Team.objects.filter(
        pk__in=Membership.objects.filter(user=actor.user, user__is_active=True, role__in=roles).values("team_id")
    )


def team_role(actor, team):
    """The actor's role in ``team``, or None (inactive people have none)."""
    if actor.user is None or team is None:
        return None
    return (
        Membership.objects.filter(team=team, user=actor.user, user__is_active=True)
        .values_list("role", flat=True)
        .first()
    )


def require(actor, action, *, team=None, own=False):
    """Pass, or raise ``PermissionDenied`` with a code saying what is missing.

    ``team`` is the team of the object acted on (None for site-wide objects, which team roles
    cannot grant); ``own`` says the object is the actor's (their token, their request)."""
    entry = rule(action)
    if entry.person and (actor.user is None or actor.system):
        raise PermissionDenied("only a person can do this; a service or the system cannot", code="not_a_person")
    if not actor.has_scope(entry.scope):
        raise PermissionDenied(f"this token lacks the '{entry.scope}' scope", code="scope_missing")
    if entry.everyone or (own and entry.own):
        return
    if entry.admins and actor.is_admin:
        return
    if actor.site_roles & entry.site_roles:
        return
    role = team_role(actor, team) if entry.team_role else None
    if role is not None and Membership.RANK[role] >= Membership.RANK[entry.team_role]:
        return
    raise _refusal(entry, team, role)


def may(actor, action, *, team=None, own=False):
    """Whether ``require`` would pass: for pages and serializers deciding what to offer."""
    try:
        require(actor, action, team=team, own=own)
    except PermissionDenied:
        return False
    return True


def _refusal(entry, team, role):
    if entry.team_role and team is not None:
        if role is None:
            detail, code = f"you are not a member of team '{team.slug}'", "not_team_member"
        else:
            detail = f"this needs the '{entry.team_role}' role in team '{team.slug}'; you are '{role}'"
            code = "role_too_low"
        if entry.denied_code:
            code = entry.denied_code
        return PermissionDenied(detail, code=code)
    allowed = sorted(entry.site_roles) + (["admin"] if entry.admins else [])
    if entry.team_role:  # a site-wide object: team roles cannot grant it
        return PermissionDenied(
            f"site-wide objects are managed by {' or '.join(allowed) or 'nobody'}",
            code=entry.denied_code or "admin_only",
        )
    return PermissionDenied(
        f"this needs the site role {' or '.join(allowed)}", code=entry.denied_code or "site_role_required"
    )
