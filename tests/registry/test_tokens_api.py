"""/api/v1/tokens/: list (yours; admins everyone's), issue from a signed-in session (never with a
token), revoke (someone else's is 404), with the codes clients rely on."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.actors import Actor
from registry.models import APIToken
from registry.services import tokens

URL = "/api/v1/tokens/"


@pytest.fixture
def session_for(cast):
    def make(username, **kwargs):
        client = APIClient(**kwargs)
        client.force_login(cast[username])
        return client

    return make


def test_a_signed_in_person_issues_a_token_and_sees_the_secret_once(session_for, cast):
    client = session_for("author")
    made = client.post(URL, {"name": "ci", "scopes": ["prompts:read", "evals:run"]}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert made["Cache-Control"] == "no-store"
    assert body["token"].startswith(body["prefix"]) and body["user"] == "author"
    assert body["scopes"] == ["evals:run", "prompts:read"] and body["state"] == "active"
    assert body["last_used_at"] is None
    expires = APIToken.objects.get(pk=body["id"]).expires_at
    assert timezone.now() + timedelta(days=89) < expires <= timezone.now() + timedelta(days=90)

    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert bearer.get("/api/v1/prompts/").status_code == 200
    listed = client.get(URL).json()
    assert listed["count"] == 1 and "token" not in listed["results"][0]
    assert listed["results"][0]["last_used_at"] is not None


def test_issuing_needs_the_csrf_token_of_the_session(session_for):
    client = session_for("author", enforce_csrf_checks=True)
    refused = client.post(URL, {"scopes": ["prompts:read"]}, format="json")
    assert refused.status_code == 403
    assert not APIToken.objects.exists()


def test_only_an_admins_bearer_token_mints_and_only_within_itself(api_for):
    refused = api_for("owner").post(URL, {"scopes": ["prompts:read"]}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "token_cannot_issue"
    admin = api_for("admin", scopes=["prompts:read"])
    wider = admin.post(URL, {"scopes": ["prompts:read", "deploy"]}, format="json")
    assert wider.status_code == 400 and wider.json()["code"] == "scope_not_allowed"
    made = admin.post(URL, {"name": "provisioned", "scopes": ["prompts:read"]}, format="json")
    assert made.status_code == 201 and made.json()["user"] == "admin"
    assert APIToken.objects.count() == 3  # the two fixtures' and the one minted


def test_scopes_beyond_the_roles_and_unknown_scopes_are_400(session_for):
    client = session_for("viewer")
    beyond = client.post(URL, {"scopes": ["prompts:read", "deploy"]}, format="json")
    assert beyond.status_code == 400
    assert beyond.json()["code"] == "scope_not_allowed"
    assert "deploy" in beyond.json()["detail"] and "deploy" in beyond.json()["field_errors"]["scopes"][0]
    unknown = client.post(URL, {"scopes": ["root"]}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "invalid_scope"
    missing = client.post(URL, {}, format="json")
    assert missing.status_code == 400 and "scopes" in missing.json()["field_errors"]
    assert not APIToken.objects.exists()


@pytest.mark.parametrize("days", [366, -1])
def test_an_expiry_outside_the_allowed_range_is_400(session_for, days):
    when = (timezone.now() + timedelta(days=days)).isoformat()
    refused = session_for("author").post(URL, {"scopes": ["prompts:read"], "expires_at": when}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_expiry"
    assert "365 days" in refused.json()["field_errors"]["expires_at"][0]


def test_an_explicit_expiry_within_the_maximum_is_kept(session_for):
    when = timezone.now() + timedelta(days=7)
    made = session_for("author").post(URL, {"scopes": ["prompts:read"], "expires_at": when.isoformat()}, format="json")
    assert made.status_code == 201
    assert abs(APIToken.objects.get(pk=made.json()["id"]).expires_at - when) < timedelta(seconds=1)


def test_people_list_their_own_tokens_and_admins_everyones(api_for, cast):
    author, admin = api_for("author"), api_for("admin")
    tokens.issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    mine = author.get(URL).json()
    assert mine["count"] == 1 and {t["user"] for t in mine["results"]} == {"author"}
    everyone = admin.get(URL).json()
    assert {t["user"] for t in everyone["results"]} == {"author", "admin", "viewer"}
    only = admin.get(URL, {"user": "viewer"}).json()
    assert [t["user"] for t in only["results"]] == ["viewer"]
    assert set(admin.get(URL, {"page_size": 1}).json()) == {"count", "next", "previous", "results"}


def test_revoking_your_own_token_is_204_and_it_stops_working(cast, anon):
    token, raw = tokens.issue_token(actor=Actor(user=cast["author"]), user=cast["author"], scopes=["prompts:read"])
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert anon.delete(f"{URL}{token.pk}/").status_code == 204  # a token may revoke itself
    assert anon.get("/api/v1/prompts/").status_code == 401


def test_someone_elses_token_is_404_and_stays_live_admins_revoke_it(api_for, cast):
    theirs, _ = tokens.issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    refused = api_for("owner").delete(f"{URL}{theirs.pk}/")
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    assert APIToken.objects.get(pk=theirs.pk).revoked_at is None
    assert api_for("owner").delete(f"{URL}999999/").status_code == 404
    assert api_for("admin").delete(f"{URL}{theirs.pk}/").status_code == 204
    assert APIToken.objects.get(pk=theirs.pk).revoked_at is not None
    assert api_for("admin").get(URL, {"user": "viewer"}).json()["results"][0]["state"] == "revoked"


def test_without_credentials_it_is_401(anon, cast):
    assert anon.get(URL).status_code == 401
    assert anon.post(URL, {"scopes": ["prompts:read"]}, format="json").status_code == 401
