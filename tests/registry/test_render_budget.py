"""Rendering has a budget, the same on the server, in the worker and in the client library: a
template that would run for minutes, write megabytes or recurse forever is refused at once with
``template_too_expensive`` naming the limit."""

import time

import pytest

from evals import runner
from evals.models import EvalRun
from promptledger import client as pl
from promptledger.prompt import Prompt
from tests.factories import version_body

URL = "/api/v1/prompts/loan-letter/versions/"
EXPENSIVE = {
    "nested loops": ("{{ name }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                     "loop iterations"),
    "loops over a long string": ("{% for c in name * 900 %}{% for d in name * 900 %}{% endfor %}{% endfor %}",
                                 "loop iterations"),
    "a huge repetition": ("{{ name * 20000000 }}", "repetition"),
    "a recursive macro": ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}{{ name }}", "recursion"),
    "a huge power": ("{{ name }}{{ 2 ** 100000000 }}", "power"),
    "too much output": ("{% for i in range(20000) %}{{ name * 90 }}{% endfor %}", "characters of output"),
}


@pytest.mark.parametrize("case", list(EXPENSIVE))
def test_the_render_endpoint_refuses_an_expensive_template_at_once(api_for, prompt, case):
    template, limit = EXPENSIVE[case]
    client = api_for("author")
    assert client.post(URL, version_body(content=template), format="json").status_code == 201
    started = time.monotonic()
    response = client.post(f"{URL}1/render", {"variables": {"name": "Ada"}}, format="json")
    assert time.monotonic() - started < 5
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "template_too_expensive"
    assert limit in body["field_errors"]["messages[0].content"][0]


def test_the_client_library_stops_at_the_same_limit():
    template, _ = EXPENSIVE["nested loops"]
    prompt = Prompt(slug="x", environment="production", number=1, content_hash="h", model={},
                    variables={"name": {"type": "string", "required": True}},
                    messages=[{"role": "system", "content": template}])
    with pytest.raises(pl.RenderError) as refused:
        prompt.render(name="Ada")
    assert refused.value.code == "template_too_expensive"


def test_a_run_of_an_expensive_template_records_the_refusal_per_case_and_completes(api_for, prompt):
    client = api_for("author")
    client.post(URL, version_body(content=EXPENSIVE["a huge repetition"][0]), format="json")
    client.post("/api/v1/suites/", {"slug": "s", "name": "S", "team": "payments"}, format="json")
    client.post("/api/v1/suites/s/cases/", [{"vars": {"name": "A"}, "assertions": [{"type": "contains",
                                                                                     "value": "A"}]}], format="json")
    run_id = client.post("/api/v1/eval-runs/", {"prompt": "loan-letter", "version": 1, "suite": "s"},
                         format="json").json()["id"]
    runner.execute(run_id)
    run = EvalRun.objects.get(pk=run_id)
    assert run.status == "completed_with_errors"
    assert "too expensive" in run.results.get().error
