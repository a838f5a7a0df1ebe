"""Teams, members and the model risk register over the API."""

from registry.models import LLMModel, Membership


def test_admin_creates_a_team_and_others_cannot(api_for, cast):
    created = api_for("admin").post("/api/v1/teams/", {"slug": "claims", "name": "Claims"}, format="json")
    assert created.status_code == 201
    refused = api_for("owner").post("/api/v1/teams/", {"slug": "other", "name": "Other"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "site_role_required"


def test_team_slug_is_validated_and_unique(api_for, cast):
    client = api_for("admin")
    bad = client.post("/api/v1/teams/", {"slug": "No Spaces", "name": "x"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_slug"
    taken = client.post("/api/v1/teams/", {"slug": "payments", "name": "again"}, format="json")
    assert taken.status_code == 409


def test_team_owner_adds_a_member_and_changes_role(api_for, cast):
    from tests.factories import UserFactory

    UserFactory(username="newbie")
    client = api_for("owner")
    added = client.post("/api/v1/teams/payments/members/", {"username": "newbie", "role": "viewer"}, format="json")
    assert added.status_code == 201, added.json()
    client.post("/api/v1/teams/payments/members/", {"username": "newbie", "role": "author"}, format="json")
    assert Membership.objects.get(team=cast["team"], user__username="newbie").role == "author"
    listed = client.get("/api/v1/teams/payments/members/").json()
    assert "newbie" in [m["username"] for m in listed["results"]]


def test_author_cannot_add_members_and_bad_role_is_named(api_for, cast):
    refused = api_for("author").post(
        "/api/v1/teams/payments/members/", {"username": "viewer", "role": "owner"}, format="json"
    )
    assert refused.status_code == 403
    bad = api_for("owner").post(
        "/api/v1/teams/payments/members/", {"username": "viewer", "role": "boss"}, format="json"
    )
    assert bad.status_code == 400
    assert "role" in bad.json()["field_errors"]
    assert Membership.objects.get(team=cast["team"], user__username="viewer").role == "viewer"


def test_teams_list_only_mine(api_for, cast):
    data = api_for("viewer").get("/api/v1/teams/").json()
    assert [t["slug"] for t in data["results"]] == ["payments"]


def test_risk_registers_a_model_with_quarterly_review(api_for, cast):
    from registry.models import SiteRole
    from tests.factories import UserFactory

    risk = UserFactory(username="risk")
    SiteRole.objects.create(user=risk, role=SiteRole.RISK)
    cast["risk"] = risk
    response = api_for("risk").post(
        "/api/v1/llm-models/",
        {
            "provider": "openai",
            "model_id": "gpt-4o-mini-2024-07-18",
            "status": "approved",
            "owner": "owner",
            "failure_modes": "Invents account numbers.",
            "last_reviewed_at": "2026-10-01",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["next_review_due"] == "2026-12-31"
    entry_id = response.json()["id"]
    patched = api_for("risk").patch(f"/api/v1/llm-models/{entry_id}/", {"status": "retired"}, format="json")
    assert patched.status_code == 200
    assert LLMModel.objects.get(pk=entry_id).status == "retired"


def test_authors_cannot_edit_the_register_and_duplicates_conflict(api_for, cast):
    body = {"provider": "offline", "model_id": "offline-echo-1", "owner": "owner"}
    assert api_for("author").post("/api/v1/llm-models/", body, format="json").status_code == 403
    assert api_for("admin").post("/api/v1/llm-models/", body, format="json").status_code == 409
    bad = api_for("admin").post("/api/v1/llm-models/", {**body, "provider": "acme"}, format="json")
    assert bad.status_code == 400
    assert "provider" in bad.json()["field_errors"]


def test_retired_model_cannot_be_used_by_a_new_version(api_for, prompt, cast):
    from tests.factories import version_body

    LLMModel.objects.filter(pk=cast["llm"].pk).update(status=LLMModel.RETIRED)
    response = api_for("author").post("/api/v1/prompts/loan-letter/versions/", version_body(), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "model_retired"


def test_identical_push_after_model_retirement_returns_the_existing_version(api_for, prompt, cast):
    from tests.factories import version_body

    client = api_for("author")
    first = client.post("/api/v1/prompts/loan-letter/versions/", version_body(), format="json")
    assert first.status_code == 201
    LLMModel.objects.filter(pk=cast["llm"].pk).update(status=LLMModel.RETIRED)
    again = client.post("/api/v1/prompts/loan-letter/versions/", version_body(), format="json")
    assert again.status_code == 200
    assert again.json()["number"] == 1


def test_a_read_only_token_cannot_administer_teams_even_an_owners_or_an_admins(api_for, cast):
    owner_read = api_for("owner", scopes=["prompts:read"])
    refused = owner_read.post("/api/v1/teams/payments/members/", {"username": "outsider", "role": "owner"},
                              format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "scope_missing"
    admin_read = api_for("admin", scopes=["prompts:read", "audit:read"])
    made = admin_read.post("/api/v1/teams/", {"slug": "shadow", "name": "Shadow"}, format="json")
    assert made.status_code == 403 and made.json()["code"] == "scope_missing"
    assert api_for("owner", scopes=["prompts:read", "prompts:write"]).post(
        "/api/v1/teams/payments/members/", {"username": "outsider", "role": "viewer"}, format="json"
    ).status_code == 201
