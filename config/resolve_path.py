"""Resolve by bearer token, answered early: ``ResolveFastPathMiddleware`` sits right after the
request id (and the metrics, when on) and answers ``GET|HEAD /api/v1/prompts/{slug}/resolve`` with
an ``Authorization: Bearer`` header itself, through the same ``registry.api.resolve.serve`` as the
view, so the contract (auth, scope, 401/404/423 JSON errors, ETag/304, bad-token throttling) is one
piece of code. What the rest of the chain would do is kept, the rest is not needed by a token:

- kept, above it: the request id, the access line and the metrics (``RequestMetricsMiddleware``
  counts the route by ``request.resolver_match``, which is set here as URL resolving would);
- kept, by calling the real middleware: the HTTPS redirect and the host check (any request they
  would answer goes down the whole chain instead), and the headers SecurityMiddleware, CSPMiddleware
  and XFrameOptionsMiddleware add (applied once per kind of answer and remembered, as they do not
  depend on the body), and CommonMiddleware's Content-Length;
- checked, else the request goes down the chain: no body (RequestSizeMiddleware), query text
  PostgreSQL can store (StorableInputMiddleware);
- not needed by a bearer token on a read: sessions, CSRF (resolve is exempt), the session user, the
  SSO refresh, messages, the history request, axes (sign-in only), whitenoise (static files).

A middleware this module does not know placed after it switches the fast path off (with a warning),
so adding one never silently skips it for resolve. Requests without a bearer token (a browser
session) and everything else go down the chain as before.

``ResolveFromMemory`` goes one step further for the commonest resolve of all: it wraps Django's WSGI
handler (``config/wsgi.py``) and answers a bearer resolve whose every part this process holds in
memory (``registry.api.resolve.answer_from_memory``: the cached caller and pointer, a 200 with a
cached body or a 304, nothing to write or count) before Django's handler is entered at all: no
request object, no signals, no middleware calls. What the middleware above keeps, it keeps the
same way (the request id, the access line, the metrics), and the host check, the HTTPS redirect and
the security headers are what the middleware here learnt from the real middleware for that host
and scheme: a request from a host or scheme it has not seen pass, or an answer of a kind it has not
yet made, goes through Django, as does everything else.
"""

import logging
import re
from time import perf_counter as _perf_counter

from django.conf import settings
from django.core.exceptions import DisallowedHost, MiddlewareNotUsed, PermissionDenied
from django.core.signals import setting_changed
from django.http import HttpResponse
from django.urls import Resolver404, ResolverMatch, resolve
from django.utils.datastructures import MultiValueDict
from django.utils.module_loading import import_string

from core import logs, metrics, request_context
from registry.api.resolve import CACHE_CONTROL, answer_from_memory, serve

from .middleware import _first_unstorable, access_log, log_access

log = logging.getLogger(__name__)

_PATH = re.compile(r"/api/v1/prompts/([-a-zA-Z0-9_]+)/resolve")  # the URL conf's <slug:slug>
_ROUTE = "registry-api:resolve"
# Middleware whose response side adds headers that do not depend on the answer's body.
_HEADERS = (
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.security.SecurityMiddleware",
)
_CHECKED = {  # request-side checks run here, or answered by passing the request down the chain
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.RequestSizeMiddleware",
    "config.middleware.StorableInputMiddleware",
}
_NOT_NEEDED = {
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sso.middleware.SessionRefresh",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
}


_PLAIN = re.compile(r"[A-Za-z0-9._~=&-]*")  # no escapes, no '+': every value is its own text


def _plain_pairs(query):
    """A query string as QueryDict would parse it (``{key: [values]}``), when it is plain ASCII with
    no escapes (a resolve's ``environment=production&unit=user-42``); ``None`` for anything else.
    Building Django's QueryDict would cost more than the rest of a cached resolve."""
    if not _PLAIN.fullmatch(query):
        return None
    lists = {}
    for pair in query.split("&"):
        if pair:  # as QueryDict: blank values kept, the last of a repeated key wins in .get()
            key, _, value = pair.partition("=")
            lists.setdefault(key, []).append(value)
    return lists


