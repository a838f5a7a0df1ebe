"""The ``Prompt`` that ``get_prompt`` returns: it renders exactly as the server's render endpoint does
(same answer, same refusals), it cannot be changed by one caller under the others, and the asyncio
client answers from memory without blocking the loop."""

import asyncio
import copy
import json
import logging
import socket
import threading
import time

import pytest

from promptledger import client as pl
from promptledger.prompt import Prompt
from registry.actors import Actor
from registry.models import Environment
from registry.services import create_version, set_deployment
from tests.factories import version_body

TEMPLATE = (
    "Dear {{ name }},\n{% for item in items %}- {{ item }}\n{% endfor %}"
    "{% if vip %}Thank you for {{ years }} years.{% endif %}"
)
VARIABLES = {
    "name": {"type": "string", "required": True},
    "items": {"type": "array", "default": ["a letter"]},
    "vip": {"type": "boolean", "default": False},
    "years": {"type": "integer", "required": False},
}


@pytest.fixture
def resolved(api_for, cast, prompt):
    """The resolve body of a version with several kinds of variable, deployed to production."""
    body = version_body(TEMPLATE, variables=VARIABLES)
    made, _ = create_version(actor=Actor(user=cast["author"]), prompt=prompt, messages=body["messages"],
                             variables=body["variables"], model=body["model"], message="rich")
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=made)
    api = api_for("viewer", scopes=["prompts:read"])
    answer = api.get("/api/v1/prompts/loan-letter/resolve", {"environment": "production"})
    assert answer.status_code == 200
    return api, made, json.loads(answer.content)


@pytest.mark.parametrize("values", [
    {"name": "Ada"},
    {"name": "Ada", "items": ["one", "two"], "vip": True, "years": 3},
    {},  # missing
    {"name": 42},  # mistyped
    {"name": "Ada", "nickname": "A"},  # undeclared
    {"name": "Ada", "vip": True},  # years is not required, but the template needs it
    {"name": "Ada", "items": "not a list"},
])
def test_a_prompt_renders_and_refuses_exactly_as_the_servers_render_endpoint(resolved, values):
    api, version, body = resolved
    prompt = Prompt.from_resolve(body)
    server = api.post(f"/api/v1/prompts/loan-letter/versions/{version.number}/render", {"variables": values},
                      format="json")
    if server.status_code == 200:
        assert prompt.render(**values) == server.json()["messages"]
    else:
        assert server.status_code == 400
        with pytest.raises(pl.RenderError) as refused:
            prompt.render(**values)
        assert refused.value.code == server.json()["code"]
        assert refused.value.field_errors == server.json()["field_errors"]


def test_the_sandbox_stops_a_template_on_the_client_too():
    prompt = Prompt(slug="x", environment="production", number=1, content_hash="h", variables={},
                    messages=[{"role": "system", "content": "{{ ''.__class__.__mro__ }}"}], model={})
    with pytest.raises(pl.RenderError) as refused:
        prompt.render()
    assert refused.value.code == "render_error"


def test_a_prompt_cannot_be_changed_by_one_caller_under_the_others(resolved):
    prompt = Prompt.from_resolve(resolved[2])
    with pytest.raises(TypeError):
        prompt.messages.append({"role": "user", "content": "hi"})
    with pytest.raises(TypeError):
        prompt.model["params"]["temperature"] = 1
    with pytest.raises(TypeError):
        prompt.variables["name"].update(required=False)
    assert json.loads(json.dumps(prompt.messages)) == resolved[2]["messages"]
    mine = copy.deepcopy(prompt.model)
    mine["params"]["temperature"] = 1  # a copy is the caller's own, plain dicts
    assert prompt.model["params"]["temperature"] == 0 and type(mine) is dict
    assert {**prompt.model["params"], "max_tokens": 5} == {"temperature": 0, "max_tokens": 5}
    rendered = prompt.render(name="Ada")
    rendered.append({"role": "user", "content": "and this"})  # render's lists are new each time
    assert len(prompt.render(name="Ada")) == 1


def test_an_unreadable_disk_copy_counts_as_never_cached(tmp_path, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens
    client = pl.Client(url=url, token="pl_x", cache_dir=tmp_path, timeout=1, retries=0)
    folder = client.prompts.disk.folder("loan-letter", "production")
    folder.mkdir(parents=True)
    (folder / "all.json").write_text('{"etag": "x", "data": {"slug": "loan-le')  # torn: not ours
    with caplog.at_level(logging.WARNING, logger="promptledger.client"):
        with pytest.raises(pl.PromptUnavailable):
            client.get_prompt("loan-letter", "production")
    assert "unreadable cached copy" in caplog.text


def test_the_async_client_never_blocks_the_event_loop(tmp_path):
    listener = socket.socket()  # a server that accepts and never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    async def scenario():
        client = pl.AsyncClient(url=url, token="pl_x", cache_dir=tmp_path, timeout=0.5, ttl=60)
        client.sync.prompts.disk.save("loan-letter", "production", None, '"h"', {
            "slug": "loan-letter", "environment": "production", "version": 3, "content_hash": "h", "canary": False,
            "messages": [{"role": "system", "content": "Hi {{ name }}."}],
            "variables": {"name": {"type": "string", "required": True}}, "model": {},
        })
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        first = await client.get_prompt("loan-letter", "production")  # waits its timeout, then the disk copy
        assert ticks >= 10  # the loop kept running meanwhile
        started = time.monotonic()
        again = await client.get_prompt("loan-letter", "production")
        assert time.monotonic() - started < 0.05
        ticking.cancel()
        await client.close()
        return first, again

    try:
        first, again = asyncio.run(scenario())
    finally:
        for conn, _ in held:
            conn.close()
        listener.close()
    assert (first.number, first.source) == (3, "disk") and again is first
    assert first.render(name="Ada") == [{"role": "system", "content": "Hi Ada."}]
