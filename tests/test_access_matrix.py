"""The access matrix: every API operation (from the OpenAPI schema) and every page that takes a
POST (from the URL conf), each run by the whole cast, asserting the status and error code.

Each route names its rule below, in the terms a reviewer checks against docs/access.md: the token
scope, the least team role, the site roles, whether admins may. ``expected()`` turns a rule into
the answer each member of the cast must get; the cells then run against the real app, each in a
savepoint over one shared world (tests/access_world.py). A route added without a row here fails
``test_every_api_operation_has_a_row`` or ``test_every_page_has_a_row``.
"""

import datetime
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from core.actors import Actor
from registry.models import Membership
from risk import access_review
from tests.access_world import CAST, PEOPLE, build
from tests.routes import api_operations, page_routes

pytestmark = pytest.mark.django_db  # each cell in a savepoint of the module's world

ALL_SCOPES = frozenset({"prompts:read", "prompts:write", "evals:run", "deploy", "audit:read"})
TEAM_ROLE = {"viewer": "viewer", "author": "author", "approver": "approver", "owner": "owner"}
SITE = {"compliance": {"compliance"}, "risk": {"risk"}, "admin": {"admin"}}
FORBIDDEN, HIDDEN = 403, 404


@dataclass(frozen=True)
class Rule:
    ok: int  # the status of a request that is allowed
    scope: str | None = None  # the action's token scope (None: reading is all it needs)
    role: str | None = None  # least role in team 'payments', the team of every object here
    site: frozenset = frozenset()  # site roles that may
    admins: bool = True
    everyone: bool = False  # anyone holding the scope
    reads_first: bool = True  # the route first reads (prompts:read, then the object's visibility)
    lookup: str = "team"  # "team": hidden (404) from who cannot read the team; "owners": from non-members,
    # and readable only by owners (webhooks); "none": nothing is looked up first
    own: frozenset = frozenset()  # actors whose own object it is
    special: dict = field(default_factory=dict)  # actor -> (status, code), where the domain decides


def expected(actor, rule):
    """(status, code or None) for ``actor`` running a route under ``rule``."""
    if actor in rule.special:
        return rule.special[actor]
    if actor in ("anonymous", "deactivated"):
        return 401, "not_authenticated" if actor == "anonymous" else "invalid_token"
    token = actor.startswith("token:")
    scopes = {actor.removeprefix("token:")} if token else ALL_SCOPES
    user = "admin" if token else actor
    role, site = TEAM_ROLE.get(user), SITE.get(user, set())
    is_admin = "admin" in site
    if rule.reads_first and "prompts:read" not in scopes:
        return FORBIDDEN, "scope_missing"
    if rule.lookup == "team" and role is None and not site:
        return HIDDEN, None
    if rule.lookup == "owners" and not is_admin and role is None:
        return HIDDEN, None
    if rule.lookup == "own" and not is_admin and actor not in rule.own:
        return HIDDEN, "not_found"
    if rule.scope and rule.scope not in scopes:
        return FORBIDDEN, "scope_missing"
    if rule.everyone or actor in rule.own or (rule.admins and is_admin) or site & rule.site:
        return rule.ok, None
    if rule.role and role and Membership.RANK[role] >= Membership.RANK[rule.role]:
        return rule.ok, None
    if rule.role:
        return FORBIDDEN, "not_team_member" if role is None else "role_too_low"
    return FORBIDDEN, "site_role_required"


# --- the API ---------------------------------------------------------------------------------------
READ = Rule(200, everyone=True)
LIST = Rule(200, everyone=True, lookup="none")
ELIGIBLE = {  # who may decide on the pending request: team approvers and owners who neither wrote nor asked
    "viewer": (403, "not_eligible_approver"), "author": (403, "author_cannot_approve"),
    "compliance": (403, "not_eligible_approver"), "risk": (403, "not_eligible_approver"),
    "admin": (403, "not_eligible_approver"),
}
DECIDE = Rule(200, "deploy", everyone=True, special=ELIGIBLE)
STREAM_CHANGE = Rule(200, "prompts:write", reads_first=False, lookup="none", special={
    "token:prompts:write": (403, "scope_missing"),  # the lookup needs audit:read (audit_stream.read)
})
NEW_CASE = [{"vars": {"name": "Bo"}, "assertions": [{"type": "contains", "value": "Bo"}]}]

