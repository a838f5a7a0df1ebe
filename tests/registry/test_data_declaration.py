"""Tier-0 and Tier-1 prompts say which data they touch: at least one category, or ``none`` on its
own. The rule is the service's, so the API and the browser forms give the same answer."""

import pytest

from core.actors import Actor
from core.errors import ValidationFailed
from registry.services import update_prompt
from tests.factories import PromptFactory

URL = "/api/v1/prompts/"


def body(**overrides):
    return {"slug": "claim-triage", "name": "Claim triage", "team": "payments", "tier": 0, "owner": "owner",
            "data_categories": ["pii"]} | overrides


@pytest.mark.parametrize("tier", [0, 1])
def test_a_tier_0_or_1_prompt_without_data_categories_is_refused_naming_the_field(api_for, cast, tier):
    response = api_for("author").post(URL, body(tier=tier, data_categories=[]), format="json")
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "data_categories_required"
    assert "'none'" in answer["field_errors"]["data_categories"][0]


def test_none_on_its_own_is_a_declaration(api_for, cast):
    response = api_for("author").post(URL, body(data_categories=["none"]), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["data_categories"] == ["none"]


def test_none_cannot_be_combined_with_a_category(api_for, cast):
    response = api_for("author").post(URL, body(data_categories=["none", "pii"]), format="json")
    assert response.status_code == 400
    assert "stands alone" in response.json()["field_errors"]["data_categories"][0]


def test_tiers_2_and_3_may_leave_them_undeclared(api_for, cast):
    response = api_for("author").post(URL, body(tier=2, data_categories=[]), format="json")
    assert response.status_code == 201, response.json()


def test_raising_an_undeclared_prompt_to_tier_1_is_refused(cast):
    prompt = PromptFactory(slug="faq", team=cast["team"], owner=cast["owner"], tier=2, data_categories=[])
    with pytest.raises(ValidationFailed) as refused:
        update_prompt(actor=Actor(user=cast["owner"]), prompt=prompt, tier=1)
    assert refused.value.code == "data_categories_required"
    prompt.refresh_from_db()
    assert prompt.tier == 2
    update_prompt(actor=Actor(user=cast["owner"]), prompt=prompt, tier=1, data_categories=["none"])
    prompt.refresh_from_db()
    assert (prompt.tier, prompt.data_categories) == (1, ["none"])


def test_a_prompt_undeclared_from_before_the_rule_can_still_be_renamed(cast):
    prompt = PromptFactory(slug="old", team=cast["team"], owner=cast["owner"], tier=0, data_categories=[])
    update_prompt(actor=Actor(user=cast["author"]), prompt=prompt, name="Older")
    with pytest.raises(ValidationFailed):
        update_prompt(actor=Actor(user=cast["owner"]), prompt=prompt, data_categories=[])
