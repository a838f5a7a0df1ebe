"""The provider adapters drive the real openai and anthropic SDKs against a local fake server:
answers, usage and cost; retries on 429 (honouring Retry-After), 5xx and timeouts, never on other
4xx; concurrency and rate limits; keys kept out of errors and results; the offline provider."""

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jsonschema
import pytest

from evals import pricing, providers
from evals.assertions import parse_judgement
from evals.providers import retry
from tests.evals.conftest import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY
from tests.evals.fake_provider import error, hang, ok, rate_limited, server_error

MESSAGES = [{"role": "system", "content": "You write letters."}, {"role": "user", "content": "Greet Ada."}]
MODELS = {"openai": "gpt-4o-mini-2024-07-18", "anthropic": "claude-3-5-haiku-20241022"}
KEYS = {"openai": FAKE_OPENAI_KEY, "anthropic": FAKE_ANTHROPIC_KEY}
both_providers = pytest.mark.parametrize("provider", ["openai", "anthropic"])
# The anthropic SDK warns that the pinned claude-3-5 models are deprecated; the wire is the same.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def quick_policy(settings):
    """Real policy, small numbers: tests finish in seconds."""
    settings.PROMPTLEDGER_PROVIDER_MAX_RETRIES = 2
    settings.PROMPTLEDGER_PROVIDER_BACKOFF_BASE = 0.01
    settings.PROMPTLEDGER_PROVIDER_BACKOFF_MAX = 1.0
    settings.PROMPTLEDGER_PROVIDER_TIMEOUT = 3.0
    settings.PROMPTLEDGER_PROVIDER_RPM = 0
    settings.PROMPTLEDGER_PROVIDER_CONCURRENCY = 32
    settings.PROMPTLEDGER_PROVIDER_OVERRIDES = {}


def run(coro):
    """Run on a fresh event loop, as a Celery task does, and close the SDK clients after."""

    async def main():
        try:
            return await coro
        finally:
            await providers.aclose()

    return asyncio.run(main())


def call(provider, **kwargs):
    kwargs.setdefault("model", MODELS.get(provider, "m"))
    kwargs.setdefault("messages", MESSAGES)
    return providers.complete(provider=provider, **kwargs)


def failure(coro):
    with pytest.raises(providers.ProviderError) as caught:
        run(coro)
    return caught.value


# --- answers, usage, cost ------------------------------------------------------------------------

def test_openai_answer_has_text_tokens_cost_from_the_table_and_one_attempt(fake_provider):
    fake_provider.script(ok("Dear Ada,", input_tokens=1000, output_tokens=500))
    completion = run(call("openai", params={"temperature": 0, "max_tokens": 50}))
    assert completion.text == "Dear Ada,"
    assert (completion.input_tokens, completion.output_tokens, completion.attempts) == (1000, 500, 1)
    assert completion.cost_usd == pytest.approx(pricing.cost("openai", MODELS["openai"], 1000, 500))
    assert completion.cost_usd == pytest.approx(1000 * 0.15 / 1e6 + 500 * 0.60 / 1e6)
    assert completion.model == MODELS["openai"] and completion.latency_ms > 0
    (request,) = fake_provider.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0 and request.body["max_tokens"] == 50


def test_anthropic_answer_sends_system_apart_and_reports_usage_and_cost(fake_provider):
    fake_provider.script(ok("Dear Ada,", input_tokens=2000, output_tokens=100))
    completion = run(call("anthropic", params={"temperature": 0.2, "stop": "END", "top_k": 5}))
    assert completion.text == "Dear Ada,"
    assert (completion.input_tokens, completion.output_tokens, completion.attempts) == (2000, 100, 1)
    assert completion.cost_usd == pytest.approx(2000 * 0.80 / 1e6 + 100 * 4.00 / 1e6)
    (request,) = fake_provider.requests
    assert request.path == "/v1/messages" and "anthropic-version" in request.headers
    sent_key = request.headers.get("x-api-key") or request.headers["authorization"].removeprefix("Bearer ")
    assert sent_key == FAKE_ANTHROPIC_KEY
    assert request.body["system"] == "You write letters."
    assert request.body["messages"] == [{"role": "user", "content": "Greet Ada."}]
    assert request.body["max_tokens"] == 1024 and request.body["stop_sequences"] == ["END"]
    assert request.body["top_k"] == 5


