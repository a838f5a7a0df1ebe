"""OpenAI, and any server speaking its chat-completions API (vLLM, Ollama, LiteLLM ...), through
the official async SDK.

One ``AsyncOpenAI`` client per (event loop, base URL, key), with the SDK's retries off: the
caller's retry policy is the only one. Its transport is the SDK's aiohttp client (the ``aiohttp``
extra): the same SDK over the same HTTP, for about a fifth less CPU a request than httpx's, which
is what a worker keeping dozens of requests in flight spends its time on. An attempt never
outlives ``timeout`` seconds, whatever the server trickles. A response schema becomes
``response_format`` (``json_schema``, not strict, so ordinary schemas are accepted). SDK errors
become ``ProviderError``s without the request's headers.
"""

import asyncio
import hashlib
import time

import openai

from .base import Completion, ProviderError, check_messages, estimate_tokens, no_answer, pick_params, tls_context
from .limits import LoopLocal
from .retry import status_error

PROVIDER = "openai"
ALLOWED_PARAMS = {
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
}

clients = LoopLocal()


def _client(api_key, base_url):
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()
    return clients.get(
        (base_url, fingerprint),
        lambda: openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(verify=tls_context()),
        ),
    )


def build_request(model, messages, params=None, response_schema=None):
    """The chat-completions body (without transport options); ProviderError on bad input."""
    check_messages(messages)
    request = {
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        **pick_params(PROVIDER, params, ALLOWED_PARAMS),
    }
    if response_schema:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": response_schema, "strict": False},
        }
    return request


async def send(request, *, api_key, base_url, timeout, response_schema=None):
    """One attempt: a ``Completion`` with ``attempts=1`` and ``cost_usd=0`` (the caller fills both in)."""
    client = _client(api_key, base_url)
    started = time.perf_counter()
    response, failure = None, None
    try:
        async with asyncio.timeout(timeout):
            response = await client.chat.completions.create(**request, timeout=timeout)
    except (TimeoutError, openai.APITimeoutError) as exc:
        failure = no_answer(PROVIDER, exc, timeout, timed_out=True)
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        failure = status_error(PROVIDER, exc.status_code, body.get("message") or exc.message, exc.response.headers)
    except openai.APIConnectionError as exc:
        failure = no_answer(PROVIDER, exc, timeout, timed_out=False)
    except openai.OpenAIError as exc:
        failure = ProviderError(
            f"{PROVIDER} answer unreadable: {type(exc).__name__}", code="bad_response", provider=PROVIDER
        )
    if failure is not None:  # raised outside the handler: the SDK's error, whose body may quote a key, is not kept
        raise failure
    latency_ms = (time.perf_counter() - started) * 1000
    if not response.choices:
        raise ProviderError(f"{PROVIDER} answered with no choices", code="bad_response", provider=PROVIDER)
    message = response.choices[0].message
    text = message.content or getattr(message, "refusal", None) or ""
    usage = response.usage
    if usage is not None:
        input_tokens, output_tokens = usage.prompt_tokens or 0, usage.completion_tokens or 0
    else:  # some compatible servers report no usage
        input_tokens = estimate_tokens("".join(m["content"] for m in request["messages"]))
        output_tokens = estimate_tokens(text)
    return Completion(
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
        cost_usd=0.0,
        model=response.model or request["model"],
        attempts=1,
    )
