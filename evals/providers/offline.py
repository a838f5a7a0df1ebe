"""The offline provider: deterministic answers, no network, no key, no cost — for demos and tests.

- ``offline-judge-*`` grades like an LLM judge prompt expects (``evals.assertions.judge_messages``):
  ``{"score": s, "reasoning": "..."}`` where s is the share of the reference answer's words found in
  the graded answer (1 without a reference when the answer is not empty, 0 when it is empty).
- Every other model (``offline-echo-1`` ...) answers with the last user message, or the last system
  message when there is none, so ``contains`` assertions on rendered variables pass in demos.
- With a response schema, the answer is a JSON object holding every property the schema declares:
  strings get the echo text (an ``enum`` its first value), numbers 0, booleans false, arrays [] and
  objects {}; a schema that is not an object schema gets the echo text as a JSON string.

Parameters (temperature ...) are accepted and ignored. Tokens are estimated at four characters a
token; latency is ``PROMPTLEDGER_OFFLINE_LATENCY_MS`` (0 by default), slept and reported as it is,
so results are identical from run to run.
"""

import asyncio
import json
import re

from django.conf import settings

from .base import Completion, check_messages, estimate_tokens

_FENCED_ANSWER = re.compile(r"<(answer-[0-9a-f]+)>\n(.*)\n</\1>", re.DOTALL)
_REFERENCE = re.compile(r"<reference>\n(.*?)\n</reference>", re.DOTALL)
_WORD = re.compile(r"\w+")
_EMPTY_BY_TYPE = {"number": 0, "integer": 0, "boolean": False, "array": [], "object": {}, "null": None}


def _echo(messages):
    for role in ("user", "system"):
        for message in reversed(messages):
            if message["role"] == role:
                return message["content"]
    return messages[-1]["content"]


def _judge(messages):
    prompt = _echo(messages)
    fenced = _FENCED_ANSWER.search(prompt)
    answer = fenced.group(2) if fenced else prompt
    reference = _REFERENCE.search(prompt)
    if not answer.strip():
        score, why = 0.0, "the answer is empty"
    elif reference:
        wanted = set(_WORD.findall(reference.group(1).lower()))
        found = wanted & set(_WORD.findall(answer.lower()))
        score = round(len(found) / len(wanted), 2) if wanted else 1.0
        why = f"{len(found)} of {len(wanted)} reference words are in the answer"
    else:
        score, why = 1.0, "the answer is not empty (no reference to compare with)"
    return json.dumps({"score": score, "reasoning": f"offline judge: {why}"})


def _value_for(schema, echo):
    if not isinstance(schema, dict):
        return echo
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: _value_for(sub, echo) for name, sub in (schema.get("properties") or {}).items()}
    return _EMPTY_BY_TYPE.get(kind, echo)


def answer_text(model, messages, response_schema=None):
    """The deterministic answer of ``model`` to ``messages``."""
    if model.startswith("offline-judge"):
        return _judge(messages)
    echo = _echo(messages)
    if response_schema:
        return json.dumps(_value_for(response_schema, echo))
    return echo


async def complete(*, model, messages, response_schema=None):
    check_messages(messages)
    text = answer_text(model, messages, response_schema)
    latency_ms = float(getattr(settings, "PROMPTLEDGER_OFFLINE_LATENCY_MS", 0) or 0)
    if latency_ms > 0:
        await asyncio.sleep(latency_ms / 1000)
    return Completion(
        text=text,
        input_tokens=estimate_tokens("".join(m["content"] for m in messages)),
        output_tokens=estimate_tokens(text),
        latency_ms=latency_ms,
        cost_usd=0.0,
        model=model,
        attempts=1,
    )
