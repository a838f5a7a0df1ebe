"""Calling a model: ``await complete(provider=..., model=..., messages=...)`` → ``Completion``.

Guarantees, for the ``openai`` (and OpenAI-compatible) and ``anthropic`` providers: the official
SDKs' async clients; at most ``PROMPTLEDGER_PROVIDER_CONCURRENCY`` requests in flight and
``PROMPTLEDGER_PROVIDER_RPM`` a minute per provider and event loop (``limits``); no attempt
longer than the timeout; one retry policy (``retry``: 429, 408, 5xx, timeouts and lost
connections, honouring ``Retry-After``; never other 4xx); tokens and a cost from
``evals.pricing``; keys read from settings or the environment at each call and never put in a
result, a log line or an error message. Any failure is a ``ProviderError`` with a stable code.
The ``offline`` provider needs no key and no network and answers deterministically (``offline``).
"""

import dataclasses

from core import metrics
from evals import pricing

from . import anthropic_adapter, limits, offline, openai_adapter, retry
from .base import PROVIDERS, Completion, ProviderError, credentials, provider_setting

__all__ = ["Completion", "ProviderError", "aclose", "complete", "reset_limits"]

ADAPTERS = {"openai": openai_adapter, "anthropic": anthropic_adapter}


async def complete(
    *,
    provider: str,
    model: str,
    messages: list[dict],
    params: dict | None = None,
    response_schema: dict | None = None,
    timeout: float | None = None,
) -> Completion:
    """One completion of already-rendered ``messages`` (``[{"role", "content"}]``), retried and
    rate-limited as the module says. ``params`` are whitelisted per provider (temperature,
    max_tokens, top_p, stop, ...); an unknown one is a ``bad_request`` before anything is sent.
    ``timeout`` bounds each attempt (default ``PROMPTLEDGER_PROVIDER_TIMEOUT``), not the whole call:
    at worst a call takes (max_retries + 1) * timeout plus the waits between attempts.
    Every call is counted (``core.metrics``: calls, errors, retries, latency, tokens, cost)."""
    label = provider if provider in PROVIDERS else "unknown"
    try:
        completion = await _complete(provider, model, messages, params, response_schema, timeout)
    except ProviderError as error:
        metrics.provider_call_finished(provider=label, model=model, attempts=error.attempts, error_code=error.code)
        raise
    metrics.provider_call_finished(
        provider=label, model=model, attempts=completion.attempts, latency_seconds=completion.latency_ms / 1000,
        input_tokens=completion.input_tokens, output_tokens=completion.output_tokens, cost_usd=completion.cost_usd,
    )
    return completion


async def _complete(provider, model, messages, params, response_schema, timeout):
    if provider == "offline":
        return await offline.complete(model=model, messages=messages, response_schema=response_schema)
    adapter = ADAPTERS.get(provider)
    if adapter is None:
        raise ProviderError(
            f"unknown provider {provider!r} (known: openai, anthropic, offline)",
            code="unknown_provider",
            provider=provider,
        )
    request = adapter.build_request(model, messages, params, response_schema)
    api_key, base_url = credentials(provider)
    timeout = float(timeout or provider_setting(provider, "TIMEOUT"))
    provider_limits = limits.limits_for(provider)

    async def attempt_once():
        async with provider_limits.slot():
            return await adapter.send(
                request, api_key=api_key, base_url=base_url, timeout=timeout, response_schema=response_schema
            )

    completion, attempts = await retry.call_with_retries(
        attempt_once,
        max_retries=int(provider_setting(provider, "MAX_RETRIES")),
        base=float(provider_setting(provider, "BACKOFF_BASE")),
        cap=float(provider_setting(provider, "BACKOFF_MAX")),
    )
    # Priced by the pinned model id that was asked for; the served id (an alias may resolve to a
    # dated one) is the fallback.
    priced_as = model if pricing.is_priced(provider, model) else completion.model
    return dataclasses.replace(
        completion,
        attempts=attempts,
        cost_usd=pricing.cost(provider, priced_as, completion.input_tokens, completion.output_tokens),
    )


def reset_limits():
    """Forget every loop's limits and cached SDK clients (tests; after changing limit settings)."""
    limits.reset()
    openai_adapter.clients.clear()
    anthropic_adapter.clients.clear()


async def aclose():
    """Close the running loop's SDK clients (their pooled connections). Optional: call it at the end
    of the coroutine given to ``asyncio.run()`` to release sockets at once instead of at GC."""
    for client in openai_adapter.clients.pop_running_loop() + anthropic_adapter.clients.pop_running_loop():
        await client.close()