API = {
    # audit
    ("get", "/api/v1/audit-events/"): (Rule(200, "audit:read", everyone=True, reads_first=False, lookup="none"), None),
    ("get", "/api/v1/audit-events/export"): (
        Rule(200, "audit:read", everyone=True, reads_first=False, lookup="none"), None),
    # approvals
    ("get", "/api/v1/deploy-requests/"): (LIST, None),
    ("post", "/api/v1/deploy-requests/"): (Rule(201, "deploy", "author", reads_first=False), {
        "prompt": "loan-letter", "version": 3, "environment": "production", "rationale": "friendlier greeting"}),
    ("get", "/api/v1/deploy-requests/{pending}/"): (READ, None),
    ("post", "/api/v1/deploy-requests/{pending}/approve"): (DECIDE, {"comment": "reads well"}),
    ("post", "/api/v1/deploy-requests/{pending}/reject"): (DECIDE, {"comment": "too informal"}),
    ("post", "/api/v1/deploy-requests/{glass}/sign-review"): (
        Rule(200, "deploy", everyone=True, special={**ELIGIBLE, "owner": (403, "self_approval")}), {}),
    ("post", "/api/v1/deploy-requests/{approved}/deploy"): (Rule(200, "deploy", "author"), {}),
    # risk: a deploy's evidence pack (the break-glass rollback is the world's deployed request)
    ("get", "/api/v1/deploy-requests/{glass}/evidence"): (
        Rule(200, "audit:read", "viewer", site=frozenset({"compliance"}), reads_first=False), None),
    ("post", "/api/v1/deploy-requests/{pending}/withdraw"): (Rule(200, "deploy", "owner", own={"author"}), {}),
    ("post", "/api/v1/deploy-requests/{approved}/withdraw-decision"): (
        Rule(409, "deploy", everyone=True, special={"approver": (200, None)}), {}),
    ("get", "/api/v1/tier-policies/"): (LIST, None),
    ("get", "/api/v1/tier-policies/{tier}/"): (LIST, None),
    ("patch", "/api/v1/tier-policies/{tier}/"): (
        Rule(200, "deploy", lookup="none"), {"required_approvals": 2, "reason": "r"}
    ),
    ("get", "/api/v1/teams/{team}/approver-groups/"): (READ, None),
    ("post", "/api/v1/teams/{team}/approver-groups/"): (
        Rule(200, "prompts:write", "owner"), {"slug": "reviewers", "name": "Reviewers", "members": ["approver"]}),
    # evals
    ("get", "/api/v1/eval-runs/"): (LIST, None),
    ("post", "/api/v1/eval-runs/"): (
        Rule(202, "evals:run", "author"), {"prompt": "loan-letter", "version": 2, "suite": "letters-core"}),
    ("get", "/api/v1/eval-runs/{run}/"): (READ, None),
    ("post", "/api/v1/eval-runs/{run}/cancel"): (Rule(200, "evals:run", "approver", own={"author"}), {}),
    ("get", "/api/v1/eval-runs/{run}/compare/"): (READ, "?against={finished_run}"),
    ("get", "/api/v1/eval-runs/{run}/results/"): (READ, None),
    ("post", "/api/v1/notices/{notice}/acknowledge"): (Rule(200, "evals:run", "approver"), {}),
    ("get", "/api/v1/costs/"): (LIST, None),  # each sees the spend of the teams they can see
    ("get", "/api/v1/teams/{team}/budget"): (READ, None),
    ("put", "/api/v1/teams/{team}/budget"): (Rule(200, "prompts:write", "owner"), {"monthly_usd": "50"}),
    ("post", "/api/v1/teams/{team}/budget/override"): (
        Rule(201, "evals:run", "owner"), {"reason": "incident 42 re-runs"}),
    ("get", "/api/v1/suites/"): (LIST, None),
    ("post", "/api/v1/suites/"): (
        Rule(201, "evals:run", "author", reads_first=False, lookup="none"),
        {"slug": "tone", "name": "Tone", "team": "payments"}),
    ("get", "/api/v1/suites/{suite}/"): (READ, None),
    ("get", "/api/v1/suites/{suite}/cases/"): (READ, None),
    ("post", "/api/v1/suites/{suite}/cases/"): (Rule(201, "evals:run", "author"), NEW_CASE),
    ("get", "/api/v1/suites/{suite}/cases/export"): (READ, None),
    ("get", "/api/v1/prompts/{prompt}/gate"): (READ, None),
    ("put", "/api/v1/prompts/{prompt}/gate"): (Rule(200, "prompts:write", "owner"), {"suites": []}),
    ("get", "/api/v1/prompts/{prompt}/notices"): (READ, None),
    ("get", "/api/v1/prompts/{prompt}/versions/{number}/gate"): (READ, "?environment=production"),
    # registry
    ("get", "/api/v1/llm-models/"): (LIST, None),
    ("post", "/api/v1/llm-models/"): (
        Rule(201, "prompts:write", site=frozenset({"risk"}), reads_first=False, lookup="none"),
        {"provider": "offline", "model_id": "offline-echo-2", "owner": "risk"}),
    ("get", "/api/v1/llm-models/{llm}/"): (LIST, None),
    ("get", "/api/v1/llm-models/{llm_model}/reviews/"): (LIST, None),
    # the access review (risk/): compliance and admins, with audit:read
    ("get", "/api/v1/access-review/"): (
        Rule(200, "audit:read", site=frozenset({"compliance"}), reads_first=False, lookup="none"), None),
    ("get", "/api/v1/access-review/sign-offs/"): (
        Rule(200, "audit:read", site=frozenset({"compliance"}), reads_first=False, lookup="none"), None),
    ("post", "/api/v1/llm-models/{llm_model}/reviews/"): (
        Rule(201, "prompts:write", site=frozenset({"risk"}), lookup="none"),
        {"findings": "still fine", "decision": "keep"}),
    ("patch", "/api/v1/llm-models/{llm}/"): (
        Rule(200, "prompts:write", site=frozenset({"risk"}), lookup="none"), {"failure_modes": "echoes input"}),
    ("get", "/api/v1/prompts/"): (LIST, None),
    ("post", "/api/v1/prompts/"): (Rule(201, "prompts:write", "author", reads_first=False, lookup="none"), {
        "slug": "card-letter", "name": "Card letter", "team": "payments", "tier": 2, "owner": "owner"}),
    ("get", "/api/v1/prompts/{prompt}/"): (READ, None),
    ("patch", "/api/v1/prompts/{prompt}/"): (Rule(200, "prompts:write", "author"), {"description": "Letters."}),
    ("post", "/api/v1/prompts/{prompt}/break-glass"): (
        Rule(201, "deploy", "owner", admins=False,
             special={"compliance": (403, "break_glass_owners_only"), "risk": (403, "break_glass_owners_only"),
                      "admin": (403, "break_glass_owners_only"),
                      "viewer": (403, "break_glass_owners_only"), "author": (403, "break_glass_owners_only"),
                      "approver": (403, "break_glass_owners_only")}),
        {"environment": "production", "version": 2, "reason": "v1 misquotes the rate"}),
    ("post", "/api/v1/prompts/{prompt}/kill-switch"): (
        Rule(200, "deploy", "approver"), {"environment": "production", "disabled": True, "reason": "incident 42"}),
    ("get", "/api/v1/prompts/{prompt}/resolve"): (READ, "?environment=production"),
    ("get", "/api/v1/prompts/{prompt}/versions/"): (READ, None),
    ("post", "/api/v1/prompts/{prompt}/versions/"): (Rule(201, "prompts:write", "author"), {
        "messages": [{"role": "system", "content": "Hi {{ name }}."}],
        "variables": {"name": {"type": "string", "required": True}},
        "model": {"provider": "offline", "name": "offline-echo-1", "params": {}, "response_schema": None},
        "message": "shorter"}),
    ("get", "/api/v1/prompts/{prompt}/versions/{number}/"): (READ, None),
    ("get", "/api/v1/prompts/{prompt}/versions/{number}/diff/"): (READ, None),
    ("post", "/api/v1/prompts/{prompt}/versions/{number}/render"): (READ, {"variables": {"name": "Ada"}}),
    ("get", "/api/v1/teams/"): (LIST, None),
    ("post", "/api/v1/teams/"): (
        Rule(201, "prompts:write", reads_first=False, lookup="none"), {"slug": "claims", "name": "Claims"}),
    ("get", "/api/v1/teams/{team}/"): (READ, None),
    ("get", "/api/v1/teams/{team}/members/"): (READ, None),
    ("post", "/api/v1/teams/{team}/members/"): (
        Rule(201, "prompts:write", "owner"), {"username": "newcomer", "role": "viewer"}),
    ("get", "/api/v1/tokens/"): (LIST, None),
    ("post", "/api/v1/tokens/"): (Rule(201, lookup="none", everyone=True), {"name": "ci", "scopes": ["prompts:read"]}),
    ("delete", "/api/v1/tokens/{spare_token}/"): (Rule(204, lookup="own", own={"author"}), None),
    # webhooks
    ("get", "/api/v1/webhooks/"): (LIST, None),
    ("post", "/api/v1/webhooks/"): (
        Rule(201, "prompts:write", "owner", reads_first=False, lookup="none"),
        {"url": "http://127.0.0.1:9/other", "events": ["*"], "team": "payments"}),
    ("get", "/api/v1/webhooks/{hook}/"): (Rule(200, role="owner", lookup="owners"), None),
    ("patch", "/api/v1/webhooks/{hook}/"): (
        Rule(200, "prompts:write", "owner", lookup="owners"), {"description": "Pager"}),
    ("delete", "/api/v1/webhooks/{hook}/"): (Rule(204, "prompts:write", "owner", lookup="owners"), None),
    ("get", "/api/v1/webhooks/{hook}/deliveries/"): (Rule(200, role="owner", lookup="owners"), None),
    ("post", "/api/v1/webhooks/{hook}/rotate-secret"): (Rule(200, "prompts:write", "owner", lookup="owners"), {}),
    ("post", "/api/v1/webhooks/{hook}/test"): (Rule(202, "prompts:write", "owner", lookup="owners"), {}),
    ("post", "/api/v1/webhooks/deliveries/{delivery}/redeliver"): (
        Rule(202, "prompts:write", "owner", lookup="owners"), {}),
    # audit streams to a SIEM: admins and compliance read them with audit:read; admins change them with
    # prompts:write. A change looks the stream up first (audit:read), so no one-scope token may make it.
    ("get", "/api/v1/audit-streams/"): (
        Rule(200, "audit:read", site=frozenset({"compliance"}), reads_first=False, lookup="none"), None),
    ("post", "/api/v1/audit-streams/"): (Rule(201, "prompts:write", reads_first=False, lookup="none"), {
        "name": "siem-two", "url": "http://127.0.0.1:9/siem-two", "format": "jsonl", "batch_size": 10}),
    ("get", "/api/v1/audit-streams/{stream}/"): (
        Rule(200, "audit:read", site=frozenset({"compliance"}), reads_first=False, lookup="none"), None),
    ("patch", "/api/v1/audit-streams/{stream}/"): (STREAM_CHANGE, {"batch_size": 20}),
    ("post", "/api/v1/audit-streams/{stream}/pause"): (STREAM_CHANGE, {}),
    ("post", "/api/v1/audit-streams/{stream}/resume"): (  # the world's stream is active: already so
        Rule(409, "prompts:write", reads_first=False, lookup="none", special=STREAM_CHANGE.special), {}),
}

