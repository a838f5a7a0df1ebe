"""API rate limits: per token, per address for anonymous callers, and per address for bad tokens
(resolve included), each a 429 ``throttled`` with ``Retry-After``."""

from rest_framework.test import APIClient


def test_a_token_over_its_rate_is_throttled_with_retry_after(api_for, prompt, monkeypatch):
    from rest_framework.settings import api_settings

    monkeypatch.setattr(api_settings, "DEFAULT_THROTTLE_RATES", {"token": "3/min", "anon": "600/min"})
    client = api_for("viewer")
    statuses = [client.get("/api/v1/prompts/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/prompts/")
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0
    assert api_for("author").get("/api/v1/prompts/").status_code == 200  # another token, its own count


def test_guessing_tokens_is_throttled_per_address_on_resolve_and_the_api(api_for, prompt, settings):
    settings.PROMPTLEDGER_BAD_TOKEN_LIMIT = 3
    guesser = APIClient(REMOTE_ADDR="203.0.113.77")
    guesser.credentials(HTTP_AUTHORIZATION="Bearer pl_guess")
    resolve = "/api/v1/prompts/loan-letter/resolve?environment=production"
    assert [guesser.get(resolve).status_code for _ in range(3)] == [401, 401, 401]
    throttled = guesser.get(resolve)
    assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"
    assert "Retry-After" in throttled
    assert guesser.get("/api/v1/prompts/").status_code == 429
    honest = api_for("viewer")  # another address, a real token
    assert honest.get("/api/v1/prompts/").status_code == 200


def test_on_redis_a_window_is_one_counter_that_expires(settings):
    import uuid

    import redis

    from core import throttling
    from tests.conftest import need_service

    url = settings.CELERY_BROKER_URL if settings.CELERY_BROKER_URL.startswith("redis://") else "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
        reachable = True
    except redis.RedisError:
        reachable = False
    need_service("Redis", reachable, "redis-server --port 6379, or CELERY_BROKER_URL=redis://...")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                   "KEY_PREFIX": "promptledger-test"}}
    key = f"window-{uuid.uuid4().hex}"
    assert [throttling._count(key, 60) for _ in range(3)] == [1, 2, 3]
    client = redis.Redis.from_url(url)
    (stored,) = client.keys(f"*{key}")
    assert 55 <= client.ttl(stored) <= 61
    client.delete(stored)
