"""Deployment pointers, kill switches over the API, token issue and revoke."""

import pytest
from django.core.management import call_command

from core.actors import Actor
from core.errors import PermissionDenied, ValidationFailed
from registry.models import APIToken, Deployment, Environment
from registry.services import revoke_token, set_deployment
from registry.services.tokens import hash_token


def test_owner_moves_the_pointer_and_history_is_kept(cast, prompt, version):
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=version)
    pointer = Deployment.objects.get(prompt=prompt, environment=production)
    assert pointer.version == version
    assert pointer.history.count() == 1


def test_author_cannot_move_the_pointer(cast, prompt, version):
    production = Environment.objects.get(slug="production")
    with pytest.raises(PermissionDenied):
        set_deployment(actor=Actor(user=cast["author"]), prompt=prompt, environment=production, version=version)
    assert not Deployment.objects.exists()


def test_canary_needs_version_and_sane_percent(cast, prompt, version):
    production = Environment.objects.get(slug="production")
    with pytest.raises(ValidationFailed):
        set_deployment(
            actor=Actor(user=cast["owner"]),
            prompt=prompt,
            environment=production,
            version=version,
            canary_version=version,
            canary_percent=150,
        )
    assert not Deployment.objects.exists()


def test_kill_switch_by_approver_with_reason(api_for, prompt, version):
    url = "/api/v1/prompts/loan-letter/kill-switch"
    response = api_for("approver").post(
        url, {"environment": "production", "disabled": True, "reason": "leaking"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert Deployment.objects.get(prompt=prompt, environment__slug="production").disabled is True


def test_kill_switch_errors(api_for, prompt):
    url = "/api/v1/prompts/loan-letter/kill-switch"
    refused = api_for("author").post(url, {"environment": "production", "disabled": True, "reason": "x"}, format="json")
    assert refused.status_code == 403
    unknown = api_for("owner").post(url, {"environment": "moon", "disabled": True, "reason": "x"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_environment"
    assert "environment" in unknown.json()["field_errors"]
    no_reason = api_for("owner").post(url, {"environment": "production", "disabled": True, "reason": ""}, format="json")
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["field_errors"]
    assert not Deployment.objects.exists()


def test_issue_token_prints_the_token_last_and_stores_only_a_hash(cast, capsys):
    call_command("issue_token", "author", "--scope", "prompts:read", "--scope", "prompts:write")
    raw = capsys.readouterr().out.split()[-1]
    token = APIToken.objects.get(user=cast["author"])
    assert raw.startswith("pl_")
    assert token.key_hash == hash_token(raw)
    assert raw not in str(list(APIToken.objects.values()))
    assert token.scopes == ["prompts:read", "prompts:write"]


def test_revoked_token_stops_working(api_for, cast, prompt, anon):
    from registry.services import issue_token

    token, raw = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert anon.get("/api/v1/prompts/").status_code == 200
    revoke_token(actor=Actor(user=cast["viewer"]), token=token)
    assert anon.get("/api/v1/prompts/").status_code == 401


def test_unknown_scope_is_refused(cast):
    from registry.services import issue_token

    with pytest.raises(ValidationFailed) as err:
        issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["root"])
    assert err.value.code == "invalid_scope"
