"""Evals fixtures: no test reaches a real provider, and ``fake_provider`` stands in for both.

Every test here gets base URLs pointing at a closed local port and fresh provider limits, so a
test that forgets the fake fails fast instead of calling the internet with a real key.
``fake_provider`` starts ``tests/evals/fake_provider.py`` on a free port, points both SDKs at it
with fake keys, and stops it after the test.
"""

import pytest

from evals.providers import reset_limits
from tests.evals.fake_provider import FakeProvider

FAKE_OPENAI_KEY = "sk-test-openai-0123456789abcdef"
FAKE_ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


@pytest.fixture(autouse=True)
def _no_real_providers(settings):
    settings.OPENAI_BASE_URL = NOWHERE + "/v1"
    settings.ANTHROPIC_BASE_URL = NOWHERE
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def fake_provider(settings):
    server = FakeProvider().start()
    settings.OPENAI_BASE_URL = server.openai_base_url
    settings.ANTHROPIC_BASE_URL = server.anthropic_base_url
    settings.OPENAI_API_KEY = FAKE_OPENAI_KEY
    settings.ANTHROPIC_API_KEY = FAKE_ANTHROPIC_KEY
    yield server
    server.stop()
