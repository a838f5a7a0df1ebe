"""Committed query counts for every list: each page that lists things and each API list in the
OpenAPI schema answers in a fixed number of queries, however many rows it shows.

Each row of ``COUNTS`` is requested (once to warm up, then counted) in two worlds built by
``tests/query_counts_world.py``: one with 3 of every listed thing and one with 15. A list must take
the same number of queries in both (no query per row), and that number must be the one committed
here, so a change that adds a query to a list fails CI until someone decides the query is worth it.

The counts are whole requests: the session and its user (pages) or the token (API), the actor's
site roles, the messages and everything the template reads. They are the same on SQLite and
PostgreSQL (a GET opens no transaction, so no savepoint is counted); should a backend ever differ,
commit its number beside the other rather than loosen the assertion.

To change a count on purpose, run ``pytest tests/test_query_counts.py``: a failure names the route,
the number measured in both worlds and the queries it ran. Write the new number into ``COUNTS`` in
the same commit, saying why the list needs it. A new list page or API list without a row fails
``test_every_page_is_a_list_with_a_count_or_not_a_list`` or ``test_every_api_list_has_a_count``.
"""

import re

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from rest_framework.test import APIClient

from core.actors import Actor
from registry.services import issue_token
from registry.services.tokens import grantable_scopes
from tests.query_counts_world import build
from tests.routes import api_schema, page_routes

SIZES = (3, 15)

# (route, who is signed in) -> the queries its GET takes. Routes are the URL conf's (pages) or the
# OpenAPI schema's (API) with the parameter names as written there; who is one of the world's cast.
COUNTS = {
    # --- pages -------------------------------------------------------------------------------------
    # Every full page takes one query more since issue 17: whether its navigation fetches the
    # pending-approvals and due-review counts (config/navigation.py), instead of every page
    # fetching the due count for everyone.
    ("/", "admin"): 9,
    ("/", "viewer"): 10,  # a team member: visibility through memberships, not a site role; + may they create one
    ("/prompts/{slug}/", "admin"): 15,  # the versions, with what is live, runs, requests, notices
    ("/prompts/{slug}/history/", "admin"): 8,
    ("/evals/", "admin"): 7,  # the prompt filter is typed, not a choice among every prompt with runs
    ("/evals/suites/", "admin"): 6,
    ("/evals/suites/{slug}/", "admin"): 8,  # its cases and latest runs
    ("/evals/runs/{run_id}/", "admin"): 9,  # its results
    ("/approvals/", "approver"): 17,  # the inbox: waiting for me, reviews to sign, decisions
    ("/approvals/requests/", "admin"): 6,
    ("/audit/?action=version.created", "admin"): 10,  # filtered (a page not full in the small world); + the count
    ("/settings/webhooks/", "admin"): 6,
    ("/settings/webhooks/{subscription_id}/", "admin"): 8,  # its delivery log
    ("/settings/webhooks/{subscription_id}/deliveries/", "admin"): 7,  # the log alone (htmx)
    ("/settings/webhooks/streams/", "admin"): 7,  # audit streams, the head, the oldest event behind each
    ("/settings/webhooks/streams/{stream_id}/", "admin"): 7,
    ("/settings/webhooks/streams/{stream_id}/status/", "admin"): 6,  # the status block alone (htmx)
    ("/settings/tokens/", "admin"): 7,
    ("/teams/", "admin"): 5,
    ("/teams/{slug}/", "admin"): 7,  # its members; its eval budget (evals' panel)
    ("/settings/people/", "admin"): 7,
    ("/models/?view=all", "admin"): 8,  # the register: models, prompts by tier, suites run
    ("/models/{model_id}/", "admin"): 11,  # suites' latest runs, reviews; where live: count, page ids, rows
    ("/models/inventory/", "admin"): 14,  # a page of prompts and their count, versions, pointers, approvers, gates
    ("/compliance/access-review/", "admin"): 16,  # accounts, roles, tokens, approval rights, sign-offs
    ("/costs/", "admin"): 10,  # teams, the spend report (one GROUP BY), budgets, overrides, month's spend
    # --- API ---------------------------------------------------------------------------------------
    ("/api/v1/audit-events/", "admin"): 3,
    ("/api/v1/access-review/sign-offs/", "admin"): 3,
    ("/api/v1/deploy-requests/", "admin"): 4,
    ("/api/v1/deploy-requests/?waiting_for=me", "approver"): 9,  # the inbox's rule, asked of every request
    ("/api/v1/eval-runs/", "admin"): 4,
    ("/api/v1/eval-runs/{run_id}/results/", "admin"): 5,  # a list, though the schema documents one Result
    ("/api/v1/llm-models/", "admin"): 3,
    ("/api/v1/llm-models/{model_id}/reviews/", "admin"): 3,  # a model's signed reviews
    ("/api/v1/prompts/", "admin"): 4,
    ("/api/v1/prompts/", "viewer"): 4,
    ("/api/v1/prompts/{slug}/notices", "admin"): 5,
    ("/api/v1/prompts/{slug}/versions/", "admin"): 5,
    ("/api/v1/suites/", "admin"): 4,
    ("/api/v1/suites/{slug}/cases/", "admin"): 5,
    ("/api/v1/teams/", "admin"): 4,
    ("/api/v1/teams/{slug}/approver-groups/", "admin"): 5,
    ("/api/v1/teams/{slug}/members/", "admin"): 5,
    ("/api/v1/tier-policies/", "admin"): 2,  # always four rows
    ("/api/v1/tokens/", "admin"): 4,
    ("/api/v1/webhooks/", "admin"): 4,
    ("/api/v1/webhooks/{subscription_id}/deliveries/", "admin"): 6,
    ("/api/v1/audit-streams/", "admin"): 5,  # audit streams (and who made each), the head, the oldest event behind each
}
HTMX = {  # pages asked for as htmx partials
    "/settings/webhooks/{subscription_id}/deliveries/", "/settings/webhooks/streams/{stream_id}/status/",
}

