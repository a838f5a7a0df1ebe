"""The identity provider's configuration: the settings, and its endpoints from the discovery
document (``<issuer>/.well-known/openid-configuration``).

mozilla-django-oidc wants explicit endpoint settings; here they come from discovery, fetched on
first use (never at import or start-up, so a server starts while the IdP is down) and kept for
``DISCOVERY_TTL`` seconds. A document whose ``issuer`` differs from the configured one is refused
(an ID token's ``iss`` must equal it). An explicit ``OIDC_OP_*`` setting still wins, for IdPs that
publish none. ``manage.py sso_check`` fetches it and prints what it found.
"""

import threading
import time

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DISCOVERY_TTL = 3600
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_cache = {}
_lock = threading.Lock()


class DiscoveryFailed(ImproperlyConfigured):
    """The discovery document could not be fetched or does not describe the configured issuer."""


def enabled():
    """Whether single sign-on is configured (an issuer and a client id)."""
    return bool(settings.PROMPTLEDGER_OIDC_ISSUER and settings.OIDC_RP_CLIENT_ID)


def issuer():
    return settings.PROMPTLEDGER_OIDC_ISSUER.rstrip("/")


def discovery(*, refresh=False):
    """The issuer's discovery document (cached per issuer for ``DISCOVERY_TTL`` seconds)."""
    url = issuer() + "/.well-known/openid-configuration"
    with _lock:
        cached = _cache.get(url)
        if cached and not refresh and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryFailed(f"could not read the OIDC discovery document at {url}: {exc}") from exc
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer():
        raise DiscoveryFailed(
            f"the discovery document at {url} names issuer {document.get('issuer')!r}, not {issuer()!r}"
            if isinstance(document, dict) else f"the discovery document at {url} is not a JSON object"
        )
    missing = [key for key in ENDPOINTS.values() if not document.get(key)]
    if missing:
        raise DiscoveryFailed(f"the discovery document at {url} lacks {', '.join(missing)}")
    with _lock:
        _cache[url] = (time.monotonic(), document)
    return document


def forget():
    """Drop the cached discovery documents (tests, and after a configuration change)."""
    with _lock:
        _cache.clear()


def setting(name, *default):
    """A mozilla-django-oidc setting: endpoints from discovery unless set explicitly, the rest from
    Django's settings (with ``default`` when given)."""
    if name in ENDPOINTS:
        explicit = getattr(settings, name, "")
        return explicit or discovery()[ENDPOINTS[name]]
    if default:
        return getattr(settings, name, default[0])
    try:
        return getattr(settings, name)
    except AttributeError:
        raise ImproperlyConfigured(f"setting {name} not found") from None
