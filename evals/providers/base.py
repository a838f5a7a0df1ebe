"""What every adapter shares: the ``Completion`` it returns, the one ``ProviderError`` it raises,
where keys, base URLs and limits are looked up, and the scrubbing that keeps API keys out of
error messages.

Keys and base URLs are read when a call is made: a Django setting of that name (tests set them)
wins when it is not None, otherwise the process environment. They are passed to the SDK client and
nowhere else; a ``ProviderError``'s message has every configured key (and anything shaped like one)
replaced by ``[redacted]``.
"""

import functools
import os
import re
from dataclasses import dataclass

import aiohttp
import httpx2
from django.conf import settings

PROVIDERS = ("openai", "anthropic", "offline")

_CREDENTIALS = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
}
_DEFAULTS = {"CONCURRENCY": 32, "RPM": 600, "TIMEOUT": 60.0, "MAX_RETRIES": 4, "BACKOFF_BASE": 0.5, "BACKOFF_MAX": 20.0}
# Anything that looks like a provider key or a bearer credential, besides the configured keys.
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|(?i:bearer)\s+[A-Za-z0-9_\-\.=]{6,})")


@dataclass(frozen=True)
class Completion:
    """One answer of a model. ``latency_ms`` is the successful attempt's request time (waiting for a
    limit slot and backing off between attempts are not in it); ``attempts`` counts every request
    sent, that one included."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float
    model: str
    attempts: int


class ProviderError(Exception):
    """A provider call that failed, with a stable ``code``: ``rate_limited``, ``server_error``,
    ``timeout``, ``connection``, ``bad_request``, ``auth``, ``no_api_key``, ``unknown_provider``,
    ``bad_response``. ``retryable`` says whether trying again may help; ``status`` is the HTTP
    status when there was one; ``attempts`` how many requests were sent before giving up."""

    def __init__(self, message, *, code, retryable=False, status=None, retry_after=None, provider=None, attempts=0):
        message = redact(str(message))
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.provider = provider
        self.attempts = attempts

    def __repr__(self):
        return f"ProviderError({self.message!r}, code={self.code!r}, status={self.status!r})"


def no_answer(provider, exc, timeout, *, timed_out):
    """The ``ProviderError`` for an attempt that got no answer (``timed_out``: the SDK said it was a
    timeout): ``timeout`` or ``connection``, both retryable. The innermost cause has the last word,
    because the SDKs' aiohttp transport reports a refused or dropped connection as a timeout."""
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, OSError | aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
        timed_out = False  # aiohttp's own timeouts are TimeoutErrors (and connection errors) too
    elif isinstance(cause, TimeoutError):
        timed_out = True
    if timed_out:
        return ProviderError(
            f"{provider} did not answer within {timeout:g}s", code="timeout", retryable=True, provider=provider
        )
    return ProviderError(
        f"{provider} connection failed: {type(cause).__name__}", code="connection", retryable=True, provider=provider
    )


@functools.cache
def tls_context():
    """The TLS context of every SDK client in this process, made as the SDKs' HTTP clients make
    their own (the system's trust store, ``SSL_CERT_FILE`` honoured) but once: reading the CA bundle
    takes ~40 ms, and a worker makes new clients for each task (clients belong to an event loop)."""
    return httpx2.create_ssl_context()


def secret(name):
    """A credential or base URL: the Django setting when it is not None, else the environment."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, "")
    return value or ""


def credentials(provider):
    """``(api_key, base_url or None)`` for a network provider; ProviderError ``no_api_key`` without a key."""
    key_name, url_name = _CREDENTIALS[provider]
    api_key = secret(key_name)
    if not api_key:
        raise ProviderError(f"{key_name} is not set (environment or settings)", code="no_api_key", provider=provider)
    return api_key, secret(url_name) or None


def provider_setting(provider, name):
    """A limit for one provider: ``PROMPTLEDGER_PROVIDER_OVERRIDES[provider][name]`` when set,
    else ``PROMPTLEDGER_PROVIDER_<name>``, else the built-in default."""
    overrides = getattr(settings, "PROMPTLEDGER_PROVIDER_OVERRIDES", None) or {}
    value = (overrides.get(provider) or {}).get(name)
    if value is None:
        value = getattr(settings, f"PROMPTLEDGER_PROVIDER_{name}", None)
    return _DEFAULTS[name] if value is None else value


def redact(text):
    """``text`` with every configured API key, and anything shaped like a key, replaced."""
    for key_name, _ in _CREDENTIALS.values():
        key = secret(key_name)
        if key and len(key) >= 4:
            text = text.replace(key, "[redacted]")
    return _KEY_SHAPES.sub("[redacted]", text)


def estimate_tokens(text):
    """A rough token count (four characters a token) where a server reports none."""
    return (len(text) + 3) // 4


def check_messages(messages):
    """Rendered messages must be a non-empty list of ``{"role": str, "content": str}``."""
    if not isinstance(messages, list) or not messages:
        raise ProviderError("messages must be a non-empty list", code="bad_request")
    for index, message in enumerate(messages):
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise ProviderError(f"message {index} is not {{'role': str, 'content': str}}", code="bad_request")


def pick_params(provider, params, allowed, renames=None):
    """The whitelisted parameters, renamed for the wire; ProviderError ``bad_request`` names any other."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ProviderError(
            f"unsupported parameter(s) for {provider}: {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})",
            code="bad_request",
            provider=provider,
        )
    renames = renames or {}
    return {renames.get(name, name): value for name, value in params.items() if value is not None}
