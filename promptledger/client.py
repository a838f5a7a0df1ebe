"""A small client for Promptledger's REST API, on the standard library only.

``Client(url, token)`` (or ``PROMPTLEDGER_URL`` / ``PROMPTLEDGER_TOKEN``) sends bearer-token
requests and turns the server's error bodies (``{"code", "detail", "field_errors"}``) into
exceptions, one class per kind of refusal, so callers catch what they can handle::

    client = Client()
    try:
        live = client.resolve("loan-letter", "production", unit=customer_id, etag=cached_etag)
    except PromptDisabled:
        ...  # kill-switched: fall back
    if not live.not_modified:
        cached = live.data
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from . import __version__

DEFAULT_TIMEOUT = 10.0


class PromptledgerError(Exception):
    """Anything that went wrong talking to Promptledger. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


class ConfigurationError(PromptledgerError):
    """The client cannot start: no server URL, or one it will not use."""


class ConnectionFailed(PromptledgerError):
    """No answer from the server (refused, DNS, TLS, timeout)."""


class APIError(PromptledgerError):
    """The server answered with an error: its status, ``code``, ``detail`` and ``field_errors``."""

    exit_code = 1

    def __init__(self, status, code, detail, field_errors=None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.field_errors = field_errors or {}

    def __str__(self):
        return f"{self.detail} ({self.code}, HTTP {self.status})"


class BadRequest(APIError):
    """400: the request was refused as invalid; ``field_errors`` names each field."""


class Unauthorized(APIError):
    """401: no token, or a token that is invalid, revoked or expired."""


class Forbidden(APIError):
    """403: a rule forbids it; ``code`` says which (e.g. ``scope_missing``)."""


class NotFound(APIError):
    """404: no such prompt (or not visible to this token), or nothing deployed (``not_deployed``)."""


class PromptDisabled(APIError):
    """423: the prompt is kill-switched in this environment."""


class ServerError(APIError):
    """5xx: the server failed; nothing was refused, so the CLI treats it like a connection error."""

    exit_code = 2


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 423: PromptDisabled}


def _lower(headers):
    return {key.lower(): value for key, value in (headers.items() if headers else [])}


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict  # names in lower case
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass(frozen=True)
class Resolved:
    """A resolve answer. ``data`` is the JSON body (slug, environment, version, content_hash,
    canary, messages, variables, model), or ``None`` when ``not_modified`` (the ETag sent
    still matches)."""

    data: dict | None
    etag: str
    not_modified: bool = False


class Client:
    def __init__(self, url=None, token=None, *, timeout=DEFAULT_TIMEOUT):
        url = url or os.environ.get("PROMPTLEDGER_URL", "")
        if not url:
            raise ConfigurationError(
                "no server URL: set PROMPTLEDGER_URL (e.g. http://127.0.0.1:8000) or pass one explicitly"
            )
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"'{url}' is not an http(s) URL of a Promptledger server")
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("PROMPTLEDGER_TOKEN", "")
        self.timeout = timeout

    def request(self, method, path, *, query=None, json_body=None, headers=None, accept=(200,)):
        """Send one request to ``/api/v1/{path}``; return the ``Response`` when its status is in
        ``accept``, raise an ``APIError`` subclass for an error answer, ``ConnectionFailed`` when
        there is none."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        sent = {"Accept": "application/json", "User-Agent": f"promptledger-client/{__version__}", **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=sent, method=method)  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:  # noqa: S310 - scheme checked
                response = Response(answer.status, _lower(answer.headers), answer.read())
        except urllib.error.HTTPError as exc:  # urllib raises for every status outside 2xx, 304 included
            response = Response(exc.code, _lower(exc.headers), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(f"cannot reach {self.url}: {reason}") from exc
        if response.status in accept:
            return response
        raise self._error(response)

    def _error(self, response):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "code" in body:
            code, detail, fields = body["code"], str(body.get("detail", "")), body.get("field_errors") or {}
        else:  # not our JSON: a proxy's error page, say
            code, detail, fields = "http_error", response.body.decode("utf-8", "replace")[:200].strip(), {}
        detail = detail or f"HTTP {response.status}"
        if response.status == 401 and not self.token:
            detail += " (no token: set PROMPTLEDGER_TOKEN)"
        cls = ServerError if response.status >= 500 else _BY_STATUS.get(response.status, APIError)
        return cls(response.status, code, detail, fields)

    def get_json(self, path, *, query=None):
        """GET ``/api/v1/{path}`` and return its JSON body."""
        return self.request("GET", path, query=query).json()

    def post_json(self, path, body, *, accept=(200, 201)):
        """POST ``body`` as JSON; return ``(status, JSON body)``, the status being one of ``accept``."""
        response = self.request("POST", path, json_body=body, accept=accept)
        return response.status, response.json()

    def paginate(self, path, *, query=None):
        """Every item of a paginated list (``{"results", "next"}``), following ``next`` page by page.

        Only the query string of ``next`` is used: the pages come from this client's URL even when
        a proxy makes the server believe it has another host."""
        query = dict(query or {})
        seen = set()
        while True:
            body = self.get_json(path, query=query)
            if isinstance(body, list):  # an endpoint without pagination
                yield from body
                return
            yield from body.get("results", [])
            following = body.get("next")
            if not following:
                return
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(following).query))
            key = tuple(sorted(query.items()))
            if key in seen:  # a server that keeps pointing at the same page must not loop forever
                return
            seen.add(key)

    def resolve(self, slug, environment, unit=None, etag=None):
        """The version of ``slug`` deployed to ``environment``. ``unit`` (a stable user or session
        id) picks the canary side; ``etag`` from an earlier answer makes an unchanged answer a
        cheap ``not_modified``."""
        headers = {"If-None-Match": etag if etag.startswith(('"', "W/")) else f'"{etag}"'} if etag else None
        response = self.request(
            "GET",
            f"prompts/{urllib.parse.quote(slug, safe='')}/resolve",
            query={"environment": environment, "unit": unit},
            headers=headers,
            accept=(200, 304),
        )
        new_etag = response.headers.get("etag") or etag or ""
        if response.status == 304:
            return Resolved(data=None, etag=new_etag, not_modified=True)
        return Resolved(data=response.json(), etag=new_etag)
