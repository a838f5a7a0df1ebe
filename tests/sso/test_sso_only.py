"""SSO-only mode: the login page offers one "Sign in with <IdP>" button; a password signs in only
the named break-glass accounts, and a password session of anyone else ends."""

import pytest
from django.core.checks import run_checks
from django.test import Client

from tests.browser.conftest import PASSWORD


@pytest.fixture
def sso_only(idp, settings):
    settings.PROMPTLEDGER_SSO_ONLY = True
    settings.PROMPTLEDGER_BREAK_GLASS_ACCOUNTS = ["admin"]


def _password_sign_in(username):
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    return client, response


def test_the_login_page_shows_one_button_for_the_idp(cast, sso_only):
    page = Client().get("/accounts/login/?next=/approvals/").content.decode()
    assert page.count("Sign in with Test IdP") == 1
    assert 'href="/sso/login/?next=%2Fapprovals%2F"' in page
    assert 'name="password"' not in page and 'id="break-glass-link"' in page
    assert 'name="password"' in Client().get("/accounts/login/?local=1").content.decode()


def test_password_sign_in_is_refused_for_everyone_but_break_glass(cast, sso_only):
    for username in ("owner", "approver", "viewer"):
        client, response = _password_sign_in(username)
        assert response.status_code == 200 and "_auth_user_id" not in client.session, username
    client, response = _password_sign_in("admin")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(cast["admin"].pk)


def test_a_password_session_from_before_sso_only_ends(cast, idp, settings):
    client, response = _password_sign_in("owner")
    assert response.status_code == 302 and client.get("/").status_code == 200
    settings.PROMPTLEDGER_SSO_ONLY = True
    assert "/accounts/login/" in client.get("/")["Location"]


def test_without_sso_only_both_ways_are_offered(cast, idp):
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in with Test IdP" in page and 'name="password"' in page
    assert _password_sign_in("owner")[1].status_code == 302


def test_sso_only_without_an_issuer_is_a_configuration_error(db, settings):
    settings.PROMPTLEDGER_SSO_ONLY = True
    settings.PROMPTLEDGER_OIDC_ISSUER = ""
    assert "sso.E002" in {check.id for check in run_checks()}


def test_a_group_map_that_does_not_parse_is_a_configuration_error(db, settings):
    settings.PROMPTLEDGER_OIDC_GROUP_MAP = '{"g": {"team": "payments", "role": "emperor"}}'
    assert "sso.E001" in {check.id for check in run_checks()}
