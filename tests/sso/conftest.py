"""Single sign-on against a real OpenID provider (tests/oidc/provider.mjs) on loopback, driven
over HTTP: Django's test client on our side, ``requests`` through the IdP's own login and consent
pages, the IdP redirecting back to http://testserver/sso/callback/."""

import json
from urllib.parse import urlparse

import pytest
import requests
from django.test import Client

from sso import provider
from tests.approvals import conftest as approvals_fixtures
from tests.oidc.idp import CLIENT_ID, CLIENT_SECRET, PASSWORD, TestProvider, follow_to_callback

CALLBACK = "http://testserver/sso/callback/"
GROUP_MAP = {
    "pl-payments-approvers": {"team": "payments", "role": "approver"},
    "pl-payments-authors": {"team": "payments", "role": "author"},
    "pl-auditors": {"site_role": "compliance"},
}
USERS = {
    "ava": {"password": PASSWORD, "email": "ava@example.org", "groups": ["pl-payments-approvers"]},
    "ben": {"password": PASSWORD, "email": "ben@example.org", "groups": ["pl-payments-authors"]},
    "cara": {"password": PASSWORD, "email": "cara@example.org", "groups": ["pl-auditors", "pl-payments-authors"]},
}


@pytest.fixture(scope="session")
def idp_server(tmp_path_factory):
    server = TestProvider(tmp_path_factory.mktemp("idp"), [CALLBACK], USERS)
    yield server
    server.stop()


@pytest.fixture
def idp(idp_server, settings):
    """The provider with the default users, and this site configured to sign in with it."""
    idp_server.set_users(json.loads(json.dumps(USERS)), id_token_ttl=3600)
    settings.PROMPTLEDGER_OIDC_ISSUER = idp_server.issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.PROMPTLEDGER_OIDC_GROUP_MAP = json.dumps(GROUP_MAP)
    settings.PROMPTLEDGER_OIDC_DISPLAY_NAME = "Test IdP"
    provider.forget()
    yield idp_server
    provider.forget()


class Person:
    """One person's browser: our site's test client and their cookies at the IdP."""

    def __init__(self, idp, login):
        self.idp, self.login = idp, login
        self.client = Client()
        self.at_idp = requests.Session()

    def start(self, path="/sso/login/"):
        """Our redirect to the IdP's authorization endpoint."""
        response = self.client.get(path)
        assert response.status_code == 302, response
        location = response["Location"]
        assert location.startswith(self.idp.issuer + "/auth?"), location
        return location

    def through_idp(self, authorize_url, *, login=True):
        return follow_to_callback(self.at_idp, authorize_url, login=self.login if login else None,
                                  callback_prefix=CALLBACK)

    def back(self, callback_url):
        parsed = urlparse(callback_url)
        return self.client.get(parsed.path + "?" + parsed.query)

    def sign_in(self, path="/sso/login/"):
        response = self.back(self.through_idp(self.start(path)))
        assert response.status_code == 302, getattr(response, "content", b"")[:300]
        return response


@pytest.fixture
def person(idp):
    return lambda login: Person(idp, login)


# The approvals tests' Tier-0 world (tests/approvals/conftest.py), for the signature tests.
flow = approvals_fixtures.flow
production = approvals_fixtures.production
