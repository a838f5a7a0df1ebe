"""One POST to a receiver outside: a webhook delivery's and an audit stream's batch alike.

- The host is resolved and checked once (``webhooks.destinations``), and the POST goes to the
  address that was checked; the name still goes in the Host header and, over TLS, in SNI and the
  certificate check.
- No redirect is followed, and the answer's body is never read: only its status and
  ``Retry-After`` matter.
- **An attempt takes at most ``timeout`` seconds in all.** httpx bounds each connect, write and
  read by it, but a receiver that drips its answer a byte at a time, each within the read
  timeout, would hold the worker for as long as it liked. So the request runs on a thread of its
  own, the caller waits ``timeout`` for it, and past that the client is closed under it.
- The error text never quotes the exception or the URL (either may carry a token).
"""

import threading
from dataclasses import dataclass

import httpx

from .destinations import DestinationRefused, resolve_destination


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (refused, unresolvable, no connection, timed out)
    error: str  # "" for a 2xx
    retry_after: str | None  # the receiver's Retry-After header, as sent


def pinned_destination(url, headers):
    """``url`` with its host replaced by the address it resolves to, once that address is checked
    (``webhooks.destinations``). Sets ``headers["Host"]``; returns ``(url, request extensions)``."""
    parsed = httpx.URL(url)
    address = resolve_destination(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
    headers["Host"] = parsed.netloc.decode("ascii")
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return str(parsed.copy_with(host=str(address))), extensions


def post_once(url, body, headers, *, timeout):
    """POST ``body`` (bytes) to ``url`` once, within ``timeout`` seconds in all: an ``Answer``."""
    try:
        url, extensions = pinned_destination(url, headers)
    except DestinationRefused as exc:
        return Answer(None, f"not sent: {exc}"[:200], None)
    except (OSError, ValueError, httpx.InvalidURL):
        return Answer(None, "could not resolve the host", None)
    client = httpx.Client(timeout=timeout, follow_redirects=False)
    outcome = {}

    def send():
        try:
            with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer:
                outcome["answer"] = (answer.status_code, answer.headers.get("Retry-After"))
        except Exception as exc:  # noqa: BLE001 - mapped below, in the caller's thread
            outcome["error"] = exc

    sender = threading.Thread(target=send, name="promptledger-post", daemon=True)
    sender.start()
    sender.join(timeout)
    client.close()  # still sending past the deadline: its connection is closed under it
    if sender.is_alive() or not outcome:
        return Answer(None, f"timed out after {timeout:g} s", None)
    if "error" in outcome:
        return Answer(None, _failure(outcome["error"], timeout), None)
    code, retry_after = outcome["answer"]
    if 200 <= code < 300:
        return Answer(code, "", None)
    return Answer(code, f"HTTP {code}", retry_after)


def _failure(exc, timeout):
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return f"request failed ({type(exc).__name__})"
