"""What every request gets before any view: an id of the server's own (``RequestIdMiddleware``),
and a check of its input (``StorableInputMiddleware``): query parameters and form fields (the
browser's posts, and any API call sent as a form) must be text PostgreSQL can store. A NUL in
``?q=`` or a comment field is a 400 naming the parameter, never a ``DataError`` 500. JSON bodies
are checked by the API's parser (``registry.api.parsers``) with the same rule. When metrics are on,
``RequestMetricsMiddleware`` counts and times every request by its route's name.

``RequestIdMiddleware`` also binds the id to the log context (``core.logs``) for the request's span
and, once the response is made, writes the request's one access line (logger
``promptledger.request``): request id, method, route, status, duration, actor and client IP."""

import functools
import logging
import time
from time import perf_counter as _perf_counter  # a global lookup, not an attribute one, per request

from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty
from django.utils.log import log_response

from core import logs, metrics, request_context
from core.models import APIToken
from registry.services.validation import UNSTORABLE_ADVICE, unstorable

from .errors import answer

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _first_unstorable(querydict):
    for key, values in querydict.lists():
        where = unstorable({key: values})
        if where is not None:
            return where.split("[", 1)[0]
    return None


class StorableInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = _first_unstorable(request.GET)
        if where is None and request.method == "POST" and request.content_type in _FORM_TYPES:
            where = _first_unstorable(request.POST)
        if where is not None:
            return answer(
                request, 400, "unstorable_text", "This input cannot be saved",
                f"The field “{where}” {UNSTORABLE_ADVICE}. Go back, correct it and send it again.",
                detail=f"{where}: {UNSTORABLE_ADVICE}", field_errors={where: [UNSTORABLE_ADVICE]},
            )
        return self.get_response(request)


access_log = logging.getLogger("promptledger.request")
log = logging.getLogger(__name__)


def route_of(request):
    """What a request is counted and logged under: its URL pattern's name
    (``resolver_match.view_name``), never the path with its ids and query; ``unresolved`` when no
    pattern matched (static files, a 404 of the URL conf, a redirect to HTTPS)."""
    match = request.resolver_match
    return match.view_name if match is not None else "unresolved"


def _actor(request):
    """``(username or "anonymous", user id, token id)`` of whoever the request authenticated as:
    the token's id, never the token. A user the request never looked up (a static file, a token-only
    resolve) is not looked up now: that would cost a session query; the username is then ``None``."""
    auth = getattr(request, "auth", None)  # DRF sets it on the Django request; resolve sets it too
    token_id = auth.pk if isinstance(auth, APIToken) else None
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None, None, token_id
    if not user.is_authenticated:
        return "anonymous", None, token_id
    return user.get_username(), user.pk, token_id


@functools.lru_cache(maxsize=256)
def _client_ip(peer, forwarded_for, trusted_proxies):
    """``request_context.client_ip``, remembered: parsing addresses costs more than the rest of the
    line (the trusted proxies are part of the key, so a change of the setting is seen at once)."""
    return request_context.client_ip({"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_FOR": forwarded_for})


def _log_access(request, status, seconds):
    log_access(request.method, route_of(request), status, seconds, request.META, _actor(request))


def log_access(method, route, status, seconds, meta, actor):
    """The access line of one request; ``actor`` is ``_actor``'s triple."""
    username, user_id, token_id = actor
    milliseconds = round(seconds * 1000, 1)
    ip = _client_ip(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""),
                    tuple(settings.PROMPTLEDGER_TRUSTED_PROXIES))
    by = (username or "-") + (f" (token {token_id})" if token_id is not None else "")
    # makeRecord + handle is logger.info without the look for the caller's frame, which a line
    # written on every request does not need.
    access_log.handle(access_log.makeRecord(
        access_log.name, logging.INFO, __file__, 0, "%s %s %s in %.1f ms by %s from %s",
        (method, route, status, milliseconds, by, ip), None,
        extra={"method": method, "route": route, "status": status, "duration_ms": milliseconds,
               "actor": username, "user_id": user_id, "token_id": token_id, "client_ip": ip},
    ))


class RequestIdMiddleware:
    """Gives each request an id of the server's own (``core.request_context``), returned as
    ``X-Request-ID``; the audit events, the error responses and every log line of the request carry
    it, and its access line is written here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = request_context.request_id(request.META)
        token = logs.bind(request_id=request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            if response.status_code >= 400:
                # Django's own "Not Found: /path" line, written here (as its handler would once the
                # middleware is done, and then does not) so that it carries the request id as well.
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(request, response.status_code, time.perf_counter() - started)
        finally:
            logs.restore(token)
        return response


class RequestSizeMiddleware:
    """One limit on every request body, API and browser alike: a body announced larger than
    ``PROMPTLEDGER_MAX_REQUEST_BYTES`` is refused with 413 before a byte of it is read. (The
    WSGI input of a request without a length reads as empty, so nothing gets past unannounced.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.PROMPTLEDGER_MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            megabytes = f"{limit / 1024 / 1024:g} MB"
            return answer(
                request, 413, "payload_too_large", "That upload is too large",
                f"Files and forms may be at most {megabytes}. Split the file and upload the parts.",
                detail=f"the request body is {length:,} bytes; the limit is {limit:,} bytes ({megabytes})",
            )
        return self.get_response(request)


class RequestMetricsMiddleware:
    """Counts each request and times it (``promptledger_http_*``), labelled by its route
    (``route_of``). Installed first, only when ``PROMPTLEDGER_METRICS`` is on."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.count = metrics.REQUESTS.add  # in memory: see core.metrics.RequestCounts

    def __call__(self, request):
        # Written for the few microseconds it costs every request (resolve's included): the counts
        # in memory, one clock read each side; the route named as the access line names it.
        started = _perf_counter()
        response = self.get_response(request)
        try:
            self.count(route_of(request), request.method, response.status_code, _perf_counter() - started)
        except Exception:  # noqa: BLE001 - counting must not break what it counts
            log.exception("metrics: counting a request failed")
        return response
