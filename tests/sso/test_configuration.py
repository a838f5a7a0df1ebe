"""The configuration: the group map's grammar, and the discovery document fetched on first use
and refused when it describes another issuer."""

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from sso import provider
from sso.roles import parse


def test_the_group_map_grants_the_highest_role_per_team_and_site_roles():
    mapping = parse("""{
        "eng": [{"team": "payments", "role": "author"}, {"team": "growth", "role": "viewer"}],
        "leads": {"team": "payments", "role": "owner"},
        "audit": {"site_role": "compliance"}
    }""")
    assert mapping.managed_teams == {"payments", "growth"} and mapping.managed_site_roles == {"compliance"}
    assert mapping.granted(["eng", "leads"]) == ({"payments": "owner", "growth": "viewer"}, set())
    assert mapping.granted(["audit", "unknown"]) == ({}, {"compliance"})


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"g": {"team": "payments", "role": "emperor"}}', '{"g": {"site_role": "god"}}',
    '{"g": {"team": "payments"}}', '{"g": "payments"}',
])
def test_a_group_map_that_does_not_parse_names_the_setting(text):
    with pytest.raises(ImproperlyConfigured, match="PROMPTLEDGER_OIDC_GROUP_MAP"):
        parse(text)


def test_discovery_is_fetched_on_first_use_and_names_the_endpoints(idp):
    document = provider.discovery()
    assert document["issuer"] == idp.issuer
    assert provider.setting("OIDC_OP_TOKEN_ENDPOINT") == document["token_endpoint"]
    assert provider.setting("OIDC_OP_JWKS_ENDPOINT") == idp.issuer + "/jwks"


def test_a_discovery_document_of_another_issuer_is_refused(idp, settings):
    # The same server reached by another name: its document names 127.0.0.1, not localhost.
    settings.PROMPTLEDGER_OIDC_ISSUER = idp.issuer.replace("127.0.0.1", "localhost")
    provider.forget()
    with pytest.raises(provider.DiscoveryFailed, match="names issuer"):
        provider.discovery()


def test_an_unreachable_issuer_is_a_clear_error(settings, idp):
    settings.PROMPTLEDGER_OIDC_ISSUER = "http://127.0.0.1:9"
    provider.forget()
    with pytest.raises(provider.DiscoveryFailed, match="could not read"):
        provider.discovery()
    with pytest.raises(CommandError, match="could not read"):
        call_command("sso_check")


def test_sso_check_prints_the_endpoints(idp, capsys):
    call_command("sso_check")
    out = capsys.readouterr().out
    assert f"OIDC_OP_AUTHORIZATION_ENDPOINT = {idp.issuer}/auth" in out
    assert "teams managed by the IdP: payments" in out
    assert requests.get(idp.issuer + "/.well-known/openid-configuration", timeout=5).ok
