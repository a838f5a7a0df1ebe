"""Prompts over the API: create, list with filters (PII first of all), read, update, and the
errors each bad input gets."""

import pytest

from registry.models import Prompt

URL = "/api/v1/prompts/"


def body(**overrides):
    data = {
        "slug": "claim-triage",
        "name": "Claim triage",
        "team": "payments",
        "tier": 1,
        "owner": "owner",
        "tags": ["claims"],
        "data_categories": ["pii", "phi"],
    }
    data.update(overrides)
    return data


def test_author_creates_a_prompt(api_for, cast):
    response = api_for("author").post(URL, body(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["slug"] == "claim-triage"
    assert data["data_categories"] == ["phi", "pii"]
    assert data["owner"] == "owner"
    assert [d["environment"] for d in data["deployments"]] == []


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"slug": "Bad Slug!"}, "slug", "invalid_slug"),
        ({"slug": "-leading"}, "slug", "invalid_slug"),
        ({"tier": 4}, "tier", "invalid_tier"),
        ({"tier": -1}, "tier", "invalid_tier"),
        ({"tier": "high"}, "tier", "invalid"),
        ({"team": "nope"}, "team", "unknown_team"),
        ({"owner": "ghost"}, "owner", "unknown_user"),
        ({"owner": "outsider"}, "owner", "owner_not_member"),
        ({"data_categories": ["pii", "gossip"]}, "data_categories", "invalid"),
        ({"name": ""}, "name", "invalid"),
    ],
)
def test_bad_prompt_input_is_a_400_naming_the_field(api_for, cast, overrides, field, code):
    response = api_for("author").post(URL, body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    data = response.json()
    assert data["code"] == code
    assert field in data["field_errors"], data
    assert not Prompt.objects.exists()


def test_duplicate_slug_is_a_409(api_for, prompt):
    response = api_for("author").post(URL, body(slug="loan-letter"), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "slug_taken"


def test_viewer_cannot_create_a_prompt(api_for, cast):
    response = api_for("viewer").post(URL, body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "role_too_low"


def test_member_of_another_team_cannot_create_in_this_team(api_for, cast):
    response = api_for("outsider").post(URL, body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "not_team_member"


@pytest.fixture
def catalogue(cast, prompt):
    from tests.factories import PromptFactory

    PromptFactory(
        slug="fraud-explainer",
        team=cast["team"],
        owner=cast["owner"],
        tier=0,
        data_categories=["financial"],
        tags=["fraud"],
    )
    PromptFactory(
        slug="discharge-summary",
        team=cast["team"],
        owner=cast["owner"],
        tier=0,
        data_categories=["phi", "pii"],
        name="Discharge summary",
    )
    PromptFactory(
        slug="growth-banner", team=cast["other_team"], owner=cast["outsider"], tier=3, data_categories=["pii"]
    )
    return cast


def slugs(response):
    assert response.status_code == 200, response.json()
    return [p["slug"] for p in response.json()["results"]]


def test_list_shows_only_prompts_of_my_teams(api_for, catalogue):
    assert slugs(api_for("viewer").get(URL)) == ["discharge-summary", "fraud-explainer", "loan-letter"]
    assert slugs(api_for("outsider").get(URL)) == ["growth-banner"]


def test_compliance_sees_every_prompt(api_for, catalogue):
    assert len(slugs(api_for("compliance").get(URL))) == 4


def test_filter_every_prompt_that_touches_pii(api_for, catalogue):
    assert slugs(api_for("compliance").get(URL, {"data_category": "pii"})) == [
        "discharge-summary",
        "growth-banner",
        "loan-letter",
    ]


def test_filters_by_tier_team_tag_and_search(api_for, catalogue):
    client = api_for("admin")
    assert slugs(client.get(URL, {"tier": 0})) == ["discharge-summary", "fraud-explainer"]
    assert slugs(client.get(URL, {"team": "growth"})) == ["growth-banner"]
    assert slugs(client.get(URL, {"tag": "fraud"})) == ["fraud-explainer"]
    assert slugs(client.get(URL, {"q": "discharge"})) == ["discharge-summary"]


def test_bad_tier_filter_is_a_400(api_for, catalogue):
    response = api_for("admin").get(URL, {"tier": "9"})
    assert response.status_code == 400
    assert "tier" in response.json()["field_errors"]


def test_list_is_paginated(api_for, catalogue):
    data = api_for("admin").get(URL, {"page_size": 2}).json()
    assert data["count"] == 4
    assert len(data["results"]) == 2
    assert data["next"]


def test_detail_shows_latest_version_and_deployments(api_for, version):
    data = api_for("viewer").get(f"{URL}loan-letter/").json()
    assert data["latest_version"] == 1
    assert data["tier"] == 1


def test_owner_raises_the_tier_but_lowering_needs_approval(api_for, prompt):
    client = api_for("owner")
    raised = client.patch(f"{URL}loan-letter/", {"tier": 0}, format="json")
    assert raised.status_code == 200
    assert raised.json()["tier"] == 0
    lowered = client.patch(f"{URL}loan-letter/", {"tier": 3}, format="json")
    assert lowered.status_code == 403
    assert lowered.json()["code"] == "tier_lowering_needs_approval"
    prompt.refresh_from_db()
    assert prompt.tier == 0


def test_author_edits_name_but_not_data_categories(api_for, prompt):
    client = api_for("author")
    assert client.patch(f"{URL}loan-letter/", {"name": "Loan letters"}, format="json").status_code == 200
    refused = client.patch(f"{URL}loan-letter/", {"data_categories": []}, format="json")
    assert refused.status_code == 403
    prompt.refresh_from_db()
    assert prompt.data_categories == ["pii", "financial"]
