"""The resolve cache across processes: gunicorn servers on the test database (other processes than
the one that makes the change), each caching tokens and pointers, stop serving a stale answer
within the bound after a deploy, a kill switch, a token revoke, a membership removal or a user's
deactivation commits; nothing stale comes back once the change was seen; without notifications the
TTL bounds staleness; a listener that reconnects drops everything, so a notification lost while
it was away does not leave a stale answer behind.

The listening server is given a TTL far longer than any wait here (300 s), so only a notification
can explain a fresh answer; the TTL-only server (listener off) shows the cache really serves from
memory. Timings are bench/resolve.py's business; here each wait has a deadline."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from core.actors import Actor
from registry.models import APIToken, Environment
from registry.services import create_version, issue_token, remove_member, revoke_token, set_deployment, set_kill_switch
from registry.services.users import set_user_flags
from tests.conftest import need_service
from tests.factories import version_body
from tests.worker import _database_url, wait_for

ROOT = Path(__file__).resolve().parents[2]
SLUG, ENV = "loan-letter", "production"
BOUND = 5.0  # seconds a test waits for a change to reach a server (the figure is the bench's)
LONG_TTL, SHORT_TTL = 300, 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn (one gthread worker, so each request reaches the same cache) on the test database."""

    def __init__(self, folder, name, **env):
        self.port, self.env, self.log = free_port(), env, folder / f"{name}.log"
        self.var_dir = folder / f"{name}-var"
        self.proc = None

    def start(self):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROMPTLEDGER_"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PROMPTLEDGER_VAR_DIR": str(self.var_dir),
            "PROMPTLEDGER_METRICS": "false",
            "LOG_LEVEL": "WARNING",
            **self.env,
        }
        argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
                "--workers", "1", "--threads", "4", "--error-logfile", str(self.log), "config.wsgi:application"]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env)
        wait_for(self._answers, timeout=60, interval=0.1, message=f"gunicorn at port {self.port}")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return self.get("/healthz", None)[0] in (200, 503)
        except OSError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def get(self, path, token):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - localhost
                return response.status, response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("ETag")

    def resolve(self, token):
        return self.get(f"/api/v1/prompts/{SLUG}/resolve?environment={ENV}", token)


@pytest.fixture
def world(transactional_db, cast, prompt, version):
    need_service("PostgreSQL", connection.vendor == "postgresql",
                 "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptledger (the servers are other processes)")
    production = Environment.objects.get(slug=ENV)
    owner = Actor(user=cast["owner"])
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    token, raw = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    return {"owner": owner, "prompt": prompt, "production": production, "version": version, "token": token,
            "raw": raw, "cast": cast}