def _plain_query(request):
    """Give the request its query as parsed, cheaply, when ``_plain_pairs`` can, and say whether it
    is storable text. Anything else is parsed by Django and checked as StorableInputMiddleware
    checks it."""
    lists = _plain_pairs(request.META.get("QUERY_STRING", ""))
    if lists is None:
        return _first_unstorable(request.GET) is None
    request.GET = MultiValueDict(lists)
    return True


def _host_key(meta):
    """What CommonMiddleware's host checks and the request's scheme are decided from."""
    return (meta.get("HTTP_X_FORWARDED_HOST"), meta.get("HTTP_HOST"), meta.get("SERVER_NAME"),
            meta.get("SERVER_PORT"), meta.get("HTTP_X_FORWARDED_PORT"), meta.get("wsgi.url_scheme"),
            meta.get(settings.SECURE_PROXY_SSL_HEADER[0]) if settings.SECURE_PROXY_SSL_HEADER else None,
            meta.get("HTTP_USER_AGENT") if settings.DISALLOWED_USER_AGENTS else None)


# What the fast path learnt from the real middleware (it does not depend on the request's body or
# the answer's): the hosts and schemes that passed the host checks (key: ``_host_key``; value: the
# request's ``is_secure()``), and the headers added to an answer, by (``is_secure()``, status).
# Forgotten when a setting changes; ``ResolveFromMemory`` reads them.
_passed_hosts = {}
_added = {}


def _forget(**kwargs):
    _passed_hosts.clear()
    _added.clear()


setting_changed.connect(_forget)


def _bearer(meta):
    """The request names a bearer token (as ``core.auth.bearer_secret`` reads the header; a
    malformed one is the fast path's to refuse, as the view would)."""
    parts = meta.get("HTTP_AUTHORIZATION", "").split()
    return bool(parts) and parts[0].lower() == "bearer"


