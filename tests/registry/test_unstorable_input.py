"""Strings PostgreSQL cannot store (NUL, unpaired surrogates) are refused with a 400 naming the
field on every way in: API bodies, case files, query strings, browser forms, the services."""

import json

import pytest
from django.test import Client

from core.actors import Actor
from core.errors import ValidationFailed
from evals.models import Case, Suite
from registry.models import PromptVersion
from registry.services import create_version
from registry.services.validation import UNSTORABLE_ADVICE
from tests.factories import version_body


def _post_json(client, path, text):
    return client.post(path, data=text, content_type="application/json")


def test_a_nul_in_model_params_is_a_400_naming_the_field_and_nothing_is_written(api_for, prompt, version):
    body = version_body(content="Dear {{ name }}, again.")
    body["model"]["params"] = {"temperature": 0, "user": "a\u0000b"}
    response = api_for("author").post("/api/v1/prompts/loan-letter/versions/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "unstorable_text"
    assert list(error["field_errors"]) == ["model.params.user"]
    assert "NUL" in error["field_errors"]["model.params.user"][0]
    assert PromptVersion.objects.filter(prompt=prompt).count() == 1


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"name": "x", "description": "\\ud800"}', "description"),
        ('{"tags": ["ok", "bad\\u0000"]}', "tags[1]"),
        ('{"na\\u0000me": "x"}', "na\ufffdme"),
    ],
)
def test_escapes_that_cannot_be_stored_are_a_400_wherever_they_are_in_the_body(api_for, prompt, text, field):
    response = _post_json(api_for("owner"), "/api/v1/prompts/", text)
    assert response.status_code == 400
    assert response.json()["field_errors"] == {field: [UNSTORABLE_ADVICE]}
    assert response.json()["code"] == "unstorable_text"


def test_a_case_file_line_with_a_nul_is_refused_and_the_suite_is_unchanged(api_for, cast, prompt):
    client = api_for("author")
    client.post("/api/v1/suites/", {"slug": "s", "name": "S", "team": "payments"}, format="json")
    jsonl = json.dumps({"vars": {"name": "A\u0000"}, "assertions": [{"type": "contains", "value": "A"}]})
    response = client.post("/api/v1/suites/s/cases/", data=jsonl + "\n", content_type="application/x-ndjson")
    assert response.status_code == 400
    assert response.json()["field_errors"] == {"[0].vars.name": [UNSTORABLE_ADVICE]}
    assert not Case.objects.filter(suite=Suite.objects.get(slug="s")).exists()


def test_a_nul_in_a_query_parameter_is_a_400_naming_it(api_for, prompt):
    response = api_for("viewer").get("/api/v1/prompts/", {"q": "loan\u0000"})
    assert response.status_code == 400
    assert response.json()["code"] == "unstorable_text"
    assert list(response.json()["field_errors"]) == ["q"]


def test_a_nul_in_a_browser_form_is_a_400_page_that_says_which_field(cast):
    response = Client().post("/accounts/login/", {"username": "owner\u0000", "password": "x"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "username" in page and "cannot be saved" in page


def test_the_service_refuses_it_whatever_called_it(cast, prompt):
    body = version_body()
    with pytest.raises(ValidationFailed) as caught:
        create_version(actor=Actor(user=cast["author"]), prompt=prompt, variables=body["variables"],
                       model=body["model"], messages=[{"role": "system", "content": "Hi {{ name }}\u0000"}])
    assert list(caught.value.field_errors) == ["messages[0].content"]
