"""Shared fixtures: a fixed cast (owner, approver, author, viewer, outsider, admin) in team
``payments``, a registered offline model, API clients with scoped tokens, and the rule that a test
needing a missing service skips with a message, or fails under ``REQUIRE_SERVICES=1``."""

import os

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from config.celery import app as celery_app
from core.actors import Actor
from registry.models import Environment, Membership, SiteRole
from registry.services import create_version, issue_token
from tests.factories import LLMModelFactory, MembershipFactory, PromptFactory, TeamFactory, UserFactory, version_body

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def need_service(name, available, how):
    """Skip (or, under REQUIRE_SERVICES=1, fail) when a real service is not here."""
    if available:
        return
    message = f"needs {name}: {how}"
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 and this test {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """On PostgreSQL, let the runner's flush between transactional tests TRUNCATE the audit tables
    (see audit/migrations/0002); tests of the trigger switch it off with SET LOCAL."""
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            name = connection.settings_dict["NAME"]
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER DATABASE "{name}" SET promptledger.allow_audit_truncate = on')
            connection.close()


@pytest.fixture(autouse=True)
def _audit_files(settings, tmp_path):
    """Each test signs with its own key and appends checkpoints to its own sink."""
    from audit import signing

    settings.PROMPTLEDGER_AUDIT_SIGNING_KEY = signing.generate_seed_b64()
    settings.PROMPTLEDGER_AUDIT_SINK = str(tmp_path / "audit-sink.jsonl")
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS = []  # and no retired keys but those a test lists
    settings.PROMPTLEDGER_AUDIT_RETIRED_KEYS_FILE = str(tmp_path / "audit-retired-keys")
    signing.private_key.cache_clear()
    yield
    signing.private_key.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_resolve_cache(settings):
    """Resolve caches version bodies by id; ids restart after a transactional test's flush. The
    cache of tokens and pointers (registry.resolve_cache) is off unless a test turns it on (its
    listener thread would hold a connection to the test database); its tests start servers of their own."""
    from registry.resolve_cache import cache
    from registry.selectors import payload_cache

    payload_cache.clear()
    settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS = 0
    yield
    cache.stop()


@pytest.fixture(autouse=True)
def _local_webhook_receivers(settings):
    """Tests' webhook receivers listen on 127.0.0.1, which webhooks refuse unless allowed, as an
    operator allows an internal receiver (tests/webhooks/test_destinations.py takes it away)."""
    settings.PROMPTLEDGER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture(autouse=True)
def _own_rate_limits(settings, request):
    """Each test counts API rate limits on a cache of its own, so one test's calls never slow
    another's (CI's settings would share Redis between them)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": request.node.nodeid}}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def postgres(db):
    need_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptledger",
    )
    return connection


@pytest.fixture
def environments(db):
    """The default environments. A data migration makes them, but transactional tests (threads, a
    live server) truncate every table when they end, so tests ask for them here."""
    return [
        Environment.objects.get_or_create(slug=slug, defaults={"name": slug.capitalize(), "position": position})[0]
        for position, slug in enumerate(settings.PROMPTLEDGER_ENVIRONMENTS)
    ]


@pytest.fixture
def cast(db, environments):
    """The team 'payments' with one user per role, an outsider, and an admin."""
    team = TeamFactory(slug="payments", name="Payments")
    other = TeamFactory(slug="growth", name="Growth")
    people = {}
    for role in ("owner", "approver", "author", "viewer"):
        people[role] = UserFactory(username=role)
        MembershipFactory(team=team, user=people[role], role=role)
    people["outsider"] = UserFactory(username="outsider")
    MembershipFactory(team=other, user=people["outsider"], role=Membership.OWNER)
    people["admin"] = UserFactory(username="admin")
    SiteRole.objects.create(user=people["admin"], role=SiteRole.ADMIN)
    people["compliance"] = UserFactory(username="compliance")
    SiteRole.objects.create(user=people["compliance"], role=SiteRole.COMPLIANCE)
    people["team"], people["other_team"] = team, other
    people["llm"] = LLMModelFactory()
    return people


@pytest.fixture
def prompt(cast):
    return PromptFactory(
        slug="loan-letter",
        team=cast["team"],
        owner=cast["owner"],
        tier=1,
        data_categories=["pii", "financial"],
        tags=["letters"],
    )


@pytest.fixture
def version(cast, prompt):
    body = version_body()
    made, _ = create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        messages=body["messages"],
        variables=body["variables"],
        model=body["model"],
        message="first",
    )
    return made


@pytest.fixture
def browser_for(cast):
    """``browser_for(name)``: a Django test client signed in as one of the cast."""

    def make(username):
        client = Client()
        client.force_login(cast[username])
        return client

    return make


ALL_SCOPES = ["prompts:read", "prompts:write", "evals:run", "deploy", "audit:read"]


@pytest.fixture
def api_for(cast):
    """``api_for("author", scopes=[...])`` → an APIClient carrying that user's bearer token."""

    def make(username, scopes=None):
        user = cast[username]
        _, raw = issue_token(actor=Actor.for_system(), user=user, scopes=scopes or ALL_SCOPES)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def eager():
    """Celery tasks (the delivery) run in the calling thread, for this test only."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before
