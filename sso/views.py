"""The browser's side of the OIDC flow, on mozilla-django-oidc's views: ``SignIn`` sends the
person to the IdP (authorization code, PKCE S256, state and nonce kept in this session; with
``?reauth=1`` it asks the IdP to authenticate again, ``prompt=login`` and ``max_age=0``, for an
electronic signature), ``Callback`` takes the code back (state looked up and consumed, so a replay
finds none; the ID token checked by ``sso.backends.OIDCBackend``) and records when and how the IdP
authenticated the person (``auth_time``, ``amr``) in the session."""

import logging
from datetime import UTC, datetime

from django.contrib import auth, messages
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseBadRequest
from django.utils import timezone
from django.views.generic import View
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from approvals.services import signatures
from core import session_auth

from . import provider
from .identities import SignInRefused
from .middleware import unreachable

log = logging.getLogger(__name__)
STEP_UP_KEY = "promptledger.sso_step_up_for"


class SignIn(OIDCAuthenticationRequestView):
    get_settings = staticmethod(provider.setting)

    def __init__(self, **kwargs):
        View.__init__(self, **kwargs)  # the endpoints are read when a request needs them

    OIDC_OP_AUTH_ENDPOINT = property(lambda self: provider.setting("OIDC_OP_AUTHORIZATION_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: provider.setting("OIDC_RP_CLIENT_ID"))

    def get(self, request):
        if not provider.enabled():
            raise Http404("single sign-on is not configured")
        if request.GET.get("reauth") == "1" and request.user.is_authenticated:
            request.session[STEP_UP_KEY] = request.user.pk
        else:
            request.session.pop(STEP_UP_KEY, None)
        try:
            return super().get(request)
        except provider.DiscoveryFailed as exc:
            log.warning("SSO sign-in impossible: %s", exc)
            return unreachable(request)

    def get_extra_params(self, request):
        if request.GET.get("reauth") == "1" and request.user.is_authenticated:
            return {"prompt": "login", "max_age": "0"}
        return {}


def _when(claims):
    """The IdP's ``auth_time``; never later than now (a clock ahead must not sign for the future)."""
    value = claims.get("auth_time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(datetime.fromtimestamp(value, tz=UTC), timezone.now())
    return None


class Callback(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(provider.setting)

    def get(self, request):
        if not provider.enabled():
            raise Http404("single sign-on is not configured")
        step_up_for = request.session.get(STEP_UP_KEY)
        self.step_up_for = step_up_for
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            # A replayed or forged state, a bad ID token: refused, and the person is not signed in.
            log.warning("OIDC callback refused: %s", exc)
            return HttpResponseBadRequest("Single sign-on refused this answer from the identity provider.")
        except SignInRefused as exc:
            if request.user.is_authenticated:  # a refresh the IdP's answer no longer allows
                auth.logout(request)
            messages.error(request, exc.detail)
            return self.login_failure()
        except provider.DiscoveryFailed as exc:
            log.warning("SSO callback impossible: %s", exc)
            return unreachable(request)

    def login_success(self):
        request = self.request
        if self.step_up_for is not None and self.step_up_for != self.user.pk:
            # Signing again as someone else must not swap the person behind this session.
            auth.logout(request)
            messages.error(request, "You signed in at the identity provider as someone else; signed out.")
            return self.login_failure()
        response = super().login_success()
        claims = getattr(self.user, "oidc_claims", {}) or {}
        at = _when(claims)
        amr = [m for m in claims.get("amr", []) if isinstance(m, str)] if isinstance(claims.get("amr"), list) else []
        # The session counts as authenticated when the IdP authenticated the person, not when this
        # callback ran: an IdP session of hours ago is not a fresh signature.
        if at is None:
            request.session.pop(session_auth.SESSION_KEY, None)
        else:
            session_auth.stamp(request.session, at)
        signatures.remember_idp_authentication(request.session, at=at, amr=amr)
        request.session.pop(STEP_UP_KEY, None)
        return response

    def login_failure(self):
        if self.request.GET.get("error") and not self.request.user.is_authenticated:
            messages.info(self.request, "The identity provider did not sign you in.")
        return super().login_failure()
