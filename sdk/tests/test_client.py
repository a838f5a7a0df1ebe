"""``Client`` and ``AsyncClient`` when the server is away or silent: a URL that is not http(s) is
refused, ``get_prompt`` never waits longer than its timeout, falls back only when nothing was ever
cached, treats an unreadable disk copy as none, names the prompt and server when it has nothing to
give, and the asyncio client answers from memory without blocking the loop."""

import asyncio
import json
import logging
import subprocess
import sys
import time

import pytest

from promptledger import client as pl
from promptledger.prompt import Prompt

SLUG, ENV = "loan-letter", "production"
SAVED = {
    "slug": SLUG, "environment": ENV, "version": 4, "content_hash": "abc", "canary": False,
    "messages": [{"role": "system", "content": "Saved {{ name }}."}],
    "variables": {"name": {"type": "string", "required": True}}, "model": {},
}

# A client in a process of its own: argv is url, cache dir; it prints one JSON object.
CLIENT_PROCESS = """
import json, sys
from promptledger.client import Client, PromptledgerError
client = Client(url=sys.argv[1], token="pl_x", cache_dir=sys.argv[2], timeout=3)
try:
    p = client.get_prompt("loan-letter", "production")
    print(json.dumps({"version": p.number}))
except PromptledgerError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def test_client_refuses_a_url_that_is_not_http():
    with pytest.raises(pl.ConfigurationError):
        pl.Client(url="file:///etc/passwd", token="x")


def test_with_nothing_cached_and_the_server_down_the_error_names_the_prompt_and_the_server(
    closed_url, environment, tmp_path
):
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", CLIENT_PROCESS, closed_url, str(tmp_path / "empty-cache")],
        env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    outcome = json.loads(done.stdout)
    assert outcome["error"] == "PromptUnavailable"
    message = outcome["message"]
    assert "'loan-letter'" in message and "'production'" in message
    assert f"the server at {closed_url} is unreachable" in message
    assert "no copy of it was ever cached" in message and str(tmp_path / "empty-cache") in message


def test_get_prompt_never_blocks_longer_than_the_timeout_on_a_silent_server(silent_server, tmp_path):
    client = pl.Client(url=silent_server.url, token="pl_x", cache_dir=tmp_path / "cache", timeout=0.5, retries=5,
                       ttl=0)
    try:
        started = time.monotonic()
        with pytest.raises(pl.PromptUnavailable) as unavailable:
            client.get_prompt(SLUG, ENV)
        assert time.monotonic() - started < 0.5 + 0.3
        assert "no answer within 0.5 s" in str(unavailable.value) or "timed out" in str(unavailable.value)

        started = time.monotonic()
        fallback = client.get_prompt(SLUG, ENV, fallback={"messages": [{"role": "system", "content": "Hi."}]})
        assert fallback.source == "fallback" and time.monotonic() - started < 0.5 + 0.3

        # With a copy on disk, the first call waits its timeout once; every later one is answered
        # from memory at once, while revalidations wait on the silent server in the background.
        client.prompts.disk.save(SLUG, ENV, None, '"abc"', SAVED)
        started = time.monotonic()
        assert client.get_prompt(SLUG, ENV).number == 4
        assert time.monotonic() - started < 0.5 + 0.3
        for _ in range(50):
            started = time.monotonic()
            assert client.get_prompt(SLUG, ENV).source == "disk"
            assert time.monotonic() - started < 0.05
    finally:
        client.close()  # its revalidations end (within the timeout) before the socket closes


def test_a_fallback_that_could_never_render_is_refused(closed_url):
    client = pl.Client(url=closed_url, token="pl_x", cache_dir=False, timeout=1)
    with pytest.raises(pl.ConfigurationError):
        client.get_prompt(SLUG, ENV, fallback={"messages": [{"role": "system", "content": "{{ undeclared }}"}]})


def test_an_unreadable_disk_copy_counts_as_never_cached(closed_url, tmp_path, caplog):
    client = pl.Client(url=closed_url, token="pl_x", cache_dir=tmp_path, timeout=1, retries=0)
    folder = client.prompts.disk.folder(SLUG, ENV)
    folder.mkdir(parents=True)
    (folder / "all.json").write_text('{"etag": "x", "data": {"slug": "loan-le')  # torn: not ours
    with caplog.at_level(logging.WARNING, logger="promptledger.client"):
        with pytest.raises(pl.PromptUnavailable):
            client.get_prompt(SLUG, ENV)
    assert "unreadable cached copy" in caplog.text


def test_the_async_client_never_blocks_the_event_loop(silent_server, tmp_path):
    async def scenario():
        client = pl.AsyncClient(url=silent_server.url, token="pl_x", cache_dir=tmp_path, timeout=0.5, ttl=60)
        client.sync.prompts.disk.save(SLUG, ENV, None, '"h"', {
            **SAVED, "version": 3, "content_hash": "h", "messages": [{"role": "system", "content": "Hi {{ name }}."}],
        })
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        first = await client.get_prompt(SLUG, ENV)  # waits its timeout, then the disk copy
        assert ticks >= 10  # the loop kept running meanwhile
        started = time.monotonic()
        again = await client.get_prompt(SLUG, ENV)
        assert time.monotonic() - started < 0.05
        ticking.cancel()
        await client.close()
        return first, again

    first, again = asyncio.run(scenario())
    assert (first.number, first.source) == (3, "disk") and again is first
    assert first.render(name="Ada") == [{"role": "system", "content": "Hi Ada."}]


def test_a_prompt_cannot_be_changed_by_one_caller_under_the_others():
    prompt = Prompt.from_resolve({**SAVED, "model": {"name": "m", "params": {"temperature": 0}}})
    with pytest.raises(TypeError):
        prompt.messages.append({"role": "user", "content": "hi"})
    with pytest.raises(TypeError):
        prompt.model["params"]["temperature"] = 1
    with pytest.raises(TypeError):
        prompt.variables["name"].update(required=False)
    rendered = prompt.render(name="Ada")
    rendered.append({"role": "user", "content": "and this"})  # render's lists are new each time
    assert prompt.render(name="Ada") == [{"role": "system", "content": "Saved Ada."}]