@pytest.fixture(scope="module")
def listening(django_db_setup, tmp_path_factory):
    """One server for the module: tokens and slugs are new in each test, and the flush between
    tests (TRUNCATE) notifies it to drop everything."""
    server = Server(tmp_path_factory.mktemp("listening"), "listening",
                    PROMPTLEDGER_RESOLVE_CACHE_SECONDS=str(LONG_TTL)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ttl_only(django_db_setup, tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("ttl-only"), "ttl-only", PROMPTLEDGER_RESOLVE_CACHE_SECONDS=str(SHORT_TTL),
                    PROMPTLEDGER_RESOLVE_CACHE_LISTEN="false").start()
    yield server
    server.stop()


def etag(version):
    return f'"{version.content_hash}"'


def warm(server, world):
    """Cached: the first answer fills the cache, the second comes from it."""
    for _ in range(2):
        assert server.resolve(world["raw"]) == (200, etag(world["version"]))


def reaches(server, token, want_status, message):
    """Wait (with a deadline) until ``server`` answers ``want_status``; then the answer never goes back."""
    started = time.monotonic()
    wait_for(lambda: server.resolve(token)[0] == want_status, timeout=BOUND, interval=0.01, message=message)
    elapsed = time.monotonic() - started
    # Refused tokens count against the address (20 a minute, then 429): a few are enough here.
    also = {401: {401, 429}}.get(want_status, {want_status})
    for _ in range(5):
        assert server.resolve(token)[0] in also, "a stale answer came back after the fresh one"
    return elapsed


def push_v2(world):
    body = version_body("Dear {{ name }}, your letter.")
    made, _ = create_version(actor=Actor(user=world["cast"]["author"]), prompt=world["prompt"],
                             messages=body["messages"], variables=body["variables"], model=body["model"], message="2")
    return made


def test_a_deploy_reaches_a_caching_process_and_the_old_version_is_never_served_again(world, listening):
    warm(listening, world)
    v2 = push_v2(world)
    set_deployment(actor=world["owner"], prompt=world["prompt"], environment=world["production"], version=v2)
    wait_for(lambda: listening.resolve(world["raw"]) == (200, etag(v2)), timeout=BOUND, interval=0.01,
             message="the new version in the other process")
    assert all(listening.resolve(world["raw"]) == (200, etag(v2)) for _ in range(30))


def test_a_kill_switch_reaches_a_caching_process_within_the_bound(world, listening):
    warm(listening, world)
    set_kill_switch(actor=world["owner"], prompt=world["prompt"], environment=world["production"], disabled=True,
                    reason="incident 9")
    reaches(listening, world["raw"], 423, "the kill switch in the other process")
    set_kill_switch(actor=world["owner"], prompt=world["prompt"], environment=world["production"], disabled=False,
                    reason="fixed")
    reaches(listening, world["raw"], 200, "the prompt back in the other process")


def test_a_revoked_token_is_refused_by_a_caching_process_and_never_served_again(world, listening):
    warm(listening, world)
    revoke_token(actor=Actor(user=world["cast"]["viewer"]), token=world["token"])
    reaches(listening, world["raw"], 401, "the revoke in the other process")
    # The cache refills after a refusal only with what the database says now: still refused.
    other = issue_token(actor=Actor.for_system(), user=world["cast"]["viewer"], scopes=["prompts:read"])[1]
    assert listening.resolve(other)[0] == 200
    assert listening.resolve(world["raw"])[0] in (401, 429)


def test_a_removed_member_loses_the_prompt_in_a_caching_process(world, listening):
    warm(listening, world)
    remove_member(actor=world["owner"], team=world["cast"]["team"], username="viewer")
    reaches(listening, world["raw"], 404, "the membership removal in the other process")


def test_a_deactivated_users_token_is_refused_by_a_caching_process(world, listening):
    warm(listening, world)
    set_user_flags(actor=Actor(user=world["cast"]["admin"]), username="viewer", is_active=False)
    reaches(listening, world["raw"], 401, "the deactivation in the other process")


def test_without_notifications_the_ttl_bounds_staleness(world, ttl_only):
    warm(ttl_only, world)
    filled = time.monotonic()
    set_kill_switch(actor=world["owner"], prompt=world["prompt"], environment=world["production"], disabled=True,
                    reason="incident 10")
    # Served from memory: the kill switch is not seen before the entry's TTL runs out (each entry
    # lives between half the TTL and all of it) ...
    if time.monotonic() - filled < SHORT_TTL / 2 - 0.5:
        assert ttl_only.resolve(world["raw"])[0] == 200
    # ... and is seen once it does.
    wait_for(lambda: ttl_only.resolve(world["raw"])[0] == 423, timeout=SHORT_TTL + BOUND, interval=0.02,
             message="the TTL to run out")
    assert time.monotonic() - filled < SHORT_TTL + BOUND


def test_a_listener_that_reconnects_drops_what_a_lost_notification_left_stale(world, listening):
    warm(listening, world)
    with connection.cursor() as cursor:  # a notification that never comes: the trigger off for one change
        cursor.execute("ALTER TABLE registry_deployment DISABLE TRIGGER registry_deployment_resolve_changed")
    try:
        set_kill_switch(actor=world["owner"], prompt=world["prompt"], environment=world["production"],
                        disabled=True, reason="incident 11")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE registry_deployment ENABLE ALWAYS TRIGGER registry_deployment_resolve_changed")
    assert listening.resolve(world["raw"])[0] == 200  # stale: nothing told the server
    with connection.cursor() as cursor:  # the listener's connection drops (as when PostgreSQL restarts)
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'promptledger-resolve-listener'"
        )
        assert cursor.fetchall(), "no listener connection to drop"
    reaches(listening, world["raw"], 423, "the kill switch once the listener reconnected")
    assert APIToken.objects.filter(pk=world["token"].pk, last_used_at__isnull=False).exists()
