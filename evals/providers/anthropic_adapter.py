"""Anthropic's Messages API through the official async SDK.

System messages are joined into the ``system`` parameter; a conversation of system messages only
is sent as one user message instead (the API needs at least one). ``max_tokens``, which the API
requires, defaults to ``PROMPTLEDGER_PROVIDER_MAX_TOKENS``. A response schema is an instruction
appended to the system prompt, and the JSON object is cut out of the answer (code fences and
chatter dropped); an answer holding no JSON object is returned as it came, for the case's
``json_schema`` assertion to fail. One client per (event loop, base URL, key), SDK retries off, on
the SDK's aiohttp transport (as the OpenAI adapter, for the CPU it saves a request).
"""

import asyncio
import hashlib
import json
import time

import anthropic
from django.conf import settings

from .base import Completion, ProviderError, check_messages, no_answer, pick_params, tls_context
from .limits import LoopLocal
from .retry import status_error

PROVIDER = "anthropic"
ALLOWED_PARAMS = {"temperature", "top_p", "top_k", "max_tokens", "stop", "stop_sequences"}
SDK_KWARGS = {"model", "messages", "max_tokens", "system", "stop_sequences"}
SCHEMA_INSTRUCTION = (
    "Reply with one JSON object and nothing else (no prose, no code fence). "
    "It must validate against this JSON schema:\n{schema}"
)

clients = LoopLocal()


def _client(api_key, base_url):
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()
    return clients.get(
        (base_url, fingerprint),
        lambda: anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            http_client=anthropic.DefaultAioHttpClient(verify=tls_context()),
        ),
    )


def build_request(model, messages, params=None, response_schema=None):
    """The Messages API body (without transport options); ProviderError on bad input."""
    check_messages(messages)
    picked = pick_params(PROVIDER, params, ALLOWED_PARAMS, renames={"stop": "stop_sequences"})
    if isinstance(picked.get("stop_sequences"), str):
        picked["stop_sequences"] = [picked["stop_sequences"]]
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
    if not turns:
        turns, system = [{"role": "user", "content": "\n\n".join(system)}], []
    if response_schema:
        system.append(SCHEMA_INSTRUCTION.format(schema=json.dumps(response_schema, sort_keys=True)))
    request = {
        "model": model,
        "messages": turns,
        "max_tokens": int(getattr(settings, "PROMPTLEDGER_PROVIDER_MAX_TOKENS", 1024)),
        **picked,
    }
    if system:
        request["system"] = "\n\n".join(system)
    return request


def json_object_text(text):
    """The first JSON object in ``text`` as written there, or ``text`` unchanged when there is none."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            found, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(found, dict):
            return text[start:end]
        start = text.find("{", end)
    return text


async def send(request, *, api_key, base_url, timeout, response_schema=None):
    """One attempt: a ``Completion`` with ``attempts=1`` and ``cost_usd=0`` (the caller fills both in)."""
    client = _client(api_key, base_url)
    # This SDK has keyword arguments for some body fields only; the sampling ones (temperature,
    # top_p, top_k), which older models still take, travel in extra_body, on the wire all the same.
    kwargs = {name: value for name, value in request.items() if name in SDK_KWARGS}
    extra = {name: value for name, value in request.items() if name not in SDK_KWARGS}
    started = time.perf_counter()
    response, failure = None, None
    try:
        async with asyncio.timeout(timeout):
            response = await client.messages.create(**kwargs, extra_body=extra or None, timeout=timeout)
    except (TimeoutError, anthropic.APITimeoutError) as exc:
        failure = no_answer(PROVIDER, exc, timeout, timed_out=True)
    except anthropic.APIStatusError as exc:
        failure = status_error(
            PROVIDER, exc.status_code, getattr(exc, "api_message", None) or exc.message, exc.response.headers
        )
    except anthropic.APIConnectionError as exc:
        failure = no_answer(PROVIDER, exc, timeout, timed_out=False)
    except anthropic.AnthropicError as exc:
        failure = ProviderError(
            f"{PROVIDER} answer unreadable: {type(exc).__name__}", code="bad_response", provider=PROVIDER
        )
    if failure is not None:  # raised outside the handler: the SDK's error, whose body may quote a key, is not kept
        raise failure
    latency_ms = (time.perf_counter() - started) * 1000
    text = "".join(block.text for block in response.content if getattr(block, "type", None) == "text")
    if response_schema:
        text = json_object_text(text)
    usage = response.usage
    return Completion(
        text=text,
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        latency_ms=latency_ms,
        cost_usd=0.0,
        model=response.model or request["model"],
        attempts=1,
    )
