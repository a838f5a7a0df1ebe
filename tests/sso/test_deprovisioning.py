"""Leaving: an SSO session goes back to the IdP every refresh interval (prompt=none), so a person
disabled there is signed out within it; a deactivated account's API tokens stop at once; the
operator's command lists accounts the IdP has not vouched for in N days."""

import time
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.actors import Actor
from core.models import APIToken
from registry.models import Membership
from registry.services import issue_token, set_user_flags
from sso.models import Identity


@pytest.fixture
def short_refresh(settings):
    settings.OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 1


def _wait_until_due(client):
    """Wait (on the condition, with a deadline) until the session's refresh is due."""
    deadline = time.monotonic() + 10
    while client.session.get("oidc_id_token_expiration", 0) > time.time():
        assert time.monotonic() < deadline, "the refresh never came due"
        time.sleep(0.05)


def test_a_person_disabled_at_the_idp_is_signed_out_within_the_refresh_interval(cast, person, idp, short_refresh):
    ava = person("ava")
    ava.sign_in()
    assert ava.client.get("/").status_code == 200
    idp.update_user("ava", disabled=True)
    _wait_until_due(ava.client)
    to_idp = ava.client.get("/")
    assert to_idp.status_code == 302 and to_idp["Location"].startswith(idp.issuer + "/auth?")
    assert parse_qs(urlparse(to_idp["Location"]).query)["prompt"] == ["none"]
    callback = ava.through_idp(to_idp["Location"], login=False)
    assert parse_qs(urlparse(callback).query)["error"] == ["login_required"]
    ava.back(callback)
    assert "_auth_user_id" not in ava.client.session
    assert "/accounts/login/" in ava.client.get("/")["Location"]


def test_a_refresh_keeps_an_enabled_person_signed_in_and_applies_their_groups(cast, person, idp, short_refresh):
    ava = person("ava")
    ava.sign_in()
    idp.update_user("ava", groups=["pl-payments-authors"])
    _wait_until_due(ava.client)
    to_idp = ava.client.get("/approvals/")
    back = ava.back(ava.through_idp(to_idp["Location"], login=False))
    assert back.status_code == 302 and back["Location"] == "/approvals/"
    assert ava.client.get("/approvals/").status_code == 200
    assert Membership.objects.get(user__username="ava", team=cast["team"]).role == "author"


def test_an_overdue_session_carries_out_no_post(cast, person, idp, short_refresh):
    ava = person("ava")
    ava.sign_in()
    _wait_until_due(ava.client)
    form = ava.client.post("/settings/tokens/", {"name": "x"}, HTTP_REFERER="http://testserver/prompts/")
    assert form.status_code == 302 and form["Location"].startswith(idp.issuer + "/auth?")
    assert ava.client.session["oidc_login_next"] == "http://testserver/prompts/"
    api = ava.client.post("/api/v1/tokens/", {"scopes": ["prompts:read"]}, content_type="application/json")
    assert api.status_code == 401 and api.json()["code"] == "session_refresh_required"
    assert ava.client.get("/api/v1/prompts/").json()["code"] == "session_refresh_required"
    assert not APIToken.objects.filter(user__username="ava").exists()


def test_a_deactivated_accounts_tokens_are_refused_at_once(cast, person):
    person("ava").sign_in()
    ava = Identity.objects.get(subject="ava").user
    _, raw = issue_token(actor=Actor.for_system(), user=ava, scopes=["prompts:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/prompts/").status_code == 200
    set_user_flags(actor=Actor(user=cast["admin"]), username="ava", is_active=False)
    refused = api.get("/api/v1/prompts/")
    assert refused.status_code == 401


def test_a_deactivated_accounts_sso_session_ends_at_once(cast, person):
    ava = person("ava")
    ava.sign_in()
    assert ava.client.get("/").status_code == 200
    set_user_flags(actor=Actor(user=cast["admin"]), username="ava", is_active=False)
    assert "/accounts/login/" in ava.client.get("/")["Location"]


def test_the_stale_accounts_command_lists_who_the_idp_has_not_seen(cast, person, settings):
    settings.PROMPTLEDGER_BREAK_GLASS_ACCOUNTS = ["admin"]
    person("ava").sign_in()
    person("ben").sign_in()
    Identity.objects.filter(subject="ben").update(last_seen_at=timezone.now() - timedelta(days=40))
    out = StringIO()
    call_command("sso_stale_accounts", "--days", "30", stdout=out)
    lines = out.getvalue().splitlines()
    listed = {line.split("\t")[0] for line in lines if "\t" in line}
    assert "ben" in listed and "ava" not in listed and "admin" not in listed
    assert "owner" in listed  # a local account the IdP never vouched for
    assert any("break-glass" in line and "admin" in line for line in lines)


def test_a_session_due_for_renewal_while_the_idp_is_unreachable_gets_no_further(cast, person, settings, short_refresh):
    from sso import provider

    ava = person("ava")
    ava.sign_in()
    _wait_until_due(ava.client)
    settings.PROMPTLEDGER_OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens there
    provider.forget()
    assert ava.client.get("/").status_code == 503
    api = ava.client.get("/api/v1/prompts/")
    assert api.status_code == 503 and api.json()["code"] == "idp_unreachable"
    assert Client().get("/sso/login/").status_code == 503