# Every other page the URL conf routes: one object, a form, an action or a download, whose queries
# do not depend on how many rows some list has (downloads stream in chunks).
NOT_LISTS = {
    "/healthz", "/metrics", "/accounts/login/", "/accounts/logout/", "/audit/export/", "/audit/verify/",
    "/sso/login/", "/sso/callback/",
    "/evals/runs/{run_id}/progress/", "/evals/runs/{run_id}/cancel/", "/evals/runs/{run_id}/compare/",
    "/evals/prompts/{slug}/versions/{number}/run/", "/evals/suites/new/", "/evals/suites/{slug}/cases/upload/",
    "/evals/notices/{notice_id}/acknowledge/",
    "/approvals/requests/{pk}/", "/approvals/requests/{pk}/{action}", "/approvals/new/{slug}/{number}/",
    "/approvals/rollback/{slug}/", "/approvals/break-glass/{slug}/", "/approvals/tier-change/{slug}/",
    "/approvals/policies/",
    "/settings/webhooks/new/", "/settings/webhooks/{subscription_id}/edit/",
    "/settings/webhooks/{subscription_id}/test/", "/settings/webhooks/{subscription_id}/rotate/",
    "/settings/webhooks/{subscription_id}/delete/", "/settings/webhooks/deliveries/{delivery_id}/redeliver/",
    "/settings/webhooks/streams/new/", "/settings/webhooks/streams/{stream_id}/edit/",
    "/settings/webhooks/streams/{stream_id}/pause/",
    "/prompts/{slug}/versions/new/", "/prompts/{slug}/versions/{number}/", "/prompts/{slug}/diff/",
    "/new-prompt/", "/prompts/{slug}/settings/", "/prompts/{slug}/settings/approvers/",
    "/prompts/{slug}/settings/tier/", "/prompts/{slug}/gate/", "/prompts/{slug}/kill-switch/",
    "/teams/{slug}/members/", "/teams/{slug}/members/remove/",
    "/settings/tokens/{token_id}/revoke/", "/settings/people/grant/", "/settings/people/revoke/",
    "/approvals/pending-count/",  # the navigation's count: the inbox's rule, a fixed handful of queries
    "/models/due-count/", "/models/policy/", "/models/{model_id}/edit/", "/models/{model_id}/review/",
    "/models/{model_id}/affected/", "/models/inventory/export/",
    "/compliance/access-review/export/",  # the page's report as a file: its queries are the page's
    "/costs/export/", "/costs/teams/{slug}/budget/", "/costs/teams/{slug}/override/",
}


