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
from core.auth import BEARER_CHALLENGE, bearer_secret, hash_token, note_token_used, refuse_token
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
    if not environment:
        raise ValidationFailed(
            "environment is required", field_errors={"environment": ["e.g. ?environment=production"]}
        )
    selectors.check_resolve(caller, pointer, slug=slug, environment=environment)
    version_id, canary = selectors.pick_version_id(pointer, slug=slug, environment=environment,
                                                   unit=request.GET.get("unit"))
    digest = pointer.content_hash(version_id)
    if etag_matches(request.META.get("HTTP_IF_NONE_MATCH"), digest):
        response = HttpResponseNotModified()
    else:
        body, digest = selectors.version_payload(version_id, environment=environment, canary=canary)
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = f'"{digest}"'
    response["Cache-Control"] = "private, no-cache"
    return response


def etag_matches(header, digest):
    """RFC 9110 weak comparison, as If-None-Match asks: ``W/`` prefixes and ``*`` match too."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip().removeprefix("W/").strip('"')
        if candidate in ("*", digest):
            return True
    return False
