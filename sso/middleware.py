"""Sessions that last no longer than the IdP allows: mozilla-django-oidc's ``SessionRefresh``
sends an SSO session back to the IdP with ``prompt=none`` every
``OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS``; a person disabled or signed out there comes back with
``login_required``, and the callback signs them out. Password sessions are left alone.

Unlike the library's, every method is checked, not only GET: an overdue session's POST is not
carried out; the browser is sent to the IdP and back to the page it came from. An API call on an
overdue session (any method) gets 401 ``{"code": "session_refresh_required"}``: a script cannot
follow the IdP's pages. While the IdP cannot be reached, an overdue session gets 503.
"""

import logging
import re

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import cached_property
from django.utils.http import url_has_allowed_host_and_scheme
from mozilla_django_oidc.middleware import SessionRefresh as LibrarySessionRefresh

from . import provider

_EXEMPT = re.compile(r"^/(static/|healthz$|metrics$)")
log = logging.getLogger(__name__)


def unreachable(request):
    """503 while the IdP's discovery document cannot be read (sign-in and renewal both need it)."""
    detail = "the identity provider cannot be reached; try again shortly (break-glass accounts sign in locally)"
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "idp_unreachable", "detail": detail}, status=503)
    return HttpResponse(detail.capitalize() + ".", status=503, content_type="text/plain; charset=utf-8")


class SessionRefresh(LibrarySessionRefresh):
    get_settings = staticmethod(provider.setting)

    def __init__(self, get_response):
        MiddlewareMixin.__init__(self, get_response)  # nothing read until a session is due

    OIDC_OP_AUTHORIZATION_ENDPOINT = property(lambda self: provider.setting("OIDC_OP_AUTHORIZATION_ENDPOINT"))
    OIDC_RP_CLIENT_ID = property(lambda self: provider.setting("OIDC_RP_CLIENT_ID"))
    OIDC_RP_SCOPES = property(lambda self: provider.setting("OIDC_RP_SCOPES"))
    OIDC_STATE_SIZE = 32
    OIDC_NONCE_SIZE = 32
    OIDC_USE_NONCE = True
    OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
    OIDC_EXEMPT_URLS = []

    @cached_property
    def exempt_urls(self):
        return {reverse(name) for name in ("oidc_authentication_init", "oidc_authentication_callback", "logout")}

    def is_refreshable_url(self, request):
        if not provider.enabled() or _EXEMPT.match(request.path):
            return False
        if not hasattr(request, "user") or not request.user.is_authenticated:
            return False
        # The library's test, for every method: an SSO session (its backend is the OIDC one).
        method, request.method = request.method, "GET"
        try:
            return super().is_refreshable_url(request)
        finally:
            request.method = method

    def process_request(self, request):
        try:
            response = super().process_request(request)
        except provider.DiscoveryFailed as exc:
            # The IdP cannot be asked: the session is not renewed without it (closed, not open).
            log.warning("SSO session refresh impossible: %s", exc)
            return unreachable(request)
        if response is None:
            return response
        if request.path.startswith("/api/"):  # a script cannot follow the IdP's pages
            return JsonResponse(
                {"code": "session_refresh_required",
                 "detail": "this session must be renewed at the identity provider: reload the page"},
                status=401,
            )
        if request.method in ("GET", "HEAD"):
            return response
        back = request.META.get("HTTP_REFERER", "")
        safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure())
        request.session["oidc_login_next"] = back if safe and back else "/"
        return response
