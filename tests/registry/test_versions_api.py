"""The versions contract: push (201 new, 200 identical), bad input named by field, permissions."""

import json

import pytest

from registry.models import PromptVersion
from tests.factories import version_body

URL = "/api/v1/prompts/loan-letter/versions/"


def stored(prompt):
    return list(PromptVersion.objects.filter(prompt=prompt).values_list("number", "content_hash"))


def test_push_creates_version_one_with_content_hash(api_for, prompt):
    response = api_for("author").post(URL, version_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["number"] == 1
    assert len(body["content_hash"]) == 64
    assert body["author"] == "author"


def test_pushing_identical_content_returns_existing_version(api_for, prompt):
    client = api_for("author")
    first = client.post(URL, version_body(), format="json").json()
    again = client.post(URL, version_body(message="same content, other note"), format="json")
    assert again.status_code == 200
    assert again.json()["number"] == first["number"]
    assert PromptVersion.objects.filter(prompt=prompt).count() == 1


def test_new_content_gets_next_number_and_parent(api_for, prompt):
    client = api_for("author")
    client.post(URL, version_body(), format="json")
    second = client.post(URL, version_body("Dear {{ name }},"), format="json").json()
    assert second["number"] == 2
    assert second["parent"] == 1


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (version_body("Hello {{ name "), "messages[0].content", "line 1: template syntax error"),
        (
            version_body("Hi {{ name }}\nYou owe {{ amount }}"),
            "messages[0].content",
            "line 2: 'amount' is not a declared",
        ),
        (version_body("x" * (100 * 1024 + 1)), "messages[0].content", "the limit is 102400 bytes"),
        (
            version_body(model={"provider": "offline", "name": "nope-9", "params": {}}),
            "model.name",
            "not in the model register",
        ),
        (version_body(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role", "wizard"),
        (version_body(variables={"name": {"type": "text"}}), "variables.name.type", "text"),
        (version_body(messages=[]), "messages", ""),
    ],
    ids=["syntax", "undeclared", "too-big", "unregistered-model", "bad-role", "bad-type", "no-messages"],
)
def test_bad_version_is_refused_naming_the_field(api_for, prompt, body, field, fragment):
    response = api_for("author").post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    errors = response.json()["field_errors"]
    assert field in errors, errors
    assert fragment in " ".join(errors[field])
    assert stored(prompt) == []


def test_malformed_json_body_is_a_400_with_code(api_for, prompt):
    response = api_for("author").post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert stored(prompt) == []


def test_viewer_cannot_push(api_for, prompt):
    response = api_for("viewer").post(URL, version_body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "role_too_low"
    assert stored(prompt) == []


def test_author_of_another_team_cannot_push(api_for, prompt):
    response = api_for("outsider").post(URL, version_body(), format="json")
    # The prompt is not visible outside its team, so it does not exist for them.
    assert response.status_code == 404
    assert response.json()["code"] == "prompt_not_found"
    assert stored(prompt) == []


def test_token_without_write_scope_cannot_push(api_for, prompt):
    response = api_for("author", scopes=["prompts:read"]).post(URL, version_body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"


def test_anonymous_request_gets_401(anon, prompt):
    response = anon.post(URL, version_body(), format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert anon.get("/api/v1/prompts/").status_code == 401


def test_revoked_or_unknown_token_gets_401(anon, prompt):
    anon.credentials(HTTP_AUTHORIZATION="Bearer pl_not-a-real-token")
    response = anon.get("/api/v1/prompts/")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_diff_gives_unified_text_and_per_message(api_for, prompt):
    client = api_for("author")
    client.post(URL, version_body("Dear {{ name }},\nThanks."), format="json")
    client.post(URL, version_body("Dear {{ name }},\nThank you."), format="json")
    response = client.get(f"{URL}2/diff/?against=1")
    assert response.status_code == 200
    body = response.json()
    assert "-Thanks." in body["unified"] and "+Thank you." in body["unified"]
    assert body["messages"][0]["status"] == "changed"


def test_render_fills_variables_and_names_missing_or_mistyped(api_for, prompt):
    client = api_for("author")
    client.post(URL, version_body(), format="json")
    ok = client.post(f"{URL}1/render", {"variables": {"name": "Ada"}}, format="json")
    assert ok.status_code == 200
    assert ok.json()["messages"][0]["content"] == "Write to Ada."
    missing = client.post(f"{URL}1/render", {"variables": {}}, format="json")
    assert missing.status_code == 400
    assert "variables.name" in missing.json()["field_errors"]
    mistyped = client.post(f"{URL}1/render", {"variables": {"name": 42}}, format="json")
    assert mistyped.status_code == 400
    assert "must be of type string, got integer" in json.dumps(mistyped.json())


def test_unknown_prompt_is_404_with_code(api_for, cast):
    response = api_for("author").get("/api/v1/prompts/no-such-prompt/versions/")
    assert response.status_code == 404
    assert response.json()["code"] == "prompt_not_found"
