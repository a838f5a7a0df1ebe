"""The two ways to sign in: a local password (Django's ModelBackend, refused in SSO-only mode
except for the break-glass accounts), and the OIDC callback (mozilla-django-oidc's backend, with
the ID token checks it leaves out added: audience, issuer, expiry and issue time within the clock
skew bound, RS256 only).

Nothing here reads the IdP's endpoints until a callback uses them: Django builds every backend
for each password sign-in too, and that must work with SSO off or the IdP down.
"""

import logging

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from core import request_context

from . import provider
from .identities import sign_in

log = logging.getLogger(__name__)


def password_allowed(username):
    """Whether ``username`` may sign in with a password: always, unless SSO-only mode is on and
    the account is not one of the named break-glass accounts."""
    if not (settings.PROMPTLEDGER_SSO_ONLY and provider.enabled()):
        return True
    return username in settings.PROMPTLEDGER_BREAK_GLASS_ACCOUNTS


class LocalPasswordBackend(ModelBackend):
    """Passwords, as Django's ModelBackend checks them, for the accounts allowed to use one."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is not None and not password_allowed(username):
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id):
        # A password session of an account SSO-only mode has since shut out ends here too.
        user = super().get_user(user_id)
        return user if user is not None and password_allowed(user.get_username()) else None


class OIDCBackend(OIDCAuthenticationBackend):
    """Authorization code + PKCE, state and nonce (checked by the callback view and here), the ID
    token verified against the IdP's JWKS, the account and roles from ``sso.identities``."""

    get_settings = staticmethod(provider.setting)

    def __init__(self, *args, **kwargs):
        self.UserModel = get_user_model()

    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: provider.setting("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: provider.setting("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: provider.setting("OIDC_OP_JWKS_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: settings.OIDC_RP_CLIENT_ID)
    OIDC_RP_CLIENT_SECRET = property(lambda self: settings.OIDC_RP_CLIENT_SECRET)
    OIDC_RP_SIGN_ALGO = "RS256"
    OIDC_RP_IDP_SIGN_KEY = None

    def authenticate(self, request, **kwargs):
        # Only the callback passes a nonce; a password sign-in never reaches the IdP.
        if "nonce" not in kwargs or not provider.enabled():
            return None
        self.id_claims = None
        return super().authenticate(request, **kwargs)

    def get_payload_data(self, token, key):
        """The ID token's claims once its signature (RS256), audience, issuer, expiry and issue
        time (within ``PROMPTLEDGER_OIDC_CLOCK_SKEW``) all check; ``SuspiciousOperation`` else."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise SuspiciousOperation(f"ID token algorithm {header.get('alg')!r} refused; RS256 only")
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=settings.OIDC_RP_CLIENT_ID, issuer=provider.issuer(),
                leeway=settings.PROMPTLEDGER_OIDC_CLOCK_SKEW,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != settings.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token refused: several audiences and azp is not this client")
        return claims

    def verify_token(self, token, **kwargs):
        # The header is checked before the library looks a key up by it: no "none", no HS256 with
        # the client secret, and a key id to find in the JWKS (a 400, not a KeyError's 500).
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"ID token refused: {exc}") from exc
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise SuspiciousOperation(f"ID token refused: algorithm {header.get('alg')!r}; RS256 with a key id only")
        payload = super().verify_token(token, **kwargs)
        if "nonce" in kwargs:  # the ID token, not a signed userinfo answer
            self.id_claims = payload
        return payload

    def get_user(self, user_id):
        # As Django's ModelBackend: a deactivated account's SSO session ends at its next request.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the userinfo answer is about another subject than the ID token")
        # The ID token's own claims (sub, auth_time, amr, iss) win over userinfo's.
        claims = {**userinfo, **payload}
        user = sign_in(claims=claims, context=request_context.context(self.request.META))
        user.oidc_claims = payload
        return user
