"""Rate limits of the API, counted per fixed window on a cache every process shares (Redis in production, the
process's memory in the embedded mode), answered with 429 ``throttled`` and ``Retry-After``:

- per token (or signed-in person): ``PROMPTLEDGER_API_RATE``, 6000/min;
- per address for callers with no credentials: ``PROMPTLEDGER_ANON_RATE``, 600/min;
- per address for bad bearer tokens (unknown, revoked, expired): after
  ``PROMPTLEDGER_BAD_TOKEN_LIMIT`` (20) in a minute, every bearer token from that address is
  refused unchecked until the minute is over, so guessing tokens is slow.

Resolve, the hot path, is not counted per token (clients cache it and revalidate with ETags);
bad tokens on it are. The address is ``core.request_context.client_ip``: behind a proxy only a
``PROMPTLEDGER_TRUSTED_PROXIES`` one may name the client.
"""

import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .models import APIToken
from .request_context import client_ip

BAD_TOKEN_WINDOW = 60
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}  # 6000/min, 100/s, ...


def _count(key, window):
    """Add one to the counter ``key`` (created for ``window`` seconds); returns the new count.
    A fixed window and one small integer a caller, rather than DRF's list of every request's time
    (thousands of floats pickled to and from the cache on each request of a busy token)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):  # one round trip: INCR, and EXPIRE on the window's first
        name = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(name, write=True).pipeline()
        pipe.incr(name)
        pipe.expire(name, window + 1, nx=True)
        return pipe.execute()[0]
    try:
        return cache.incr(key)
    except ValueError:  # no counter yet in this window
        if cache.add(key, 1, timeout=window + 1):
            return 1
        return cache.incr(key)


class _WindowThrottle(BaseThrottle):
    scope = None

    def __init__(self):
        count, _, period = api_settings.DEFAULT_THROTTLE_RATES[self.scope].partition("/")
        self.num_requests, self.duration = int(count), PERIODS[period[:1]]
        self.left = 0

    def get_ident(self, request):
        return client_ip(request.META)

    def allow_request(self, request, view):
        ident = self.ident(request)
        if ident is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.left = self.duration - now % self.duration
        return _count(f"throttle_{self.scope}_{ident}_{window}", self.duration) <= self.num_requests

    def wait(self):
        return self.left


class TokenRateThrottle(_WindowThrottle):
    scope = "token"

    def ident(self, request):
        auth = getattr(request, "auth", None)
        if isinstance(auth, APIToken):
            return f"t{auth.pk}"
        if request.user.is_authenticated:
            return f"u{request.user.pk}"
        return None


class AddressRateThrottle(_WindowThrottle):
    scope = "anon"

    def ident(self, request):
        return None if request.user.is_authenticated else self.get_ident(request)


def _bad_token_key(meta):
    window = int(time.time() // BAD_TOKEN_WINDOW)
    return f"throttle_bad_token_{client_ip(meta)}_{window}", BAD_TOKEN_WINDOW - time.time() % BAD_TOKEN_WINDOW


# Addresses this process has seen go past the bad-token limit, by window. The check on every
# bearer request reads only this (no cache round trip on resolve's hot path); the shared count
# puts an address here in whichever process sees the limit passed, so each other process lets at
# most one more guess through before it learns the same.
_blocked = {}


def guessing(meta):
    """Whether this address sent too many bad tokens in the current minute."""
    return bool(_blocked) and _bad_token_key(meta)[0] in _blocked  # empty: the usual case, no look-up


def refuse_while_guessing(meta):
    """Raise ``Throttled`` when ``guessing`` says so."""
    if guessing(meta):
        left = _bad_token_key(meta)[1]
        raise exceptions.Throttled(wait=left, detail=f"too many invalid tokens from this address; "
                                                     f"try again in {int(left) + 1} s")


def note_bad_token(meta):
    key, _ = _bad_token_key(meta)
    if _count(key, BAD_TOKEN_WINDOW) >= settings.PROMPTLEDGER_BAD_TOKEN_LIMIT:
        window = key.rsplit("_", 1)[1]
        for old in [k for k in _blocked if not k.endswith(f"_{window}")]:
            del _blocked[old]
        _blocked[key] = True