SCHEMA_NAMES = {  # the schema's parameter names -> the world's objects
    "{id}": None, "{slug}": None, "{run_id}": "{run}", "{notice_id}": "{notice}", "{subscription_id}": "{hook}",
    "{delivery_id}": "{delivery}", "{tier}": "{tier}", "{number}": "{number}",
}


def _as_schema_path(path):
    """Our row's path with the schema's parameter names, to match the two lists."""
    for ours, theirs in (
        ("{pending}", "{id}"), ("{approved}", "{id}"), ("{glass}", "{id}"), ("{llm}", "{id}"),
        ("{llm_model}", "{model_id}"),
        ("{spare_token}", "{id}"), ("{run}", "{run_id}"), ("{notice}", "{notice_id}"), ("{hook}", "{subscription_id}"),
        ("{delivery}", "{delivery_id}"), ("{stream}", "{stream_id}"), ("{prompt}", "{slug}"), ("{suite}", "{slug}"),
        ("{team}", "{slug}"),
    ):
        path = path.replace(ours, theirs)
    return path


def test_every_api_operation_has_a_row():
    ours = {(method, _as_schema_path(path)) for method, path in API}
    theirs = api_operations()
    assert sorted(theirs - ours) == [], "API operations with no row in the access matrix"
    assert sorted(ours - theirs) == [], "rows for operations the API no longer has"


