"""A client for Promptledger's REST API, on the standard library only (Jinja2 to render).

For an application, ``get_prompt`` is the call: the deployed version of a prompt, from a cache that
keeps the application running when the server is not (see ``promptledger.cache`` for what it
guarantees)::

    client = Client()  # PROMPTLEDGER_URL, PROMPTLEDGER_TOKEN
    prompt = client.get_prompt("loan-letter", "production", unit=customer_id)
    messages = prompt.render(name="Ada")

For tools, ``request``/``get_json``/``post_json``/``paginate`` send bearer-token requests and turn
the server's error bodies (``{"code", "detail", "field_errors"}``) into exceptions, one class per
kind of refusal, so callers catch what they can handle::

    try:
        live = client.resolve("loan-letter", "production", unit=customer_id, etag=cached_etag)
    except PromptDisabled:
        ...  # kill-switched: fall back
    if not live.not_modified:
        cached = live.data
"""

import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .cache import LastKnownGood, PromptCache, default_cache_dir
from .errors import (
    BY_CODE,
    BY_STATUS,
    APIError,
    BadRequest,
    BudgetExceeded,
    ConfigurationError,
    ConnectionFailed,
    Forbidden,
    NotFound,
    PromptDisabled,
    PromptledgerError,
    PromptUnavailable,
    RenderError,
    ServerError,
    Unauthorized,
)
from .prompt import Prompt

__all__ = [
    "APIError", "AsyncClient", "BadRequest", "BudgetExceeded", "Client", "ConfigurationError", "ConnectionFailed",
    "Forbidden",
    "NotFound", "Prompt", "PromptDisabled", "PromptUnavailable", "PromptledgerError", "RenderError", "Resolved",
    "Response", "ServerError", "Unauthorized", "default_cache_dir",
]

DEFAULT_TIMEOUT = 10.0
DEFAULT_TTL = 60.0
DEFAULT_RETRIES = 2


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
    """A Promptledger server, reached with a bearer token.

    ``url`` and ``token`` default to ``PROMPTLEDGER_URL`` and ``PROMPTLEDGER_TOKEN``. ``timeout`` (s)
    bounds each request, and bounds ``get_prompt`` in total, retries included (``retries`` more
    attempts after a connection failure or a 5xx, while time is left). ``ttl`` (s) is how long a
    fetched prompt is answered from memory before it is revalidated; ``cache_dir`` holds the
    last-known-good copies (default ``default_cache_dir()``; ``False`` keeps nothing on disk).
    Safe to share between threads; one per process is the intended use.
    """

    def __init__(self, url=None, token=None, *, timeout=DEFAULT_TIMEOUT, ttl=DEFAULT_TTL, cache_dir=None,
                 retries=DEFAULT_RETRIES):
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
        self.timeout = timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        if timeout <= 0 or ttl < 0 or retries < 0:
            raise ConfigurationError("timeout must be positive, ttl and retries not negative")
        self.retries = retries
        self.cache_dir = None if cache_dir is False else Path(cache_dir or default_cache_dir()).expanduser()
        disk = LastKnownGood(self.cache_dir, self.url) if self.cache_dir else None
        self.prompts = PromptCache(fetch=self._resolve_before, server=self.url, ttl=ttl, timeout=timeout, disk=disk)

    def request(self, method, path, *, query=None, json_body=None, headers=None, accept=(200,), timeout=None):
        """Send one request to ``/api/v1/{path}``; return the ``Response`` when its status is in
        ``accept``, raise an ``APIError`` subclass for an error answer, ``ConnectionFailed`` when
        there is none (within ``timeout`` s, default the client's)."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        sent = {"Accept": "application/json", "User-Agent": f"promptledger-sdk/{__version__}", **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=sent, method=method)  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as answer:  # noqa: S310 - scheme checked
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
        cls = ServerError if response.status >= 500 else BY_STATUS.get(response.status, APIError)
        cls = BY_CODE.get(code, cls) if issubclass(BY_CODE.get(code, APIError), cls) else cls
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

    def resolve(self, slug, environment, unit=None, etag=None, *, timeout=None):
        """The version of ``slug`` deployed to ``environment``, uncached: one request. ``unit`` (a
        stable user or session id) picks the canary side; ``etag`` from an earlier answer makes an
        unchanged answer a cheap ``not_modified``."""
        headers = {"If-None-Match": etag if etag.startswith(('"', "W/")) else f'"{etag}"'} if etag else None
        response = self.request(
            "GET",
            f"prompts/{urllib.parse.quote(slug, safe='')}/resolve",
            query={"environment": environment, "unit": unit},
            headers=headers,
            accept=(200, 304),
            timeout=timeout,
        )
        new_etag = response.headers.get("etag") or etag or ""
        if response.status == 304:
            return Resolved(data=None, etag=new_etag, not_modified=True)
        return Resolved(data=response.json(), etag=new_etag)

    def get_prompt(self, slug, environment, unit=None, *, fallback=None):
        """The version of ``slug`` deployed to ``environment`` (for ``unit``'s side of a canary), as a
        ``Prompt``, from the cache when it can (see ``promptledger.cache``).

        Raises ``PromptDisabled`` when it is kill-switched (never a cached copy), ``NotFound`` when
        nothing is deployed or no such prompt is visible, ``Unauthorized``/``Forbidden``/``BadRequest``
        for the token or the arguments. When the server is unreachable it answers the copy held in
        memory or on disk; when none was ever cached, ``fallback`` (a ``Prompt``, or a mapping with
        ``messages``, ``variables``, ``model``) if given, else ``PromptUnavailable``. Never blocks
        longer than the client's ``timeout``."""
        return self.prompts.get(slug, environment, unit, fallback)

    def close(self):
        """Stop revalidating in the background and wait, up to ``timeout``, for refreshes under way
        (at shutdown, so none outlives the application's logging). The client still answers."""
        self.prompts.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _resolve_before(self, slug, environment, unit, etag, deadline):
        """``resolve``, retried after a connection failure or a 5xx with a short backoff, every
        attempt within what is left before ``deadline`` (monotonic)."""
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(f"cannot reach {self.url}: no answer within {self.timeout:g} s")
            try:
                return self.resolve(slug, environment, unit=unit, etag=etag, timeout=left)
            except (ConnectionFailed, ServerError):
                attempt += 1
                pause = min(0.05 * 2**attempt, 1.0)
                if attempt > self.retries or time.monotonic() + pause >= deadline:
                    raise
                time.sleep(pause)


class AsyncClient:
    """``get_prompt`` for asyncio code, with the same cache and guarantees as ``Client``: an answer
    memory holds never leaves the event loop; a fetch runs in a worker thread, so a slow server never
    blocks the loop. ``sync`` is the ``Client`` underneath, for everything else."""

    def __init__(self, url=None, token=None, **options):
        self.sync = Client(url, token, **options)

    async def get_prompt(self, slug, environment, unit=None, *, fallback=None):
        """As ``Client.get_prompt``."""
        cache = self.sync.prompts
        key = (slug, environment, cache.key_bucket(slug, environment, unit))
        held = cache.lookup(key, unit)
        if held is not None:
            return held
        return await asyncio.to_thread(cache.fetch_now, key, unit, fallback)

    async def close(self):
        """As ``Client.close``, without blocking the event loop."""
        await asyncio.to_thread(self.sync.close)


def client_from(args):
    """The client a command line's parsed ``--url`` and ``--timeout`` describe."""
    return Client(url=args.url, timeout=args.timeout)
