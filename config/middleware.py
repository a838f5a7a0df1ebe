"""What every request gets before any view: an id of the server's own (``RequestIdMiddleware``),
and a check of its input (``StorableInputMiddleware``): query parameters and form fields (the
browser's posts, and any API call sent as a form) must be text PostgreSQL can store. A NUL in
``?q=`` or a comment field is a 400 naming the parameter, never a ``DataError`` 500. JSON bodies
are checked by the API's parser (``registry.api.parsers``) with the same rule. When metrics are on,
``RequestMetricsMiddleware`` counts and times every request by its route's name."""

import time

from django.conf import settings

from core import metrics, request_context
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


class RequestIdMiddleware:
    """Gives each request an id of the server's own (``core.request_context``), returned as
    ``X-Request-ID``; the audit events of the request carry it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_context.request_id(request.META)
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
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
    """Counts each request and times it (``promptledger_http_*``), labelled by the URL pattern's
    name (``resolver_match.view_name``), never the path: ``unresolved`` when no pattern matched
    (static files, a 404 of the URL conf, a redirect to HTTPS). Installed first, only when
    ``PROMPTLEDGER_METRICS`` is on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        metrics.request_answered(
            match.view_name if match is not None else "unresolved", request.method, response.status_code,
            time.perf_counter() - started,
        )
        return response
