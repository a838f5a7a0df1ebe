"""The resolve contract: the deployed version with its content hash as ETag, 304 on If-None-Match,
404/400/423 with stable codes, deterministic canaries, scopes and visibility, fresh token checks,
and a warm resolve in one query."""

from datetime import timedelta

import pytest
import yaml
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.actors import Actor
from registry.models import APIToken, Environment
from registry.selectors import canary_bucket
from registry.services import create_version, issue_token, revoke_token, set_deployment, set_kill_switch
from tests.factories import version_body

URL = "/api/v1/prompts/{slug}/resolve"


def resolve(client, slug="loan-letter", environment="production", **params):
    if environment is not None:
        params["environment"] = environment
    return client.get(URL.format(slug=slug), params)


def client_with(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def env(slug):
    return Environment.objects.get(slug=slug)


def push(cast, prompt, content):
    body = version_body(content)
    made, _ = create_version(
        actor=Actor(user=cast["author"]), prompt=prompt, messages=body["messages"],
        variables=body["variables"], model=body["model"], message="next",
    )
    return made


@pytest.fixture
def owner(cast):
    return Actor(user=cast["owner"])


@pytest.fixture
def deployed(owner, prompt, version):
    set_deployment(actor=owner, prompt=prompt, environment=env("production"), version=version)
    return version


@pytest.fixture
def reader(api_for):
    return api_for("viewer", scopes=["prompts:read"])


@pytest.fixture
def canaried(cast, owner, prompt, deployed):
    canary = push(cast, prompt, "Dear {{ name }},")
    set_deployment(
        actor=owner, prompt=prompt, environment=env("production"), version=deployed,
        canary_version=canary, canary_percent=20,
    )
    return canary


def test_resolve_returns_the_deployed_version_with_its_hash_as_etag(reader, deployed):
    response = resolve(reader)
    assert response.status_code == 200
    assert response["ETag"] == f'"{deployed.content_hash}"'
    body = response.json()
    assert body["slug"] == "loan-letter"
    assert body["environment"] == "production"
    assert body["version"] == 1
    assert body["content_hash"] == deployed.content_hash
    assert body["canary"] is False
    assert body["messages"] == deployed.messages
    assert body["variables"] == deployed.variables
    assert body["model"] == deployed.model_config


@pytest.mark.parametrize("sent", ['"{h}"', 'W/"{h}"', '"0000", "{h}"', "*"])
def test_if_none_match_with_the_live_etag_answers_304(reader, deployed, sent):
    response = reader.get(
        URL.format(slug="loan-letter"), {"environment": "production"},
        HTTP_IF_NONE_MATCH=sent.format(h=deployed.content_hash),
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == f'"{deployed.content_hash}"'


def test_an_old_etag_gets_the_new_version_after_a_deploy(cast, owner, prompt, reader, deployed):
    old = resolve(reader)["ETag"]
    newer = push(cast, prompt, "Hello again {{ name }}.")
    set_deployment(actor=owner, prompt=prompt, environment=env("production"), version=newer)
    response = reader.get(URL.format(slug="loan-letter"), {"environment": "production"}, HTTP_IF_NONE_MATCH=old)
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response["ETag"] == f'"{newer.content_hash}"'


def test_the_same_version_in_two_environments_names_each(owner, prompt, reader, deployed):
    set_deployment(actor=owner, prompt=prompt, environment=env("staging"), version=deployed)
    assert resolve(reader)["ETag"] == resolve(reader, environment="staging")["ETag"]
    assert resolve(reader, environment="staging").json()["environment"] == "staging"
    assert resolve(reader).json()["environment"] == "production"


def test_nothing_deployed_is_404_not_deployed(reader, deployed):
    response = resolve(reader, environment="staging")
    assert response.status_code == 404
    assert response.json()["code"] == "not_deployed"


def test_a_prompt_never_deployed_is_404_not_deployed(reader, version):
    response = resolve(reader)
    assert response.status_code == 404
    assert response.json()["code"] == "not_deployed"


def test_unknown_prompt_is_404(reader, deployed):
    response = resolve(reader, slug="no-such-prompt")
    assert response.status_code == 404
    assert response.json()["code"] == "prompt_not_found"


def test_unknown_environment_is_400_naming_the_field(reader, deployed):
    response = resolve(reader, environment="moon")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unknown_environment"
    assert "moon" in body["field_errors"]["environment"][0]
    assert "production" in body["field_errors"]["environment"][0]


def test_missing_environment_is_400_naming_the_field(reader, deployed):
    response = resolve(reader, environment=None)
    assert response.status_code == 400
    assert "environment" in response.json()["field_errors"]


def test_kill_switch_answers_423_prompt_disabled_at_once_and_lifts(owner, prompt, reader, deployed):
    assert resolve(reader).status_code == 200
    set_kill_switch(actor=owner, prompt=prompt, environment=env("production"), disabled=True, reason="leaks PII")
    response = resolve(reader)
    assert response.status_code == 423
    assert response.json()["code"] == "prompt_disabled"
    assert "leaks PII" in response.json()["detail"]
    set_kill_switch(actor=owner, prompt=prompt, environment=env("production"), disabled=False, reason="fixed")
    assert resolve(reader).status_code == 200


def test_canary_is_deterministic_by_unit(reader, deployed, canaried):
    for unit in ("ada", "grace", "linus", "user-17"):
        first = resolve(reader, unit=unit).json()
        for _ in range(3):
            again = resolve(reader, unit=unit).json()
            assert (again["version"], again["canary"]) == (first["version"], first["canary"])
        expect_canary = canary_bucket("loan-letter", "production", unit) < 20
        assert first["canary"] is expect_canary
        assert first["version"] == (canaried.number if expect_canary else deployed.number)


def test_canary_takes_about_its_percentage_of_units(reader, deployed, canaried):
    answers = [resolve(reader, unit=f"unit-{i}") for i in range(1000)]
    assert all(a.status_code == 200 for a in answers)
    on_canary = sum(a.json()["canary"] for a in answers)
    assert 150 <= on_canary <= 250  # 20 % of 1,000, with room for the hash's spread
    assert {a["ETag"] for a in answers if a.json()["canary"]} == {f'"{canaried.content_hash}"'}


def test_without_a_unit_everyone_gets_the_live_version(reader, deployed, canaried):
    body = resolve(reader).json()
    assert (body["version"], body["canary"]) == (deployed.number, False)


def test_a_token_without_prompts_read_is_403(api_for, deployed):
    response = resolve(api_for("viewer", scopes=["evals:run"]))
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"


def test_an_outsider_gets_404_as_if_the_prompt_did_not_exist(api_for, deployed):
    response = resolve(api_for("outsider", scopes=["prompts:read"]))
    assert response.status_code == 404
    assert response.json()["code"] == "prompt_not_found"


@pytest.mark.parametrize("who", ["admin", "compliance"])
def test_site_roles_that_read_everything_resolve_any_prompt(api_for, deployed, who):
    assert resolve(api_for(who, scopes=["prompts:read"])).status_code == 200


def test_a_revoked_token_is_401_on_the_next_request(cast, deployed):
    token, raw = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    client = client_with(raw)
    assert resolve(client).status_code == 200
    revoke_token(actor=Actor.for_system(), token=token)
    response = resolve(client)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_401(cast, deployed):
    token, raw = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    # No one may issue an expired token; time passing makes one.
    APIToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = resolve(client_with(raw))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_deactivated_users_token_is_401(cast, deployed):
    _, raw = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    cast["viewer"].is_active = False
    cast["viewer"].save()
    assert resolve(client_with(raw)).status_code == 401


@pytest.mark.parametrize("header", ["Bearer pl_unknown", "Bearer", "Bearer a b"])
def test_an_unknown_or_malformed_token_is_401(deployed, header, cast):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = resolve(client)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_no_credentials_is_401(anon, deployed):
    response = resolve(anon)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_signed_in_member_resolves_with_the_browser_session(cast, deployed):
    client = APIClient()
    client.force_login(cast["viewer"])
    assert resolve(client).status_code == 200
    client.force_login(cast["outsider"])
    assert resolve(client).status_code == 404


def test_only_get_is_allowed(reader, deployed):
    response = reader.post(URL.format(slug="loan-letter") + "?environment=production", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_resolving_records_when_the_token_was_last_used(cast, deployed):
    token, raw = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])
    resolve(client_with(raw))
    assert APIToken.objects.get(pk=token.pk).last_used_at is not None


def test_a_warm_resolve_is_one_query(reader, deployed, canaried, django_assert_num_queries):
    for _ in range(2):  # warms the body cache and the token's last_used_at write
        resolve(reader, unit="ada")
    with django_assert_num_queries(1):
        assert resolve(reader, unit="ada").status_code == 200
    etag = resolve(reader, unit="ada")["ETag"]
    with django_assert_num_queries(1):
        response = reader.get(
            URL.format(slug="loan-letter"), {"environment": "production", "unit": "ada"}, HTTP_IF_NONE_MATCH=etag
        )
        assert response.status_code == 304


def test_the_schema_documents_resolve(api_for):
    response = api_for("viewer").get("/api/schema/")
    assert response.status_code == 200
    paths = yaml.safe_load(response.content)["paths"]
    operation = paths["/api/v1/prompts/{slug}/resolve"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"slug", "environment", "unit", "If-None-Match"} <= names
    assert {"200", "304", "404", "423"} <= set(operation["responses"])


@pytest.mark.django_db(transaction=True)
def test_a_broken_persistent_connection_is_replaced_without_failing_the_request(postgres, reader, deployed):
    assert resolve(reader).status_code == 200
    connection.connection.close()  # as when PostgreSQL restarts under a persistent connection
    assert resolve(reader).status_code == 200