class ResolveFastPathMiddleware:
    """Answers bearer-token resolves without the middleware below it (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response
        below = settings.MIDDLEWARE[settings.MIDDLEWARE.index(f"{__name__}.{type(self).__name__}") + 1:]
        unknown = [name for name in below if name not in _CHECKED | set(_HEADERS) | _NOT_NEEDED]
        if unknown:
            log.warning("resolve fast path off: it does not know what %s does for a resolve", ", ".join(unknown))
            _forget()
            raise MiddlewareNotUsed
        try:
            match = resolve("/api/v1/prompts/a-prompt/resolve")
        except Resolver404:
            match = None
        if match is None or match.view_name != _ROUTE:
            log.warning("resolve fast path off: the URL conf does not route resolve where it expects")
            raise MiddlewareNotUsed
        if not isinstance(getattr(HttpResponse().headers, "_store", None), dict):  # ResponseHeaders as we know it
            log.warning("resolve fast path off: this Django's response headers are not what it expects")
            raise MiddlewareNotUsed
        self._match = match
        self._common = import_string("django.middleware.common.CommonMiddleware")(get_response)
        self._security = None
        if "django.middleware.security.SecurityMiddleware" in below:
            self._security = import_string("django.middleware.security.SecurityMiddleware")(get_response)
        self._header_sources = [import_string(name)(get_response) for name in _HEADERS if name in below]

    def __call__(self, request):
        found = _PATH.fullmatch(request.path_info)
        meta = request.META
        if (
            found is None
            or request.method not in ("GET", "HEAD")
            or not _bearer(meta)
            or meta.get("CONTENT_LENGTH") not in (None, "", "0")
            or (self._security is not None and self._security.process_request(request) is not None)
            or not self._host_passes(request)
            or not _plain_query(request)
        ):
            return self.get_response(request)
        slug = found.group(1)
        match = self._match
        request.resolver_match = ResolverMatch(
            match.func, (), {"slug": slug}, match.url_name, match.app_names, match.namespaces, match.route
        )
        response = serve(request, slug)
        store = response.headers._store  # ASCII names and values made here: no charset check needed
        store["content-length"] = ("Content-Length", str(len(response.content)))
        for key, name, value in self._added_headers(request, response.status_code):
            if key not in store:
                store[key] = (name, value)
        return response

    def _host_passes(self, request):
        """CommonMiddleware's checks (ALLOWED_HOSTS, PREPEND_WWW, DISALLOWED_USER_AGENTS), remembered
        for what passed them; what fails goes down the chain, which answers it as it answers any."""
        host = _host_key(request.META)
        if host in _passed_hosts:
            return True
        try:
            if self._common.process_request(request) is not None:
                return False
        except (DisallowedHost, PermissionDenied):
            return False
        if len(_passed_hosts) < 64:
            _passed_hosts[host] = request.is_secure()
        return True

    def _added_headers(self, request, status):
        """What the header middleware add to an answer of this status to this kind of request."""
        key = (request.is_secure(), status)
        added = _added.get(key)
        if added is None:
            probe = HttpResponse(status=status)
            before = set(probe.headers)
            for source in self._header_sources:  # they read the request's scheme and path, nothing else
                probe = source.process_response(request, probe)
            added = [(name.lower(), name, value) for name, value in probe.headers.items() if name not in before]
            _added[key] = added
        return added


_ABOVE = {"config.middleware.RequestIdMiddleware", "config.middleware.RequestMetricsMiddleware"}
_STATUS_LINES = {200: "200 OK", 304: "304 Not Modified"}


class ResolveFromMemory:
    """WSGI middleware: answers, ahead of Django's handler, the bearer resolves this process can
    answer from memory (see the module docstring), and hands every other request to ``application``.
    It is on while ``ResolveFastPathMiddleware`` is installed with nothing above it but the request id
    and the metrics, whose work it does itself as they do."""

    def __init__(self, application):
        self.application = application
        self._read_settings()
        setting_changed.connect(self._read_settings)  # weakly: a test's instance is let go with it

    def _read_settings(self, **kwargs):
        names = list(settings.MIDDLEWARE)
        name = f"{__name__}.{ResolveFastPathMiddleware.__name__}"
        above = names[:names.index(name)] if name in names else None
        self._on = above is not None and "config.middleware.RequestIdMiddleware" in above and set(above) <= _ABOVE
        self._count = metrics.REQUESTS.add if self._on and "config.middleware.RequestMetricsMiddleware" in above \
            else None
        self._redirect = settings.SECURE_SSL_REDIRECT

    def __call__(self, environ, start_response):
        if self._on and environ.get("PATH_INFO", "").endswith("/resolve"):
            started = _perf_counter()
            try:
                answered = self._answer(environ, started)
            except Exception:  # noqa: BLE001 - nothing was written or sent: the usual path answers it
                log.exception("resolve from memory failed; answering it the usual way")
                answered = None
            if answered is not None:
                status, headers, body = answered
                start_response(status, headers)
                return [body]
        return self.application(environ, start_response)

    def _answer(self, environ, started):
        found = _PATH.fullmatch(environ["PATH_INFO"])
        method = environ.get("REQUEST_METHOD")
        if found is None or method not in ("GET", "HEAD") or environ.get("CONTENT_LENGTH") not in (None, "", "0"):
            return None
        secure = _passed_hosts.get(_host_key(environ))
        if secure is None or (self._redirect and not secure):
            return None
        query = _plain_pairs(environ.get("QUERY_STRING", ""))
        if query is None:
            return None
        environment, unit = query.get("environment"), query.get("unit")
        answer = answer_from_memory(environ, found.group(1), environment=environment and environment[-1],
                                    unit=unit and unit[-1])
        if answer is None:
            return None
        status, body, digest, token = answer
        added = _added.get((secure, status))
        if added is None:
            return None
        request_id = request_context.request_id(environ)
        headers = [("Content-Type", "application/json")] if status == 200 else []
        headers += [("ETag", f'"{digest}"'), ("Cache-Control", CACHE_CONTROL), ("Content-Length", str(len(body)))]
        headers += [(name, value) for _, name, value in added]
        headers.append(("X-Request-ID", request_id))
        seconds = _perf_counter() - started
        if access_log.isEnabledFor(logging.INFO):
            bound = logs.bind(request_id=request_id)
            try:
                log_access(method, _ROUTE, status, seconds, environ, (None, None, token.pk))
            finally:
                logs.restore(bound)
        if self._count is not None:
            self._count(_ROUTE, method, status, seconds)
        return _STATUS_LINES[status], headers, body
