"""Every answer from the IdP is checked: a tampered or expired ID token, one issued to another
client, a replayed state or a replayed nonce is refused, each here with the real provider's tokens
(tampered where the test says so), and nobody is signed in."""

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

import pytest
import requests
from django.contrib.auth import get_user_model

from sso.backends import OIDCBackend
from tests.oidc.idp import CLIENT_SECRET, OTHER_CLIENT_ID, follow_to_callback, query_of

OTHER_CALLBACK = "http://other.invalid/callback"


def _claims(id_token):
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _swap_id_token(monkeypatch, change):
    """The token endpoint's real answer, its ID token replaced by ``change(id_token)``."""
    real = OIDCBackend.get_token

    def get_token(self, payload):
        answer = real(self, payload)
        return {**answer, "id_token": change(answer["id_token"])}

    monkeypatch.setattr(OIDCBackend, "get_token", get_token)


def _pending_nonce(person, callback_url):
    return person.client.session["oidc_states"][query_of(callback_url)["state"]]["nonce"]


def _refused(person, callback_url):
    response = person.back(callback_url)
    # 400 when this browser's session holds other states; the failure page when it holds none.
    assert response.status_code == 400 or (
        response.status_code == 302 and response["Location"].endswith("?sso=failed")
    ), response.status_code
    assert "_auth_user_id" not in person.client.session
    return response


def _other_clients_id_token(idp, login, nonce):
    """A real ID token from the same IdP, for the same person and nonce, issued to another client."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": OTHER_CLIENT_ID, "redirect_uri": OTHER_CALLBACK,
             "scope": "openid email profile groups", "state": secrets.token_urlsafe(16), "nonce": nonce,
             "code_challenge": challenge, "code_challenge_method": "S256"}
    back = follow_to_callback(requests.Session(), idp.issuer + "/auth?" + urlencode(query), login=login,
                              callback_prefix=OTHER_CALLBACK)
    answer = requests.post(idp.issuer + "/token", timeout=10, data={
        "grant_type": "authorization_code", "code": query_of(back)["code"], "redirect_uri": OTHER_CALLBACK,
        "client_id": OTHER_CLIENT_ID, "client_secret": CLIENT_SECRET + "-other", "code_verifier": verifier,
    })
    answer.raise_for_status()
    return answer.json()["id_token"]


def test_a_tampered_id_token_is_refused(cast, person, monkeypatch):
    def tamper(id_token):
        header, payload, signature = id_token.split(".")
        claims = _claims(id_token) | {"preferred_username": "admin"}
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return ".".join([header, forged, signature])

    _swap_id_token(monkeypatch, tamper)
    ava = person("ava")
    _refused(ava, ava.through_idp(ava.start()))
    assert not get_user_model().objects.filter(username="ava").exists()


def test_an_unsigned_id_token_is_refused(cast, person, monkeypatch):
    def strip_signature(id_token):
        none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
        return none + "." + id_token.split(".")[1] + "."

    _swap_id_token(monkeypatch, strip_signature)
    ava = person("ava")
    _refused(ava, ava.through_idp(ava.start()))


def test_an_expired_id_token_is_refused(cast, person, idp, settings, monkeypatch):
    settings.PROMPTLEDGER_OIDC_CLOCK_SKEW = 0
    idp.set_users(id_token_ttl=1)

    def once_expired(id_token):
        expires = _claims(id_token)["exp"]
        deadline = time.monotonic() + 10
        while time.time() <= expires + 1:  # wait on the condition: the token's own expiry has passed
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return id_token

    _swap_id_token(monkeypatch, once_expired)
    ava = person("ava")
    _refused(ava, ava.through_idp(ava.start()))


def test_an_id_token_for_another_client_is_refused(cast, person, idp, monkeypatch):
    ava = person("ava")
    callback = ava.through_idp(ava.start())
    other = _other_clients_id_token(idp, "ava", _pending_nonce(ava, callback))
    assert _claims(other)["aud"] == OTHER_CLIENT_ID
    _swap_id_token(monkeypatch, lambda id_token: other)
    _refused(ava, callback)


def test_a_replayed_state_is_refused(cast, person):
    ava = person("ava")
    callback = ava.through_idp(ava.start())
    assert ava.back(callback).status_code == 302
    assert ava.client.session["_auth_user_id"]
    ava.client.logout()
    _refused(ava, callback)


def test_a_replayed_nonce_is_refused(cast, person, monkeypatch):
    seen = []
    _swap_id_token(monkeypatch, lambda id_token: seen.append(id_token) or id_token)
    ava = person("ava")
    ava.sign_in()
    ava.client.logout()
    _swap_id_token(monkeypatch, lambda id_token: seen[0])  # the first sign-in's token, its nonce spent
    _refused(ava, ava.through_idp(ava.start(), login=False))


def test_a_callback_with_a_state_this_browser_never_sent_is_refused(cast, person):
    ava = person("ava")
    ava.start()  # this browser has a pending state, just not that one
    _refused(ava, "http://testserver/sso/callback/?code=abc&state=made-up")


@pytest.mark.parametrize("algorithm", ["HS256"])
def test_only_rs256_is_accepted(cast, person, monkeypatch, algorithm):
    import jwt

    def resign(id_token):
        from django.conf import settings

        return jwt.encode(_claims(id_token), settings.OIDC_RP_CLIENT_SECRET, algorithm=algorithm)

    _swap_id_token(monkeypatch, resign)
    ava = person("ava")
    _refused(ava, ava.through_idp(ava.start()))
