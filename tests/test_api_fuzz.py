"""Schemathesis over every operation of the API schema (/api/schema/, loaded from this app in-process),
authenticated, on the demo world: no request, valid or not, gets a server error.

Two runs: the site admin with a token holding every scope, and a team author (``lending-author``)
with a read+write token. Path parameters and the body fields that name things (prompt, suite, team,
environment, version, username) are drawn mostly from rows that exist, so requests reach the
services instead of stopping at a 404. Each request runs in a savepoint rolled back after it, so
one request (revoking the token, deleting a webhook) never changes what the next one finds.

Deterministic: Hypothesis derandomized, a fixed seed, no deadline, no example database. Schemathesis
runs its examples, coverage (boundary and invalid values, deterministic) and fuzzing phases, the
last with ``MAX_EXAMPLES`` examples of each operation.
"""

import datetime
import logging
import os
import traceback
from io import StringIO

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from schemathesis.config import SchemathesisConfig

from approvals.models import DeployRequest
from core.actors import Actor
from evals.models import DriftNotice, EvalRun, Suite
from registry.models import APIToken, Environment, LLMModel, Prompt, PromptVersion, Team
from registry.services import issue_token
from tests.conftest import ALL_SCOPES
from webhooks import services as webhooks
from webhooks import stream_services
from webhooks.models import EVENTS, AuditStream, Delivery, Subscription

# Fuzzed requests per operation and caller, on top of the coverage phase's. A longer hunt on another
# seed: PROMPTLEDGER_FUZZ_EXAMPLES=500 PROMPTLEDGER_FUZZ_SEED=7 pytest tests/test_api_fuzz.py
MAX_EXAMPLES = int(os.environ.get("PROMPTLEDGER_FUZZ_EXAMPLES", 25))
SEED = int(os.environ.get("PROMPTLEDGER_FUZZ_SEED", 20261205))
# Who calls, with which scopes, and whether the coverage phase runs too (it varies the input's shape,
# which the admin's run covers; the author's run is about what a narrower caller reaches).
CALLERS = {
    "admin": ("admin", ALL_SCOPES, True),
    "author": ("lending-author", ["prompts:read", "prompts:write"], False),
}


def _world():
    """The demo world (``bootstrap_demo``, the shared attack suite), a webhook with a delivery, an
    audit stream and a drift notice, so every kind of id in a path names a row."""
    call_command("bootstrap_demo", stdout=StringIO())
    call_command("load_attack_suites", stdout=StringIO())
    owner = Actor(user=get_user_model().objects.get(username="lending-owner"))
    subscription, _ = webhooks.create_subscription(
        actor=owner, url="https://hooks.example.test/promptledger", events=["*"], team=Team.objects.get(slug="lending")
    )
    webhooks.send_test(actor=owner, subscription=subscription)
    admin = Actor(user=get_user_model().objects.get(username="admin"))
    stream_services.create_stream(actor=admin, name="siem", url="https://siem.example.test/services/collector",
                                  format=AuditStream.SPLUNK_HEC, token="hec-token")
    run = EvalRun.objects.filter(status=EvalRun.COMPLETED).order_by("pk").first()
    DriftNotice.objects.create(
        prompt=run.prompt, run=run, suite=run.suite, environment="production",
        pass_rate=0.5, threshold=0.9, reason=DriftNotice.BELOW_THRESHOLD,
    )


def _ids(queryset):
    return sorted(queryset.values_list("pk", flat=True)) or [1]