def test_anthropic_conversation_of_system_messages_only_is_sent_as_a_user_turn(fake_provider):
    run(call("anthropic", messages=[{"role": "system", "content": "Write to Ada."}]))
    body = fake_provider.requests[0].body
    assert body["messages"] == [{"role": "user", "content": "Write to Ada."}] and "system" not in body


def test_unsupported_parameter_is_refused_before_anything_is_sent(fake_provider):
    err = failure(call("openai", params={"temperature": 0, "logit_bias": {}}))
    assert err.code == "bad_request" and "logit_bias" in str(err) and not err.retryable
    assert fake_provider.requests == []


def test_response_schema_is_openai_json_schema_format(fake_provider):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fake_provider.script(ok('{"name": "Ada"}'))
    completion = run(call("openai", response_schema=schema))
    assert json.loads(completion.text) == {"name": "Ada"}
    response_format = fake_provider.requests[0].body["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["schema"] == schema


def test_response_schema_on_anthropic_is_an_instruction_and_the_json_is_cut_out(fake_provider):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    fake_provider.script(ok('Here you go:\n```json\n{"name": "Ada"}\n```'))
    completion = run(call("anthropic", response_schema=schema))
    assert completion.text == '{"name": "Ada"}'
    system = fake_provider.requests[0].body["system"]
    assert system.startswith("You write letters.") and json.dumps(schema, sort_keys=True) in system


# --- retries -------------------------------------------------------------------------------------

@both_providers
def test_rate_limited_call_waits_for_retry_after_then_succeeds(fake_provider, provider):
    fake_provider.script(rate_limited(retry_after=0.3), ok("after the wait"))
    completion = run(call(provider))
    assert completion.text == "after the wait" and completion.attempts == 2
    first, second = fake_provider.requests
    assert second.at - first.at >= 0.3


def test_retry_after_longer_than_the_cap_fails_at_once_instead_of_retrying_early(fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_BACKOFF_MAX = 0.5
    fake_provider.script(rate_limited(retry_after=30))
    started = time.monotonic()
    err = failure(call("openai"))
    assert err.code == "rate_limited" and err.retryable and err.status == 429 and err.attempts == 1
    assert "cap" in str(err) and time.monotonic() - started < 2


@both_providers
def test_server_error_is_retried_then_succeeds(fake_provider, provider):
    fake_provider.script(server_error(500), server_error(503), ok("third time"))
    completion = run(call(provider))
    assert completion.text == "third time" and completion.attempts == 3
    assert len(fake_provider.requests) == 3


@both_providers
def test_repeated_server_errors_give_up_after_max_attempts(fake_provider, provider):
    fake_provider.script(*[server_error()] * 3, ok("too late"))
    err = failure(call(provider))
    assert (err.code, err.status, err.retryable, err.attempts) == ("server_error", 500, True, 3)
    assert len(fake_provider.requests) == 3


@pytest.mark.parametrize("status, code", [(400, "bad_request"), (401, "auth"), (404, "bad_request"),
                                          (422, "bad_request")])
def test_client_errors_are_not_retried(fake_provider, status, code):
    fake_provider.script(error(status, "no such thing"), ok("never asked"))
    err = failure(call("openai"))
    assert (err.code, err.status, err.retryable, err.attempts) == (code, status, False, 1)
    assert "no such thing" in str(err) and len(fake_provider.requests) == 1


@both_providers
def test_slow_answer_beyond_the_timeout_is_a_timeout_then_a_retry(fake_provider, provider):
    fake_provider.script(hang(10), ok("quick this time"))
    started = time.monotonic()
    # A timeout with room for a busy machine (CI runs beside other work): only the hang exceeds it.
    completion = run(call(provider, timeout=1.5))
    assert completion.text == "quick this time" and completion.attempts == 2
    assert time.monotonic() - started < 8


def test_server_that_never_answers_in_time_ends_in_a_timeout_error(fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_MAX_RETRIES = 1
    fake_provider.script(hang(10), hang(10))
    err = failure(call("anthropic", timeout=0.2))
    assert (err.code, err.retryable, err.attempts) == ("timeout", True, 2)


def test_refused_connection_is_retried_then_reported(settings):
    settings.OPENAI_API_KEY = FAKE_OPENAI_KEY  # the base URL is a closed local port (conftest)
    err = failure(call("openai"))
    assert (err.code, err.retryable, err.attempts) == ("connection", True, 3)


# --- limits --------------------------------------------------------------------------------------

def test_concurrency_limit_caps_requests_in_flight(fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_OVERRIDES = {"openai": {"CONCURRENCY": 2}}
    fake_provider.delay = 0.15

    async def six():
        return await asyncio.gather(*(call("openai") for _ in range(6)))

    assert len(run(six())) == 6
    assert fake_provider.max_in_flight == 2 and len(fake_provider.requests) == 6


def test_sixty_four_slow_calls_are_in_flight_together_under_a_limit_of_64(fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_CONCURRENCY = 64
    fake_provider.delay = 0.5

    async def many():
        return await asyncio.gather(*(call(p) for p in ["openai", "anthropic"] * 32))

    started = time.monotonic()
    assert len(run(many())) == 64
    assert fake_provider.max_in_flight == 64 and time.monotonic() - started < 3


def test_requests_per_minute_limit_spaces_requests(fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_RPM = 300  # 5 a second, bursts of 5

    async def eight():
        return await asyncio.gather(*(call("openai") for _ in range(8)))

    started = time.monotonic()
    run(eight())
    assert time.monotonic() - started >= 3 / 5 - 0.02  # the 3 beyond the burst went 0.2 s apart
    arrivals = sorted(r.at for r in fake_provider.requests)
    assert arrivals[4] - arrivals[0] < 0.4  # the burst went at once, not 0.2 s apart
    assert arrivals[7] - arrivals[5] >= 2 / 5 - 0.05


def test_limits_belong_to_each_event_loop_so_repeated_asyncio_run_works(fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_CONCURRENCY = 1
    settings.PROMPTLEDGER_PROVIDER_RPM = 6000

    async def two():
        return await asyncio.gather(call("openai"), call("anthropic"))

    for _ in range(3):  # a worker's tasks, each with its own asyncio.run()
        assert [c.attempts for c in run(two())] == [1, 1]
    assert len(fake_provider.requests) == 6


# --- keys ----------------------------------------------------------------------------------------

@both_providers
def test_api_key_reaches_the_server_but_never_an_error_or_a_result(fake_provider, provider):
    key = KEYS[provider]
    fake_provider.script(error(401, f"Incorrect API key provided: {key}."), ok("fine"))
    err = failure(call(provider))
    assert err.code == "auth" and not err.retryable
    assert key not in str(err) and key not in repr(err) and key not in err.message
    assert err.__cause__ is None and err.__context__ is None  # the SDK's error, quoting the body, is not kept
    completion = run(call(provider))
    assert key not in repr(completion)
    assert all(key in json.dumps(r.headers) for r in fake_provider.requests)


@both_providers
def test_missing_key_is_no_api_key_and_nothing_is_sent(fake_provider, settings, monkeypatch, provider):
    name = f"{provider.upper()}_API_KEY"
    setattr(settings, name, None)
    monkeypatch.delenv(name, raising=False)
    err = failure(call(provider))
    assert err.code == "no_api_key" and name in str(err) and not err.retryable
    assert fake_provider.requests == []


def test_key_is_read_from_the_environment_at_call_time(fake_provider, settings, monkeypatch):
    settings.OPENAI_API_KEY = None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-42")
    run(call("openai"))
    assert fake_provider.requests[0].headers["authorization"] == "Bearer sk-from-the-environment-42"


def test_unknown_provider_is_refused():
    err = failure(call("mystery", model="m"))
    assert err.code == "unknown_provider" and not err.retryable


# --- offline -------------------------------------------------------------------------------------

def test_offline_echoes_the_last_user_message_deterministically_without_key_or_network(settings):
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = ""
    first = run(call("offline", model="offline-echo-1"))
    again = run(call("offline", model="offline-echo-1"))
    assert first == again and first.text == "Greet Ada."
    assert (first.cost_usd, first.attempts, first.latency_ms) == (0.0, 1, 0.0)
    assert first.input_tokens == (len("You write letters.Greet Ada.") + 3) // 4
    system_only = run(call("offline", model="offline-echo-1", messages=[{"role": "system", "content": "Hi Ada"}]))
    assert system_only.text == "Hi Ada"


def test_offline_answer_to_a_response_schema_validates():
    schema = {"type": "object", "required": ["name", "tone", "age", "ok"], "properties": {
        "name": {"type": "string"}, "tone": {"enum": ["warm", "cold"]}, "age": {"type": "integer"},
        "ok": {"type": "boolean"}}}
    completion = run(call("offline", model="offline-echo-1", response_schema=schema))
    answer = json.loads(completion.text)
    jsonschema.validate(answer, schema)
    assert answer["name"] == "Greet Ada." and answer["tone"] == "warm"


def test_offline_judge_answers_a_parseable_judgement():
    from evals.assertions import judge_messages

    messages = judge_messages("Is it a greeting?", "Hello Ada, welcome", "Hello Ada")
    score, reasoning = parse_judgement(run(call("offline", model="offline-judge-1", messages=messages)).text)
    assert score == 1.0 and reasoning.startswith("offline judge")
    messages = judge_messages("Is it a greeting?", "Goodbye", "Hello Ada")
    assert parse_judgement(run(call("offline", model="offline-judge-1", messages=messages)).text)[0] == 0.0


# --- pricing and the retry policy's arithmetic ---------------------------------------------------

def test_unknown_model_costs_zero_and_says_so_once(caplog):
    assert pricing.is_priced("anthropic", "claude-3-5-sonnet-20241022")
    assert pricing.cost("anthropic", "claude-3-5-sonnet-20241022", 1_000_000, 1_000_000) == pytest.approx(18.0)
    with caplog.at_level(logging.WARNING, logger="evals.pricing"):
        assert pricing.cost("openai", "llama-3-local-test", 10, 10) == 0.0
        assert pricing.cost("openai", "llama-3-local-test", 10, 10) == 0.0
    assert not pricing.is_priced("openai", "llama-3-local-test")
    assert len([r for r in caplog.records if "llama-3-local-test" in r.getMessage()]) == 1


def test_retry_after_is_read_as_seconds_milliseconds_or_an_http_date():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    in_ten = format_datetime(now + timedelta(seconds=10), usegmt=True)
    assert retry.parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert retry.parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry.parse_retry_after({"retry-after": in_ten}, now=now.timestamp()) == pytest.approx(10)
    assert retry.parse_retry_after({"retry-after": "soon"}) is None
    assert retry.parse_retry_after({}) is None


def test_backoff_is_full_jitter_capped():
    delays = [retry.backoff_delay(attempt, 0.5, 4.0) for attempt in range(1, 8) for _ in range(50)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert all(retry.backoff_delay(1, 0.5, 4.0) <= 0.5 for _ in range(50))
