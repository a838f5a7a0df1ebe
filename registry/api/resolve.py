"""Resolve's answer, shared by ``ResolveView`` (browser sessions, and any request the fast path
passes on) and ``config.resolve_path`` (bearer tokens, answered ahead of the middleware a token
needs none of): the caller and the pointer from ``registry.resolve_cache`` (one query when not
cached, none when cached), the token's rules from ``core.auth``, the scope from ``core.access``, and
the errors as ``{"code", "detail", "field_errors"}``."""

import time

from django.http import HttpResponse, HttpResponseNotModified
from rest_framework import exceptions

from core import access, throttling
from core.actors import Actor
from core.auth import (
    BEARER_CHALLENGE,
    bearer_secret,
    hash_token,
    note_token_used,
    refuse_token,
    token_refusal,
    token_use_due,
)
from core.errors import DomainError, ValidationFailed

from .. import resolve_cache, selectors
from .errors import json_error


def serve(request, slug):
    """The answer to ``GET /api/v1/prompts/{slug}/resolve`` as a plain Django response."""
    if request.method not in ("GET", "HEAD"):
        response = json_error("method_not_allowed", f'Method "{request.method}" not allowed.', 405)
        response["Allow"] = "GET, HEAD"
        return response
    try:
        return _resolve(request, slug)
    except (exceptions.AuthenticationFailed, exceptions.NotAuthenticated) as exc:
        code = "invalid_token" if isinstance(exc, exceptions.AuthenticationFailed) else "not_authenticated"
        response = json_error(code, str(exc.detail), 401)
        response["WWW-Authenticate"] = BEARER_CHALLENGE
        return response
    except exceptions.Throttled as exc:
        response = json_error("throttled", str(exc.detail), 429)
        response["Retry-After"] = str(int(exc.wait or 1) + 1)
        return response
    except DomainError as exc:
        return json_error(exc.code, exc.detail, exc.status, exc.field_errors)


def _resolve(request, slug):
    environment = request.GET.get("environment")
    secret = bearer_secret(request.META)
    if secret is not None:
        throttling.refuse_while_guessing(request.META)
        key_hash = hash_token(secret)
        found = resolve_cache.lookup_for_token(slug=slug, environment=environment, token_hash=key_hash)
        caller, pointer = found if found is not None else (None, None)
        refuse_token(
            found=caller is not None,
            revoked=caller is not None and caller.revoked,
            user_active=caller is not None and caller.user_active,
            expired=caller is not None and caller.expired(time.time()),
            meta=request.META,
        )
        note_token_used(caller.token.pk, key_hash)
        request.auth = caller.token  # as DRF sets it: the access line's token id
        access.require(Actor(user=None, token=caller.token), "read")
    else:
        user = request.user  # the browser session, as DRF's SessionAuthentication
        if not (user.is_authenticated and user.is_active):
            raise exceptions.NotAuthenticated()
        caller, pointer = selectors.resolve_lookup(slug=slug, environment=environment, user_id=user.pk)
    version_id, canary = _pick(caller, pointer, slug=slug, environment=environment, unit=request.GET.get("unit"))
    body, digest = _content(pointer, version_id, canary, environment=environment,
                            if_none_match=request.META.get("HTTP_IF_NONE_MATCH"), payload=selectors.version_payload)
    response = HttpResponseNotModified() if body is None else HttpResponse(body, content_type="application/json")
    response["ETag"] = f'"{digest}"'
    response["Cache-Control"] = CACHE_CONTROL
    return response


CACHE_CONTROL = "private, no-cache"


def _pick(caller, pointer, *, slug, environment, unit):
    """``(version_id, canary)`` for a caller allowed to resolve, or the domain error of the contract."""
    if not environment:
        raise ValidationFailed(
            "environment is required", field_errors={"environment": ["e.g. ?environment=production"]}
        )
    selectors.check_resolve(caller, pointer, slug=slug, environment=environment)
    return selectors.pick_version_id(pointer, slug=slug, environment=environment, unit=unit)


def _content(pointer, version_id, canary, *, environment, if_none_match, payload):
    """``(body, digest)``, the body ``None`` when the caller's copy is current (a 304); ``None``
    when ``payload`` has no body to give."""
    digest = pointer.content_hash(version_id)
    if etag_matches(if_none_match, digest):
        return None, digest
    return payload(version_id, environment=environment, canary=canary)


def answer_from_memory(meta, slug, *, environment, unit):
    """``(status, body, digest, token)`` for a bearer resolve this process can answer from what it
    holds in memory, with nothing to write or count: the caller and the pointer cached and usable
    (``resolve_cache``), the token admitted with its ``read`` scope and its use recorded lately
    enough, the answer a 200 whose body is cached or a 304. ``None`` for everything else, which the
    caller then sends down the usual path (``serve``), where every answer is made: the rules are
    ``serve``'s own, asked without their side effects."""
    if throttling.guessing(meta):
        return None
    try:
        secret = bearer_secret(meta)
    except exceptions.AuthenticationFailed:
        return None
    cache = resolve_cache.cache
    if secret is None or not cache.usable():
        return None
    key_hash = hash_token(secret)
    found = cache.get(key_hash, slug, environment or "")
    if found is None:
        return None
    caller, pointer = found
    if token_use_due(key_hash) or token_refusal(
        found=True, revoked=caller.revoked, user_active=caller.user_active, expired=caller.expired(time.time())
    ) is not None or not access.may(Actor(user=None, token=caller.token), "read"):
        return None
    try:
        version_id, canary = _pick(caller, pointer, slug=slug, environment=environment, unit=unit)
    except DomainError:
        return None
    content = _content(pointer, version_id, canary, environment=environment,
                       if_none_match=meta.get("HTTP_IF_NONE_MATCH"), payload=selectors.cached_version_payload)
    if content is None:
        return None
    body, digest = content
    return (304, b"", digest, caller.token) if body is None else (200, body, digest, caller.token)


def etag_matches(header, digest):
    """RFC 9110 weak comparison, as If-None-Match asks: ``W/`` prefixes and ``*`` match too."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate in ("*", digest):
            return True
    return False
