"""The ``promptledger`` CLI and client against a live server: what they print and the exit codes
scripts rely on (0 found, 1 refused). Without a server (usage, no URL, no answer, no Django
imported) they are the SDK's own tests, in sdk/tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.actors import Actor
from promptledger import client as pl
from registry import selectors
from registry.models import Environment
from registry.services import issue_token, set_deployment, set_kill_switch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_payload_cache():
    # The live server shares this process; ids restart after each transactional flush.
    selectors.payload_cache.clear()
    yield
    selectors.payload_cache.clear()


@pytest.fixture
def server(transactional_db, live_server, cast, prompt, version):
    """A live server with ``loan-letter`` v1 deployed to production, and a reader's token."""
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=version)
    _, token = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    return {"url": live_server.url, "token": token, "version": version}


def cli(*args, url=None, token=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMPTLEDGER_", "DJANGO_"))}
    env["PYTHONPATH"] = str(ROOT)
    if url is not None:
        env["PROMPTLEDGER_URL"] = url
    if token is not None:
        env["PROMPTLEDGER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "promptledger", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_resolve_prints_the_deployed_version_and_exits_0(server):
    done = cli("resolve", "loan-letter", "--environment", "production", url=server["url"], token=server["token"])
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["slug"] == "loan-letter"
    assert body["version"] == 1
    assert body["content_hash"] == server["version"].content_hash
    assert body["messages"] == server["version"].messages


def test_resolve_exits_1_when_nothing_is_deployed(server):
    done = cli("resolve", "loan-letter", "-e", "staging", url=server["url"], token=server["token"])
    assert done.returncode == 1
    assert done.stdout == ""
    assert "not_deployed" in done.stderr
    assert "HTTP 404" in done.stderr


def test_resolve_exits_1_when_kill_switched(server, cast, prompt):
    production = Environment.objects.get(slug="production")
    set_kill_switch(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, disabled=True,
                    reason="incident 42")
    done = cli("resolve", "loan-letter", "-e", "production", url=server["url"], token=server["token"])
    assert done.returncode == 1
    assert "prompt_disabled" in done.stderr
    assert "incident 42" in done.stderr


def test_resolve_exits_1_with_an_invalid_token(server):
    done = cli("resolve", "loan-letter", "-e", "production", url=server["url"], token="pl_not-a-token")
    assert done.returncode == 1
    assert "invalid_token" in done.stderr


def test_resolve_names_the_missing_token(server):
    done = cli("resolve", "loan-letter", "-e", "production", url=server["url"])
    assert done.returncode == 1
    assert "PROMPTLEDGER_TOKEN" in done.stderr


def test_resolve_exits_1_for_an_unknown_environment_and_names_the_field(server):
    done = cli("resolve", "loan-letter", "-e", "prod", url=server["url"], token=server["token"])
    assert done.returncode == 1
    assert "unknown_environment" in done.stderr
    assert "environment:" in done.stderr


def test_client_returns_the_etag_and_a_cheap_not_modified(server):
    client = pl.Client(url=server["url"], token=server["token"])
    first = client.resolve("loan-letter", "production")
    assert first.etag == f'"{server["version"].content_hash}"'
    assert first.data["version"] == 1
    again = client.resolve("loan-letter", "production", etag=first.etag)
    assert again.not_modified and again.data is None
    assert again.etag == first.etag


def test_client_raises_typed_errors_carrying_the_servers_code(server, cast, prompt):
    client = pl.Client(url=server["url"], token=server["token"])
    with pytest.raises(pl.NotFound) as missing:
        client.resolve("loan-letter", "staging")
    assert missing.value.code == "not_deployed"
    assert missing.value.status == 404
    set_kill_switch(actor=Actor(user=cast["owner"]), prompt=prompt,
                    environment=Environment.objects.get(slug="production"), disabled=True, reason="paused")
    with pytest.raises(pl.PromptDisabled) as disabled:
        client.resolve("loan-letter", "production")
    assert disabled.value.code == "prompt_disabled"
    with pytest.raises(pl.Unauthorized):
        pl.Client(url=server["url"], token="pl_wrong").resolve("loan-letter", "production")
