"""Rate limits of the API, counted on a cache every process shares (Redis in production, the
process's memory in the embedded mode), answered with 429 ``throttled`` and ``Retry-After``:

- per token (or signed-in person): ``PROMPTLEDGER_API_RATE``, 6000/min;
- per address for callers with no credentials: ``PROMPTLEDGER_ANON_RATE``, 600/min;
- per address for bad bearer tokens (unknown, revoked, expired): after
  ``PROMPTLEDGER_BAD_TOKEN_LIMIT`` (20) in a minute, every bearer token from that address is
  refused unchecked until the minute is over, so guessing tokens is slow.

Resolve, the hot path, is not counted per token (clients cache it and revalidate with ETags);
bad tokens on it are. The address is ``audit.request_context.client_ip``: behind a proxy only a
``PROMPTLEDGER_TRUSTED_PROXIES`` one may name the client.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from audit.request_context import client_ip

from ..models import APIToken

BAD_TOKEN_WINDOW = 60


class _SharedThrottle(SimpleRateThrottle):
    cache = property(lambda self: cache)  # the configured default cache, looked up at each use

    def get_ident(self, request):
        return client_ip(request.META)


class TokenRateThrottle(_SharedThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        auth = getattr(request, "auth", None)
        if isinstance(auth, APIToken):
            ident = f"t{auth.pk}"
        elif request.user.is_authenticated:
            ident = f"u{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressRateThrottle(_SharedThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _bad_token_key(meta):
    window = int(time.time() // BAD_TOKEN_WINDOW)
    return f"throttle_bad_token_{client_ip(meta)}_{window}", BAD_TOKEN_WINDOW - time.time() % BAD_TOKEN_WINDOW


def refuse_while_guessing(meta):
    """Raise ``Throttled`` when this address sent too many bad tokens in the current minute."""
    key, left = _bad_token_key(meta)
    if (cache.get(key) or 0) >= settings.PROMPTLEDGER_BAD_TOKEN_LIMIT:
        raise exceptions.Throttled(wait=left, detail=f"too many invalid tokens from this address; "
                                                     f"try again in {int(left) + 1} s")


def note_bad_token(meta):
    key, left = _bad_token_key(meta)
    if cache.add(key, 1, timeout=int(left) + 1):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=int(left) + 1)