def _config(token, *, coverage):
    """Schemathesis' configuration: deterministic, only the "no server error" check, and the
    dictionaries of names and ids that exist."""
    slugs = sorted({*Prompt.objects.values_list("slug", flat=True), *Suite.objects.values_list("slug", flat=True),
                    *Team.objects.values_list("slug", flat=True)})
    usernames = sorted(get_user_model().objects.values_list("username", flat=True))
    highest = max(PromptVersion.objects.values_list("number", flat=True))
    dictionaries = {
        "slugs": slugs,
        "prompts": sorted(Prompt.objects.values_list("slug", flat=True)),
        "suites": sorted(Suite.objects.values_list("slug", flat=True)),
        "teams": sorted(Team.objects.values_list("slug", flat=True)),
        "environments": sorted(Environment.objects.values_list("slug", flat=True)),
        "usernames": usernames,
        "numbers": list(range(1, highest + 1)),
        "tiers": [0, 1, 2, 3],
        "ids": sorted({*_ids(DeployRequest.objects), *_ids(LLMModel.objects), *_ids(APIToken.objects)}),
        "runs": _ids(EvalRun.objects),
        "notices": _ids(DriftNotice.objects),
        "subscriptions": _ids(Subscription.objects),
        "deliveries": _ids(Delivery.objects),
        "streams": _ids(AuditStream.objects),
        "models": sorted(LLMModel.objects.values_list("model_id", flat=True)),
        "providers": sorted({*LLMModel.objects.values_list("provider", flat=True)}),
        "events": [*EVENTS, "*"],
        # Receivers outside and (refused) inside: public; loopback, the metadata service, in several spellings.
        "urls": ["https://hooks.example.test/promptledger", "http://127.0.0.1:8000/", "http://169.254.169.254/latest",
                 "http://[::1]/", "http://0x7f.1/"],
        # Times at the edges: offsets PostgreSQL refuses, the calendar's first and last days.
        "times": ["2026-01-01", "2000-01-01T00:00:00+16:00", "0001-01-01T00:00:00+01:00", "9999-12-31",
                  "9999-12-31T23:59:59-01:00"],
    }
    often = 0.8  # the rest of the time the generated value goes as it is
    parameters = {
        "path.slug": "slugs", "path.number": "numbers", "path.tier": "tiers", "path.id": "ids",
        "path.run_id": "runs", "path.notice_id": "notices", "path.subscription_id": "subscriptions",
        "path.delivery_id": "deliveries", "path.stream_id": "streams", "query.environment": "environments",
        "query.against": "numbers",
        "query.team": "teams", "query.prompt": "prompts", "query.suite": "suites",
        "body.prompt": "prompts", "body.suite": "suites", "body.team": "teams", "body.environment": "environments",
        "body.version": "numbers", "body.owner": "usernames", "body.username": "usernames",
        "body.suites[*].suite": "suites", "body.model.name": "models", "body.model.provider": "providers",
        "body.approvers[*]": "usernames", "body.url": "urls", "body.events[*]": "events", "query.actor": "usernames",
        "query.since": "times", "query.until": "times",
    }
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large", "large_base_example"],
        "headers": {"Authorization": f"Bearer {token}"},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": coverage}, "fuzzing": {"enabled": True},
                   "stateful": {"enabled": False}},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
        "dictionaries": {name: {"values": values} for name, values in dictionaries.items()},
        "parameters": {key: {"dictionary": name, "probability": often} for key, name in parameters.items()},
    })


@pytest.fixture(params=sorted(CALLERS))
def api_schema(request, db, environments):
    """The schema as this app serves it, with the caller's token; while it is in use, a request
    does not close the test's database connection (as Django's test client arranges)."""
    _world()
    username, scopes, coverage = CALLERS[request.param]
    user = get_user_model().objects.get(username=username)
    _, token = issue_token(
        actor=Actor.for_system(), user=user, scopes=scopes,
        expires_at=datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(days=1),
    )
    # Schemathesis 4.32's lazy schema reads and renames ``node._nodeid``, which pytest 9 no longer has
    # (it keeps ``_id``): give it one to read, and it labels each operation in its subtests still.
    request.node._nodeid = request.node.nodeid
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_log = logging.getLogger("django.request")
    level, request_log.level = request_log.level, logging.CRITICAL  # thousands of 4xx, on purpose
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), config=_config(token, coverage=coverage))
    finally:
        request_log.setLevel(level)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def server_errors():
    """Exceptions the app raised while answering, for the failure message."""
    seen = []

    def note(sender, request=None, **kwargs):
        seen.append(traceback.format_exc())

    got_request_exception.connect(note, weak=False)
    yield seen
    got_request_exception.disconnect(note)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_no_api_operation_answers_with_a_server_error(case, server_errors):
    del server_errors[:]
    with transaction.atomic():  # a savepoint: each request finds the world as it was
        response = case.call()
        transaction.set_rollback(True)
    if response.status_code >= 500:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code}\n{case.as_curl_command()}\n"
            f"{response.text[:2000]}\n{''.join(server_errors)}"
        )