# --- the pages ---------------------------------------------------------------------------------
# Every page route: None for pages that only read (GET), else the POST's rule and form body. A
# refused POST answers 403 (or 404 where the object is hidden) on the error page; an allowed one
# redirects (302) after doing its work, or answers 200 with the result.
PAGES = {
    "healthz": None, "metrics": None, "accounts/login/": None, "accounts/logout/": None,
    "sso/login/": None, "sso/callback/": None,  # GET only: the OIDC redirect and its callback (tests/sso/)
    "audit/": None, "audit/export/": None,
    "audit/verify/": (Rule(302, lookup="none", site=frozenset({"compliance"})), {}),
    "evals/": None, "evals/runs/<int:run_id>/": None, "evals/runs/<int:run_id>/progress/": None,
    "evals/runs/<int:run_id>/cancel/": (Rule(302, "evals:run", "approver", own={"author"}), {}),
    "evals/runs/<int:run_id>/compare/": None,
    "evals/prompts/<slug:slug>/versions/<int:number>/run/": (
        Rule(302, "evals:run", "author"), {"suite": "letters-core"}),
    "evals/suites/": None,
    # Who authors in another team gets the form, whose team list holds only their own: 400.
    "evals/suites/new/": (Rule(302, "evals:run", "author", lookup="none", special={"outsider": (400, None)}),
                          {"slug": "tone", "name": "Tone", "team": "payments"}),
    "evals/suites/<slug:slug>/": None,
    "evals/suites/<slug:slug>/cases/upload/": (Rule(302, "evals:run", "author"), "cases"),
    "evals/notices/<int:notice_id>/acknowledge/": (Rule(302, "evals:run", "approver"), {}),
    # eval costs and team budgets (evals/urls_costs.py): the page and CSV read what one can see
    "costs/": None, "costs/export/": None,
    "costs/teams/<slug:slug>/budget/": (Rule(302, "prompts:write", "owner"), {"monthly_usd": "50"}),
    "costs/teams/<slug:slug>/override/": (Rule(302, "evals:run", "owner"), {"reason": "incident 42 re-runs"}),
    "approvals/": None, "approvals/requests/": None, "approvals/requests/<int:pk>/": None,
    "approvals/requests/<int:pk>/<slug:action>": (Rule(302, "deploy", "owner", own={"author"}), {}),
    "approvals/new/<slug:slug>/<int:number>/": (
        Rule(302, "deploy", "author"), {"environment": "production", "rationale": "friendlier greeting"}),
    "approvals/rollback/<slug:slug>/": (Rule(302, "deploy", "author"), {"environment": "production",
                                                                        "rationale": "back to the last one"}),
    "approvals/break-glass/<slug:slug>/": (
        Rule(302, "deploy", "owner", admins=False,
             special={name: (403, None) for name in ("viewer", "author", "approver", "compliance", "risk", "admin")}),
        {"environment": "production", "version": 2, "reason": "v1 misquotes the rate"}),
    "approvals/tier-change/<slug:slug>/": (Rule(302, "prompts:write", "owner"),
                                           {"tier": 2, "rationale": "no longer customer facing"}),
    "approvals/policies/": (Rule(302, "deploy", lookup="none"), {
        "tier": "1", "tier1-required_approvals": "2", "tier1-allowed_model_statuses": ["approved"],
        "tier1-reason": "two eyes"}),
    "settings/webhooks/": None,
    "settings/webhooks/new/": (Rule(302, "prompts:write", "owner", lookup="none", special={"outsider": (400, None)}),
                               {"url": "http://127.0.0.1:9/other", "events": ["*"], "team": "payments"}),
    "settings/webhooks/<int:subscription_id>/": None,
    "settings/webhooks/<int:subscription_id>/deliveries/": None,
    "settings/webhooks/<int:subscription_id>/edit/": (
        Rule(302, "prompts:write", "owner", lookup="owners"),
        {"url": "http://127.0.0.1:9/hook", "events": ["*"], "description": "Pager", "active": "on"}),
    "settings/webhooks/<int:subscription_id>/test/": (Rule(302, "prompts:write", "owner", lookup="owners"), {}),
    "settings/webhooks/<int:subscription_id>/rotate/": (Rule(302, "prompts:write", "owner", lookup="owners"), {}),
    "settings/webhooks/<int:subscription_id>/delete/": (Rule(302, "prompts:write", "owner", lookup="owners"), {}),
    "settings/webhooks/deliveries/<int:delivery_id>/redeliver/": (
        Rule(302, "prompts:write", "owner", lookup="owners"), {}),
    # audit streams to a SIEM: admins configure (compliance reads their status, a GET)
    "settings/webhooks/streams/": None, "settings/webhooks/streams/<int:stream_id>/": None,
    "settings/webhooks/streams/<int:stream_id>/status/": None,
    "settings/webhooks/streams/new/": (Rule(302, "prompts:write", lookup="none"), {
        "name": "siem-two", "url": "http://127.0.0.1:9/siem-two", "format": "jsonl", "batch_size": "10",
        "interval_seconds": "5", "start": "beginning"}),
    "settings/webhooks/streams/<int:stream_id>/edit/": (Rule(302, "prompts:write", lookup="none"), {
        "url": "http://127.0.0.1:9/siem-moved", "format": "jsonl", "batch_size": "10", "interval_seconds": "5"}),
    "settings/webhooks/streams/<int:stream_id>/pause/": (Rule(302, "prompts:write", lookup="none"),
                                                         {"active": "false"}),
    "": None, "prompts/<slug:slug>/": None,
    "prompts/<slug:slug>/versions/new/": (Rule(302, "prompts:write", "author"), lambda ids: {
        "messages-TOTAL_FORMS": "1", "messages-INITIAL_FORMS": "1", "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000", "messages-0-role": "system", "messages-0-content": "Hi {{ name }}.",
        "variables": '{"name": {"type": "string", "required": true}}', "llm_model": str(ids["llm"]),
        "params": "{}", "response_schema": "", "message": "shorter"}),
    "prompts/<slug:slug>/versions/<int:number>/": None, "prompts/<slug:slug>/diff/": None,
    "prompts/<slug:slug>/history/": None,
    # Setting a prompt up (registry/views_setup.py, views_kill_switch.py). Who authors in another team
    # gets the form, whose team list holds only their own: 400.
    "new-prompt/": (Rule(302, "prompts:write", "author", lookup="none", special={"outsider": (400, None)}),
                    lambda ids: {
        "slug": "claim-reply", "name": "Claim reply", "team": "payments", "tier": "2", "owner": "owner",
        "description": "", "tags": "claims", "data_categories": ["pii"],
        "messages-TOTAL_FORMS": "1", "messages-INITIAL_FORMS": "1", "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000", "messages-0-role": "system", "messages-0-content": "Hi {{ name }}.",
        "variables": '{"name": {"type": "string", "required": true}}', "llm_model": str(ids["llm"]),
        "params": "{}", "response_schema": "", "message": "first"}),
    # An author's form has no owner or data categories: sent anyway, they are not read.
    "prompts/<slug:slug>/settings/": (Rule(302, "prompts:write", "author"), {
        "name": "Loan letter", "description": "Letters.", "tags": "letters", "owner": "owner",
        "data_categories": ["pii"]}),
    "prompts/<slug:slug>/settings/approvers/": (Rule(302, "prompts:write", "owner"),
                                                {"approvers": ["approver"], "approver_groups": "letters"}),
    "prompts/<slug:slug>/settings/tier/": (Rule(302, "prompts:write", "owner"), {"tier": "0"}),
    "prompts/<slug:slug>/gate/": (Rule(302, "prompts:write", "owner"),
                                  {"use_0": "on", "rate_0": "0.9", "max_regression": "0.05"}),
    "prompts/<slug:slug>/kill-switch/": (Rule(302, "deploy", "approver"),
                                         {"environment": "production", "disabled": "true", "reason": "leaks"}),
    "teams/": (Rule(302, "prompts:write", lookup="none"), {"slug": "claims", "name": "Claims"}),
    "teams/<slug:slug>/": None,
    "teams/<slug:slug>/members/": (Rule(302, "prompts:write", "owner"), {"username": "newcomer", "role": "viewer"}),
    "teams/<slug:slug>/members/remove/": (Rule(302, "prompts:write", "owner"), {"username": "viewer"}),
    "settings/tokens/": (Rule(200, lookup="none", everyone=True), {"name": "ci", "scopes": ["prompts:read"],
                                                                   "expires_in_days": "30"}),
    "settings/tokens/<int:token_id>/revoke/": (Rule(302, lookup="own", own={"author"}), {}),
    "settings/people/": None,
    "settings/people/grant/": (Rule(302, "prompts:write", lookup="none"), {"username": "newcomer", "role": "risk"}),
    "settings/people/revoke/": (Rule(302, "prompts:write", lookup="none"), {"username": "risk", "role": "risk"}),
    # the model register (risk/): read by everyone signed in, edited and reviewed by the risk role
    "approvals/pending-count/": None,  # the navigation's count: what the signed-in person may approve
    "models/": None, "models/due-count/": None, "models/<int:model_id>/": None,
    "models/<int:model_id>/affected/": None, "models/inventory/": None, "models/inventory/export/": None,
    "models/policy/": (Rule(302, "deploy", lookup="none"), {"tier": "2", "overdue_review": "refuse"}),
    # the access review: read by compliance and admins, signed off by compliance only (the body
    # carries the fingerprint of the report as it is when the cell posts)
    "compliance/access-review/export/": None,
    "compliance/access-review/": (
        Rule(302, "audit:read", site=frozenset({"compliance"}), admins=False, lookup="none"), lambda ids: {
            "period": access_review.current_period(), "comment": "all justified",
            "fingerprint": access_review.fingerprint(access_review.build(actor=Actor.for_system()))}),
    "models/<int:model_id>/edit/": (Rule(302, "prompts:write", site=frozenset({"risk"}), lookup="none"),
                                    {"owner": "risk", "failure_modes": "echoes its input"}),
    "models/<int:model_id>/review/": (Rule(302, "prompts:write", site=frozenset({"risk"}), lookup="none"), lambda ids: {
        "findings": "still fine", "decision": "keep",
        "next_review_due": (datetime.date.today() + datetime.timedelta(days=91)).isoformat()}),
}


