"""The single retry policy of provider calls (the SDKs' own retries are switched off).

An attempt that fails with a retryable ``ProviderError`` (429, 408, 5xx, a timeout, a lost
connection) is tried again, up to ``max_retries`` more times; any other error (400, 401, 403,
404, 422, a bad parameter) is raised at once. Between attempts the caller waits what the
server's ``Retry-After`` (or ``retry-after-ms``) asked for, plus up to 10% jitter; without one, a
full-jitter exponential backoff: uniform(0, min(cap, base * 2**(attempt - 1))). A server asking
for a wait longer than the cap is not retried early: the call fails with that error instead.
The error raised in the end carries ``attempts``.
"""

import asyncio
import logging
import random
import time
from email.utils import parsedate_to_datetime

from .base import ProviderError

log = logging.getLogger(__name__)


def parse_retry_after(headers, now=None):
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP-date), or None."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error(provider, status, detail, headers=None):
    """The ``ProviderError`` for an HTTP error status: 429, 408 and 5xx are retryable, other 4xx never."""
    detail = " ".join(str(detail or "").split())[:300]
    message = f"{provider} answered HTTP {status}: {detail}" if detail else f"{provider} answered HTTP {status}"
    if status == 429:
        code = "rate_limited"
    elif status == 408:
        code = "timeout"
    elif status >= 500:
        code = "server_error"
    elif status in (401, 403):
        code = "auth"
    else:
        code = "bad_request"
    retryable = code in {"rate_limited", "timeout", "server_error"}
    return ProviderError(
        message,
        code=code,
        retryable=retryable,
        status=status,
        provider=provider,
        retry_after=parse_retry_after(headers) if retryable else None,
    )


def backoff_delay(attempt, base, cap, rng=random):
    """Full jitter: uniform over [0, min(cap, base * 2**(attempt - 1))]."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def delay_before_retry(error, attempt, base, cap, rng=random):
    """How long to wait after ``attempt`` failed with ``error``; None when the server's wait exceeds the cap."""
    if error.retry_after is not None:
        if error.retry_after > cap:
            return None
        return error.retry_after + rng.uniform(0, 0.1 * error.retry_after)
    return backoff_delay(attempt, base, cap, rng)


async def call_with_retries(attempt_once, *, max_retries, base, cap, sleep=asyncio.sleep):
    """``(result, attempts)`` of ``await attempt_once()``, retried as the module says."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await attempt_once(), attempt
        except ProviderError as error:
            error.attempts = attempt
            if not error.retryable or attempt > max_retries:
                raise
            delay = delay_before_retry(error, attempt, base, cap)
            if delay is None:
                error.message = f"{error.message} (asked to wait {error.retry_after:.1f}s, over the {cap:g}s cap)"
                error.args = (error.message,)
                raise
            log.info(
                "%s attempt %d failed (%s, %s); retrying in %.2fs",
                error.provider,
                attempt,
                error.code,
                error.status,
                delay,
            )
            await sleep(delay)
