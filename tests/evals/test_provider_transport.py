"""The SDKs' HTTP transport as the adapters set it up (the SDKs' aiohttp client, one TLS context a
process): a connection that fails is a ``connection`` error, retried, and never mistaken for a
timeout; a slow answer still is a timeout; clients made on one event loop after another share the
TLS context instead of each reading the CA bundle again."""

import asyncio

import pytest

from evals import providers
from evals.providers import anthropic_adapter, base, openai_adapter
from tests.evals.fake_provider import drop, hang, ok

MESSAGES = [{"role": "user", "content": "Greet Ada."}]
MODELS = {"openai": "gpt-4o-mini-2024-07-18", "anthropic": "claude-3-5-haiku-20241022"}
both_providers = pytest.mark.parametrize("provider", ["openai", "anthropic"])
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True)
def quick_policy(settings):
    settings.PROMPTLEDGER_PROVIDER_MAX_RETRIES = 2
    settings.PROMPTLEDGER_PROVIDER_BACKOFF_BASE = 0.01
    settings.PROMPTLEDGER_PROVIDER_BACKOFF_MAX = 1.0
    settings.PROMPTLEDGER_PROVIDER_TIMEOUT = 1.0
    settings.PROMPTLEDGER_PROVIDER_RPM = 0
    settings.PROMPTLEDGER_PROVIDER_OVERRIDES = {}


def run(provider):
    async def main():
        try:
            return await providers.complete(provider=provider, model=MODELS[provider], messages=MESSAGES)
        finally:
            await providers.aclose()

    return asyncio.run(main())


@both_providers
def test_a_dropped_connection_is_a_connection_error_retried_then_reported(provider, fake_provider):
    fake_provider.script(drop(), drop(), drop())
    with pytest.raises(providers.ProviderError) as caught:
        run(provider)
    assert (caught.value.code, caught.value.retryable, caught.value.attempts) == ("connection", True, 3)
    assert "did not answer" not in str(caught.value)


@both_providers
def test_a_dropped_connection_then_an_answer_succeeds_on_the_retry(provider, fake_provider):
    fake_provider.script(drop(), ok("Dear Ada,"))
    completion = run(provider)
    assert (completion.text, completion.attempts) == ("Dear Ada,", 2)


@both_providers
def test_an_answer_slower_than_the_timeout_is_still_a_timeout(provider, fake_provider, settings):
    settings.PROMPTLEDGER_PROVIDER_MAX_RETRIES = 0
    fake_provider.script(hang(3))
    with pytest.raises(providers.ProviderError) as caught:
        run(provider)
    assert caught.value.code == "timeout"


def test_clients_on_successive_event_loops_share_one_tls_context(fake_provider):
    for provider in ("openai", "anthropic", "openai"):
        assert run(provider).text == "Greet Ada."
    assert base.tls_context() is base.tls_context()

    async def contexts():
        made = [openai_adapter._client("sk-x", fake_provider.openai_base_url),
                anthropic_adapter._client("sk-x", fake_provider.anthropic_base_url)]
        try:
            return {id(client._client._transport.ssl_context) for client in made}
        finally:
            await providers.aclose()

    assert asyncio.run(contexts()) == {id(base.tls_context())}
