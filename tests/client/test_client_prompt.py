"""The ``Prompt`` that ``get_prompt`` returns: it renders exactly as the server's render endpoint does
(same answer, same refusals) and it cannot be changed by one caller under the others. The asyncio
client and the sandbox without a server are tested in sdk/tests."""

import copy
import json

import pytest

from core.actors import Actor
from promptledger import client as pl
from promptledger.prompt import Prompt
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