# --- which routes are lists ----------------------------------------------------------------------
def _page_routes():
    return {"/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) for route in page_routes()}


def _is_list(operation):
    """A GET whose answer is an array, or a page of one (drf-spectacular's ``Paginated...List``)."""
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return schema.get("type") == "array" or schema.get("$ref", "").startswith("#/components/schemas/Paginated")


def _schema_gets():
    """``{path: is a list}`` for every GET of the OpenAPI schema."""
    schema = api_schema()
    return {path: _is_list(operations["get"]) for path, operations in schema["paths"].items() if "get" in operations}


def _api_routes():
    return {route.split("?")[0] for route, _ in COUNTS if route.startswith("/api/")}


def test_every_page_is_a_list_with_a_count_or_not_a_list():
    pages = {route.split("?")[0] for route, _ in COUNTS if not route.startswith("/api/")}
    routes = _page_routes()
    assert sorted(routes - pages - NOT_LISTS) == [], "pages neither counted nor named as not a list"
    assert sorted((pages | NOT_LISTS) - routes) == [], "rows for pages that no longer exist"
    assert sorted(pages & NOT_LISTS) == [], "pages both counted and named as not a list"


def test_every_api_list_has_a_count():
    gets = _schema_gets()
    lists = {path for path, is_list in gets.items() if is_list}
    assert sorted(lists - _api_routes()) == [], "API lists in the schema with no committed count"
    assert sorted(_api_routes() - set(gets)) == [], "rows for GETs the API no longer has"


# --- measuring -----------------------------------------------------------------------------------
OBJECT_OF = {"prompts": "prompt", "suites": "suite", "teams": "team"}  # whose {slug} it is


def _url(route, ids):
    def value(match):
        name, before = match.group(2), match.group(1)
        if name == "slug":
            return before + str(ids[OBJECT_OF[before.strip("/").rsplit("/", 1)[-1]]])
        ids_of = {"run_id": "run", "subscription_id": "hook", "model_id": "llm", "stream_id": "stream"}
        return before + str(ids[ids_of[name]])

    return re.sub(r"([^{]*)\{(\w+)\}", value, route)


def _clients(people, routes):
    """One signed-in browser and one API client (a token of every scope its person may hold) per
    person the routes name."""
    clients = {}
    for who in {who for _, who in routes}:
        user = people[who]
        browser = Client()
        browser.force_login(user)
        _, raw = issue_token(actor=Actor.for_system(), user=user, scopes=grantable_scopes(user))
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        clients[who] = {"page": browser, "api": api}
    return clients


def _measure(clients, ids, route, who):
    """``(status, [SQL])`` of the route's second GET: the first warms what a process keeps between
    requests, so the count is the steady one and no row's order in ``COUNTS`` changes it."""
    client = clients[who]["api" if route.startswith("/api/") else "page"]
    headers = {"HTTP_HX_REQUEST": "true"} if route in HTMX else {}
    url = _url(route, ids)
    client.get(url, **headers)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    return response.status_code, [query["sql"] for query in captured.captured_queries]


@pytest.fixture(scope="module")
def measured(django_db_setup, django_db_blocker):
    """``{(route, who, size): (status, [SQL])}``: every row of ``COUNTS`` in each world, each world
    built in a transaction rolled back once its lists are measured."""
    results = {}
    # What tests/conftest.py gives each test, for the module: rate limits counted on a cache of its
    # own, and passwords hashed fast.
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": __name__}}
    fast = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with django_db_blocker.unblock(), override_settings(CACHES=caches, PASSWORD_HASHERS=fast):
        for size in SIZES:
            with transaction.atomic():
                people, ids = build(size)
                clients = _clients(people, COUNTS)
                for route, who in COUNTS:
                    results[route, who, size] = _measure(clients, ids, route, who)
                transaction.set_rollback(True)
    return results


def _listing(queries):
    return "\n".join(f"  {n}. {sql[:300]}" for n, sql in enumerate(queries, 1))


@pytest.mark.django_db  # so the test database is made; the worlds are the fixture's
@pytest.mark.parametrize(("route", "who"), list(COUNTS))
def test_list_takes_its_committed_number_of_queries(measured, route, who):
    (small_status, small), (large_status, large) = (measured[route, who, size] for size in SIZES)
    assert (small_status, large_status) == (200, 200), f"{route} as {who} answered {small_status}, {large_status}"
    assert len(large) == len(small), (
        f"{route} as {who}: {len(small)} queries with {SIZES[0]} rows, {len(large)} with {SIZES[1]}: a query per "
        f"row. With {SIZES[1]} rows it ran:\n{_listing(large)}"
    )
    assert len(small) == COUNTS[route, who], (
        f"{route} as {who} takes {len(small)} queries; {COUNTS[route, who]} are committed. If the change is "
        f"meant, write {len(small)} into COUNTS and say why. It ran:\n{_listing(small)}"
    )