def test_every_page_has_a_row():
    routes = page_routes()
    assert sorted(routes - set(PAGES)) == [], "pages with no row in the access matrix"
    assert sorted(set(PAGES) - routes) == [], "rows for pages that no longer exist"


# --- running the cells ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The world, made once for the module inside a transaction that is rolled back at its end;
    every cell runs in a savepoint of it."""
    with django_db_blocker.unblock():
        with transaction.atomic():
            people, raw, ids = build()
            yield {"people": people, "tokens": raw, "ids": ids}
            transaction.set_rollback(True)


def _fill(path, ids):
    return (
        path.replace("{pending}", str(ids["pending"])).replace("{approved}", str(ids["approved"]))
        .replace("{glass}", str(ids["glass"])).replace("{llm}", str(ids["llm"]))
        .replace("{llm_model}", str(ids["llm"]))
        .replace("{spare_token}", str(ids["spare_token"])).replace("{run}", str(ids["run"]))
        .replace("{notice}", str(ids["notice"])).replace("{hook}", str(ids["hook"]))
        .replace("{delivery}", str(ids["delivery"])).replace("{stream}", str(ids["stream"]))
        .replace("{prompt}", ids["prompt"])
        .replace("{suite}", ids["suite"]).replace("{team}", "payments").replace("{tier}", "1")
        .replace("{number}", "2").replace("{finished_run}", str(ids["finished_run"]))
    )


def _api_client(world, actor):
    client = APIClient()
    if actor in world["tokens"]:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world['tokens'][actor]}")
    elif actor != "anonymous":
        client.force_login(world["people"][actor])
    return client


API_CELLS = [(method, path, actor) for (method, path) in API for actor in CAST]


@pytest.fixture
def cell(world, db):
    """The world, in the savepoint pytest-django opens for each test and rolls back."""
    return world


def _code(response):
    try:
        return response.json().get("code")
    except (ValueError, AttributeError):
        return None


@pytest.mark.parametrize(
    ("method", "path", "actor"), API_CELLS, ids=[f"{m.upper()} {p} as {a}" for m, p, a in API_CELLS]
)
def test_api_cell(cell, method, path, actor):
    rule, body = API[(method, path)]
    query = body if isinstance(body, str) else ""
    data = None if isinstance(body, str) else body
    url = _fill(path + query, cell["ids"])
    response = getattr(_api_client(cell, actor), method)(url, data, format="json")
    status, code = expected(actor, rule)
    got = (response.status_code, _code(response) if code else None)
    assert got == (status, code), f"{method.upper()} {url} as {actor}: {response.content[:300]!r}"


PAGE_ACTORS = [a for a in CAST if not a.startswith("token:")]
PAGE_CELLS = [(route, actor) for route, row in PAGES.items() if row for actor in PAGE_ACTORS]


def _page_url(route, ids):
    return "/" + (
        route.replace("<int:run_id>", str(ids["run"]))
        .replace("<slug:slug>/versions/<int:number>", "loan-letter/versions/2")
        .replace("suites/<slug:slug>", f"suites/{ids['suite']}").replace("teams/<slug:slug>", "teams/payments")
        .replace("<slug:slug>", "loan-letter").replace("<int:notice_id>", str(ids["notice"]))
        .replace("<int:pk>/<slug:action>", f"{ids['pending']}/withdraw")
        .replace("loan-letter/<int:number>", "loan-letter/3")
        .replace("<int:subscription_id>", str(ids["hook"])).replace("<int:delivery_id>", str(ids["delivery"]))
        .replace("<int:token_id>", str(ids["spare_token"])).replace("<int:model_id>", str(ids["llm"]))
        .replace("<int:stream_id>", str(ids["stream"]))
    )


def expected_page(actor, rule):
    if actor in rule.special:
        return rule.special[actor][0]
    if actor in ("anonymous", "deactivated"):
        return 302  # to the sign-in page
    return expected(actor, rule)[0]


@pytest.mark.parametrize(("route", "actor"), PAGE_CELLS, ids=[f"POST /{r} as {a}" for r, a in PAGE_CELLS])
def test_page_cell(cell, route, actor):
    rule, body = PAGES[route]
    client = Client()
    if actor not in ("anonymous",):
        client.force_login(cell["people"][actor])
    url = _page_url(route, cell["ids"])
    if callable(body):
        body = body(cell["ids"])
    if body == "cases":  # a file upload
        line = b'{"vars": {"name": "Bo"}, "assertions": [{"type": "contains", "value": "Bo"}]}\n'
        body = {"file": SimpleUploadedFile("cases.jsonl", line)}
    response = client.post(url, body)
    status = expected_page(actor, rule)
    assert response.status_code == status, f"POST {url} as {actor}: {response.content[:400]!r}"
    if actor in ("anonymous", "deactivated"):
        assert response["Location"].startswith("/accounts/login/")


def test_the_matrix_size():
    """The number of (route x actor) cells the matrix checks: printed for the record."""
    cells = len(API_CELLS) + len(PAGE_CELLS)
    print(f"access matrix: {len(API)} API operations x {len(CAST)} actors + "
          f"{len(PAGE_CELLS) // len(PAGE_ACTORS)} page POSTs x {len(PAGE_ACTORS)} actors = {cells} cells")
    assert len(API_CELLS) == len(API) * len(CAST) and cells > 1000
    assert set(PEOPLE) <= set(CAST)
