"""``Client.get_prompt`` against a real server process (gunicorn on the test database) that the
tests stop: memory with a TTL and 304 revalidation, the last-known-good copy on disk for a new
process, the kill switch never served from a cache, the fallback, and threads. With no server or a
silent one (the timeout, nothing cached) it is tested in sdk/tests.

The server's answers are counted from its own access log, so "a 304 happened" and "one fetch for
32 threads" are what the server saw, not what the client believes.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection

from core.actors import Actor
from promptledger import client as pl
from promptledger.canary import canary_bucket
from registry.models import Environment
from registry.services import create_version, issue_token, set_deployment, set_kill_switch
from tests.conftest import need_service
from tests.factories import version_body
from tests.worker import _database_url, wait_for

ROOT = Path(__file__).resolve().parents[2]
SLUG, ENV = "loan-letter", "production"

# A client in a process of its own: argv is url, token, cache dir, calls; it prints one JSON list.
CLIENT_PROCESS = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
from promptledger.client import Client, PromptledgerError
url, token, cache_dir, calls = sys.argv[1:5]
client = Client(url=url, token=token, cache_dir=cache_dir, timeout=3)
out = []
for _ in range(int(calls)):
    try:
        p = client.get_prompt("loan-letter", "production")
        out.append({"version": p.number, "content_hash": p.content_hash, "source": p.source,
                    "rendered": p.render(name="Ada")})
    except PromptledgerError as exc:
        out.append({"error": type(exc).__name__, "message": str(exc)})
print(json.dumps(out))
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


class ServerProcess:
    """gunicorn serving the app on the test database, with an access log of ``status path``."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = tmp_path / "access.log"
        self.error_log = tmp_path / "server.log"
        self.var_dir = tmp_path / "server-var"
        self.proc = None

    def start(self):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROMPTLEDGER_"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PROMPTLEDGER_VAR_DIR": str(self.var_dir),
            "PROMPTLEDGER_AUDIT_SIGNING_KEY": settings.PROMPTLEDGER_AUDIT_SIGNING_KEY,
            "PROMPTLEDGER_AUDIT_SINK": settings.PROMPTLEDGER_AUDIT_SINK,
        }
        argv = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread",
            "--workers", "1", "--threads", "8", "--access-logfile", str(self.access_log),
            "--access-logformat", "%(s)s %(U)s", "--error-logfile", str(self.error_log), "config.wsgi:application",
        ]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env)
        wait_for(self._answers, timeout=60, interval=0.1, message=f"gunicorn to answer at {self.url}")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            log = self.error_log.read_text() if self.error_log.exists() else ""
            raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{log[-3000:]}")
        try:  # an HTTP answer, not just the port: the worker has loaded the app
            pl.Client(url=self.url, token="", cache_dir=False, timeout=2).get_json("prompts/")
        except pl.Unauthorized:
            return True
        except pl.ConnectionFailed:
            return False
        return True

    def stop(self):
        """Really stopped: the process is gone and the port refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        assert refused(self.port)

    def statuses(self, slug=SLUG):
        """The status of every resolve of ``slug`` the server answered, in order."""
        if not self.access_log.exists():
            return []
        marker = f"/api/v1/prompts/{slug}/resolve"
        return [int(line.split()[0]) for line in self.access_log.read_text().splitlines() if marker in line]

    def expect(self, condition, message):
        """Wait until the statuses logged so far satisfy ``condition``. gunicorn logs a request just
        after sending its answer, so a line can lag behind what the client already got; first
        ``settle``, so lines that should NOT be there have had their chance to appear."""
        self.settle()
        wait_for(lambda: condition(self.statuses()), timeout=10, interval=0.02, message=message)

    def settle(self):
        """Wait until the server has answered and logged one more request of its own, sent after
        everything the test sent so far."""
        slug = f"settle-{time.monotonic_ns()}"
        try:
            pl.Client(url=self.url, token="", cache_dir=False).resolve(slug, ENV)
        except pl.APIError:
            pass
        wait_for(lambda: self.statuses(slug), timeout=10, interval=0.02, message="the access log")


def run_client(url, token, cache_dir, calls=1):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PROMPTLEDGER_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_PROCESS, url, token, str(cache_dir), str(calls)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return SimpleNamespace(results=json.loads(done.stdout), stderr=done.stderr)


@pytest.fixture
def deployed(transactional_db, cast, prompt, version):
    need_service("PostgreSQL", connection.vendor == "postgresql",
                 "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptledger (the server is another process)")
    production = Environment.objects.get(slug=ENV)
    owner = Actor(user=cast["owner"])
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    _, token = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    return SimpleNamespace(token=token, version=version, prompt=prompt, production=production, owner=owner,
                           author=Actor(user=cast["author"]))


@pytest.fixture
def make_client():
    """``make_client(url=..., ...)``: a ``Client`` closed when the test ends, so no background
    refresh outlives it."""
    made = []

    def make(**options):
        made.append(pl.Client(**options))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def server(tmp_path, deployed):
    running = ServerProcess(tmp_path).start()
    yield running
    running.stop()


def new_version(deployed, content):
    body = version_body(content)
    made, _ = create_version(actor=deployed.author, prompt=deployed.prompt, messages=body["messages"],
                             variables=body["variables"], model=body["model"], message="next")
    return made


def test_a_new_process_gets_the_last_known_good_copy_from_disk_while_the_server_is_down(server, deployed, tmp_path):
    cache_dir = tmp_path / "cache"
    first = run_client(server.url, deployed.token, cache_dir)
    assert first.results == [{
        "version": 1, "content_hash": deployed.version.content_hash, "source": "server",
        "rendered": [{"role": "system", "content": "Write to Ada."}],
    }]
    saved = list(cache_dir.rglob("*.json"))
    assert len(saved) == 1 and oct(saved[0].stat().st_mode & 0o777) == "0o600"
    assert not list(cache_dir.rglob(".tmp-*"))

    server.stop()
    second = run_client(server.url, deployed.token, cache_dir, calls=3)

    assert [r.get("version") for r in second.results] == [1, 1, 1], second.results
    assert {r["source"] for r in second.results} == {"disk"}
    assert second.results[0]["content_hash"] == deployed.version.content_hash
    assert second.results[0]["rendered"] == [{"role": "system", "content": "Write to Ada."}]
    assert second.stderr.count("last-known-good") == 1, second.stderr  # a warning, logged once
    assert server.url in second.stderr


def test_a_kill_switch_reaches_a_client_holding_a_fresh_copy_and_no_copy_is_served_after_it(
    make_client, server, deployed, tmp_path
):
    ttl, cache_dir = 0.5, tmp_path / "cache"
    client = make_client(url=server.url, token=deployed.token, cache_dir=cache_dir, ttl=ttl, timeout=5)
    assert client.get_prompt(SLUG, ENV).number == 1
    wait_for(lambda: list(cache_dir.rglob("*.json")), timeout=10, interval=0.02, message="the disk copy")

    set_kill_switch(actor=deployed.owner, prompt=deployed.prompt, environment=deployed.production, disabled=True,
                    reason="incident 7: leaking account numbers")
    before = []

    def disabled_now():
        try:
            before.append(client.get_prompt(SLUG, ENV))
        except pl.PromptDisabled as exc:
            return exc
        return None

    refusal = wait_for(disabled_now, timeout=ttl + 20, interval=0.01, message="the kill switch to reach the client")
    assert refusal.code == "prompt_disabled" and "incident 7" in refusal.detail
    assert all(p.number == 1 for p in before)  # the copy held until it was revalidated
    server.expect(lambda statuses: 423 in statuses, "the 423 in the access log")

    # From now on nothing cached is served: not from memory, not with a fallback, not from disk.
    for _ in range(20):
        with pytest.raises(pl.PromptDisabled):
            client.get_prompt(SLUG, ENV)
    with pytest.raises(pl.PromptDisabled):
        client.get_prompt(SLUG, ENV, fallback={"messages": [{"role": "system", "content": "Hello."}]})
    assert not list(cache_dir.rglob("*.json"))
    [up] = run_client(server.url, deployed.token, cache_dir).results
    assert up["error"] == "PromptDisabled" and "incident 7" in up["message"]
    server.stop()
    [down] = run_client(server.url, deployed.token, cache_dir).results
    assert down["error"] == "PromptUnavailable", down


def test_a_deploy_reaches_the_client_within_one_ttl_and_unchanged_copies_are_revalidated_with_304(
    make_client, server, deployed, tmp_path
):
    ttl = 1.0
    client = make_client(url=server.url, token=deployed.token, cache_dir=tmp_path / "cache", ttl=ttl, timeout=5)
    assert client.get_prompt(SLUG, ENV).number == 1

    # Stale copies are revalidated; nothing changed, so the server answers 304 without a body.
    wait_for(lambda: client.get_prompt(SLUG, ENV).number == 1 and server.statuses().count(304) >= 2,
             timeout=30, interval=0.05, message="two revalidations answered 304")
    server.expect(lambda statuses: statuses.count(200) == 1, "one 200")

    v2 = new_version(deployed, "Dear {{ name }}, your letter.")
    set_deployment(actor=deployed.owner, prompt=deployed.prompt, environment=deployed.production, version=v2)
    moved_at = time.monotonic()
    wait_for(lambda: client.get_prompt(SLUG, ENV).number == 2, timeout=30, interval=0.02,
             message="the client to see version 2")
    # One TTL, plus the one request that revalidates and the polling step.
    assert time.monotonic() - moved_at < ttl + 1.0
    prompt = client.get_prompt(SLUG, ENV)
    assert prompt.content_hash == v2.content_hash
    assert prompt.render(name="Ada") == [{"role": "system", "content": "Dear Ada, your letter."}]
    server.expect(lambda statuses: statuses.count(200) == 2, "a second 200, and only one")


def test_the_fallback_is_used_only_when_nothing_was_ever_cached(make_client, server, deployed, tmp_path):
    fallback = {"messages": [{"role": "system", "content": "Hello {{ name }}, please wait."}],
                "variables": {"name": {"type": "string"}}, "model": {"provider": "offline", "name": "offline-echo-1"}}
    cache_dir = tmp_path / "cache"

    nowhere = make_client(url=f"http://127.0.0.1:{free_port()}", token="pl_x", cache_dir=cache_dir, timeout=2)
    used = nowhere.get_prompt(SLUG, ENV, fallback=fallback)
    assert used.source == "fallback" and used.number is None
    assert used.render(name="Ada") == [{"role": "system", "content": "Hello Ada, please wait."}]

    online = make_client(url=server.url, token=deployed.token, cache_dir=cache_dir, timeout=5)
    fetched = online.get_prompt(SLUG, ENV, fallback=fallback)
    assert (fetched.source, fetched.number) == ("server", 1)
    online.close()  # the disk copy is written just after the answer; close waits for it

    server.stop()
    later = make_client(url=server.url, token=deployed.token, cache_dir=cache_dir, timeout=2)
    remembered = later.get_prompt(SLUG, ENV, fallback=fallback)
    assert (remembered.source, remembered.number) == ("disk", 1)
    with pytest.raises(pl.ConfigurationError):  # a fallback that could never render says so
        make_client(url=server.url, token="pl_x", cache_dir=False, timeout=1).get_prompt(
            SLUG, ENV, fallback={"messages": [{"role": "system", "content": "{{ undeclared }}"}]})


def test_a_refusal_is_not_mistaken_for_an_outage(make_client, server, deployed, tmp_path):
    cache_dir = tmp_path / "cache"
    first = make_client(url=server.url, token=deployed.token, cache_dir=cache_dir)
    first.get_prompt(SLUG, ENV)
    first.close()  # the disk copy is written just after the answer; close waits for it
    fallback = {"messages": [{"role": "system", "content": "Hello."}]}
    with pytest.raises(pl.Unauthorized):  # the disk copy is there, but the server answered: no
        make_client(url=server.url, token="pl_revoked", cache_dir=cache_dir).get_prompt(SLUG, ENV, fallback=fallback)
    with pytest.raises(pl.NotFound) as missing:
        make_client(url=server.url, token=deployed.token, cache_dir=cache_dir).get_prompt(SLUG, "staging")
    assert missing.value.code == "not_deployed"
    # A 401 is about the token, not the prompt, and staging's 404 about staging: production's copy stays.
    assert list(cache_dir.rglob("*.json"))


def test_many_threads_share_one_fetch_and_one_revalidation(make_client, server, deployed, tmp_path):
    ttl, threads = 1.0, 32
    client = make_client(url=server.url, token=deployed.token, cache_dir=tmp_path / "cache", ttl=ttl, timeout=10)

    def together():
        barrier, numbers = threading.Barrier(threads), []

        def call():
            barrier.wait()
            numbers.append(client.get_prompt(SLUG, ENV).number)

        workers = [threading.Thread(target=call) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
        return numbers

    assert together() == [1] * threads  # nothing cached: they all waited for the same fetch
    fetched_at = time.monotonic()
    server.expect(lambda statuses: statuses == [200], "exactly one fetch")

    wait_for(lambda: time.monotonic() > fetched_at + ttl, timeout=ttl + 5, interval=0.02, message="the TTL")
    assert together() == [1] * threads  # stale: all answered from memory, one revalidation behind
    server.expect(lambda statuses: statuses == [200, 304], "exactly one revalidation")


def test_units_get_their_canary_side_and_share_one_cached_answer_per_bucket(make_client, server, deployed, tmp_path):
    v2 = new_version(deployed, "Dear {{ name }}, canary.")
    set_deployment(actor=deployed.owner, prompt=deployed.prompt, environment=deployed.production,
                   version=deployed.version, canary_version=v2, canary_percent=30)
    client = make_client(url=server.url, token=deployed.token, cache_dir=tmp_path / "cache", ttl=60)
    units = [f"customer-{n}" for n in range(300)]
    for unit in units:
        expected = 2 if canary_bucket(SLUG, ENV, unit) < 30 else 1
        got = client.get_prompt(SLUG, ENV, unit=unit)
        assert (got.number, got.canary) == (expected, expected == 2), unit
    assert client.get_prompt(SLUG, ENV).number == 1  # no unit: never the canary
    buckets = {canary_bucket(SLUG, ENV, unit) for unit in units}
    assert len(buckets) + 1 < len(units)
    server.expect(lambda statuses: statuses == [200] * (len(buckets) + 1), "one fetch per bucket, and no unit")
