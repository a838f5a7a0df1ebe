"""The resolve cache and the fast path in this process: a notification leaves only when a change
commits; a fill that raced an invalidation is not kept; a cached resolve costs no query and still
records the token's use; inside a transaction the cache is left alone; the fast path answers what
the whole middleware chain answers, and steps aside for what it does not know; the WSGI layer answers
from memory what Django would answer, with the same access line and counts, and hands the rest to
Django."""

import contextlib
import gc
import io
import json
import logging
import time
import weakref

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from config.metrics import exposition
from config.resolve_path import ResolveFastPathMiddleware, ResolveFromMemory
from core import auth, throttling
from core.actors import Actor
from core.logs import JsonFormatter
from registry.models import APIToken, Environment
from registry.resolve_cache import CHANNEL, ResolveCache, cache
from registry.selectors import ResolveCaller, ResolvePointer
from registry.services import issue_token, revoke_token, set_deployment, set_kill_switch
from tests.conftest import need_service
from tests.test_metrics import value
from tests.worker import wait_for

URL = "/api/v1/prompts/loan-letter/resolve"
FAST_PATH = "config.resolve_path.ResolveFastPathMiddleware"


def resolve(client, **extra):
    return client.get(URL, {"environment": "production"}, **extra)


@pytest.fixture
def deployed(cast, prompt, version):
    production = Environment.objects.get(slug="production")
    set_deployment(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, version=version)
    return version


@pytest.fixture
def token(cast):
    return issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["prompts:read"])


@pytest.fixture
def reader(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token[1]}")
    return client


@pytest.fixture
def caching(settings):
    """The cache on in this process, its listener connected (the conftest stops it after the test)."""
    settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS = 60
    wait_for(cache.usable, timeout=10, interval=0.02, message="the resolve cache's listener")
    return cache


@pytest.fixture
def listener(transactional_db):
    need_service("PostgreSQL", connection.vendor == "postgresql", "set DATABASE_URL=postgres://...")
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                         password=db["PASSWORD"] or None, dbname=db["NAME"], autocommit=True) as raw:
        raw.execute(f"LISTEN {CHANNEL}")
        yield raw


def notifications_until(raw, payload):
    """Every payload received up to and including ``payload`` (with a deadline)."""
    seen, deadline = [], time.monotonic() + 10
    while time.monotonic() < deadline:
        for note in raw.notifies(timeout=0.2):
            seen.append(note.payload)
            if note.payload == payload:
                return seen
    raise TimeoutError(f"no {payload!r} notification; saw {seen}")


def test_a_change_notifies_when_it_commits_and_a_rolled_back_one_never(listener, cast, prompt, version):
    owner, production = Actor(user=cast["owner"]), Environment.objects.get(slug="production")
    set_deployment(actor=owner, prompt=prompt, environment=production, version=version)
    assert f"p:{prompt.pk}" in notifications_until(listener, f"p:{prompt.pk}")

    with pytest.raises(RuntimeError), transaction.atomic():
        set_kill_switch(actor=owner, prompt=prompt, environment=production, disabled=True, reason="rolled back")
        raise RuntimeError("roll back")
    # A later committed change arrives after anything the rollback could have sent.
    marker, _ = issue_token(actor=Actor.for_system(), user=cast["viewer"], scopes=["audit:read"])
    revoke_token(actor=Actor(user=cast["viewer"]), token=marker)
    seen = notifications_until(listener, f"t:{marker.key_hash}")
    assert seen == [f"t:{marker.key_hash}"], seen


def test_a_fill_that_raced_an_invalidation_is_not_kept(settings):
    settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS = 60
    settings.PROMPTLEDGER_RESOLVE_CACHE_LISTEN = False
    mine = ResolveCache()
    caller = ResolveCaller(token=APIToken(pk=1, scopes=["prompts:read"]), revoked=False, expires_at=None, user_id=7,
                           user_active=True, user_superuser=False, reads_everything=False, team_ids=frozenset({3}))
    pointer = ResolvePointer(5, 3, 1, 10, None, None, False, "", "a" * 64, None)
    mine._start()  # no listener: live at once
    started = mine.generation
    mine.invalidate("p:5")  # the change commits while the query that read the old row is running
    mine.put(started, "hash", "loan-letter", "production", caller, pointer)
    assert mine.get("hash", "loan-letter", "production") is None
    mine.put(mine.generation, "hash", "loan-letter", "production", caller, pointer)
    assert mine.get("hash", "loan-letter", "production") == (caller, pointer)
    mine.invalidate("u:7")  # the user's membership changed: their tokens go, the pointer stays
    assert mine.get("hash", "loan-letter", "production") is None
    assert mine._pointers


def test_entries_filled_together_expire_spread_over_the_second_half_of_the_ttl(settings, monkeypatch):
    """The safety-net TTL is a bound (no entry outlives it) and entries filled in the same second
    (a warm-up, a restart) do not all go back to the database in the same second."""
    settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS = 30
    settings.PROMPTLEDGER_RESOLVE_CACHE_LISTEN = False
    mine = ResolveCache()
    mine._start()
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    caller = ResolveCaller(token=APIToken(pk=1, scopes=["prompts:read"]), revoked=False, expires_at=None, user_id=7,
                           user_active=True, user_superuser=False, reads_everything=False, team_ids=frozenset({3}))
    for n in range(400):
        pointer = ResolvePointer(n, 3, 1, 10, None, None, False, "", "a" * 64, None)
        mine.put(mine.generation, "hash", f"p{n}", "production", caller, pointer)
    deadlines = [deadline - 1000.0 for _, deadline in mine._pointers.values()]
    assert 15.0 <= min(deadlines) and max(deadlines) <= 30.0
    assert max(deadlines) - min(deadlines) > 10.0  # spread, not one instant
    now[0] += 30.0
    assert all(mine.get("hash", f"p{n}", "production") is None for n in range(400))


def test_revalidation_renews_what_still_holds_and_drops_what_a_lost_notification_left_stale(
    listener, settings, cast, prompt, deployed, token, monkeypatch
):
    """The listener's revalidation (two statements for the whole cache, on its own connection): the
    safety net for a notification that never came, without a query on the request path."""
    from registry import selectors

    settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS = 30
    settings.PROMPTLEDGER_RESOLVE_CACHE_LISTEN = False
    mine = ResolveCache()
    mine._start()
    _, raw_token = token
    other = issue_token(actor=Actor.for_system(), user=cast["author"], scopes=["prompts:read"])
    for key_hash in (token[0].key_hash, other[0].key_hash):
        found = selectors.resolve_lookup(slug="loan-letter", environment="production", token_hash=key_hash)
        mine.put(mine.generation, key_hash, "loan-letter", "production", *found)
    missing = selectors.resolve_lookup(slug="no-such-prompt", environment="production", token_hash=token[0].key_hash)
    mine.put(mine.generation, token[0].key_hash, "no-such-prompt", "production", *missing)  # not kept: unknown
    now = [time.monotonic() + 25]  # 25 s later: without renewal the entries would have at most 5 s left
    monkeypatch.setattr(time, "monotonic", lambda: now[0])

    mine.revalidate(listener)  # nothing changed: every entry lives a whole TTL again
    assert all(deadline == now[0] + 30 for _, deadline in [*mine._callers.values(), *mine._pointers.values()])
    assert mine.get(token[0].key_hash, "loan-letter", "production") is not None

    with connection.cursor() as cursor:  # changes whose notifications never come: the triggers off
        cursor.execute("ALTER TABLE registry_deployment DISABLE TRIGGER registry_deployment_resolve_changed")
        cursor.execute("ALTER TABLE registry_apitoken DISABLE TRIGGER registry_apitoken_resolve_changed")
    try:
        set_kill_switch(actor=Actor(user=cast["owner"]), prompt=prompt,
                        environment=Environment.objects.get(slug="production"), disabled=True, reason="incident 13")
        revoke_token(actor=Actor(user=cast["author"]), token=other[0])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE registry_deployment ENABLE ALWAYS TRIGGER registry_deployment_resolve_changed")
            cursor.execute("ALTER TABLE registry_apitoken ENABLE ALWAYS TRIGGER registry_apitoken_resolve_changed")
    assert mine.get(other[0].key_hash, "loan-letter", "production") is not None  # stale until revalidated
    mine.revalidate(listener)
    assert ("loan-letter", "production") not in mine._pointers  # the kill switch: dropped
    assert other[0].key_hash not in mine._callers  # the revoke: dropped
    assert token[0].key_hash in mine._callers  # unchanged: kept
    assert selectors.same_caller(mine._callers[token[0].key_hash][0], missing[0])


@pytest.mark.django_db(transaction=True)
def test_a_cached_resolve_costs_no_query_and_still_records_the_tokens_use(
    postgres, caching, deployed, token, reader, django_assert_num_queries
):
    assert resolve(reader).status_code == 200  # fills the cache (and writes last_used_at)
    etag = resolve(reader)["ETag"]
    with django_assert_num_queries(0):
        assert resolve(reader).status_code == 200
        assert resolve(reader, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert APIToken.objects.get(pk=token[0].pk).last_used_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_kill_switch_in_this_process_is_seen_by_its_own_cache(postgres, caching, cast, prompt, deployed, reader):
    assert resolve(reader).status_code == 200
    production = Environment.objects.get(slug="production")
    set_kill_switch(actor=Actor(user=cast["owner"]), prompt=prompt, environment=production, disabled=True,
                    reason="incident 12")
    wait_for(lambda: resolve(reader).status_code == 423, timeout=10, interval=0.01, message="the kill switch")


def test_inside_a_transaction_the_cache_is_neither_read_nor_filled(
    settings, deployed, reader, django_assert_num_queries
):
    settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS = 60
    assert connection.in_atomic_block and not cache.usable()
    resolve(reader)
    with django_assert_num_queries(1):
        assert resolve(reader).status_code == 200
    assert not cache._callers and not cache._pointers


def _without_fast_path():
    return override_settings(MIDDLEWARE=[name for name in settings.MIDDLEWARE if name != FAST_PATH])


@pytest.mark.parametrize("case", ["200", "304", "401", "404", "423", "400"])
def test_the_fast_path_answers_what_the_whole_chain_answers(case, cast, prompt, deployed, reader):
    if case == "423":
        set_kill_switch(actor=Actor(user=cast["owner"]), prompt=prompt,
                        environment=Environment.objects.get(slug="production"), disabled=True, reason="incident")
    if case == "401":
        reader.credentials(HTTP_AUTHORIZATION="Bearer pl_not-a-token")
    extra = {"HTTP_IF_NONE_MATCH": f'"{deployed.content_hash}"'} if case == "304" else {}
    path = "/api/v1/prompts/no-such-prompt/resolve" if case == "404" else URL
    query = {} if case == "400" else {"environment": "production"}

    def answer():
        response = reader.get(path, query, **extra)
        headers = {k: v for k, v in response.headers.items() if k not in ("X-Request-ID",)}
        body = response.json() if response.content else None
        if body is not None and "request_id" in body:
            body["request_id"] = "..."
        return response.status_code, headers, body

    fast = answer()
    with _without_fast_path():
        whole = answer()
    assert fast == whole
    assert str(fast[0]) == case


def test_the_fast_path_answers_a_token_resolve_without_the_rest_of_the_chain(deployed, token, rf):
    passed_on = []
    middleware = ResolveFastPathMiddleware(lambda request: passed_on.append(request))
    request = rf.get(URL, {"environment": "production"}, HTTP_AUTHORIZATION=f"Bearer {token[1]}")
    response = middleware(request)
    assert response.status_code == 200 and not passed_on
    assert request.resolver_match.view_name == "registry-api:resolve"  # what the metrics and the access line read


@pytest.mark.parametrize("kind", ["session", "basic", "bearerish", "nul", "post", "body", "host"])
def test_what_the_fast_path_does_not_answer_goes_down_the_chain(kind, deployed, token, rf):
    passed_on = []
    middleware = ResolveFastPathMiddleware(lambda request: passed_on.append(request))
    auth = {
        "session": {}, "basic": {"HTTP_AUTHORIZATION": "Basic YTpi"},
        "bearerish": {"HTTP_AUTHORIZATION": f"Bearerx {token[1]}"},
        "host": {"HTTP_AUTHORIZATION": f"Bearer {token[1]}", "HTTP_HOST": "evil.example"},
    }.get(kind, {"HTTP_AUTHORIZATION": f"Bearer {token[1]}"})
    if kind == "post":
        request = rf.post(URL, {}, **auth)
    elif kind == "body":
        request = rf.generic("GET", URL, b"x" * 10, **auth)
    else:
        request = rf.get(URL, {"environment": "production\x00" if kind == "nul" else "production"}, **auth)
    middleware(request)
    assert passed_on == [request]


def test_an_unknown_middleware_after_it_turns_the_fast_path_off():
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, "somewhere.NewMiddleware"]), \
            pytest.raises(MiddlewareNotUsed):
        ResolveFastPathMiddleware(lambda request: None)


# --- ResolveFromMemory: the WSGI layer ahead of Django's handler ------------------------------------


class Through:
    """``ResolveFromMemory`` around Django's real WSGI handler, noting what reached Django."""

    def __init__(self):
        self.django, self.reached = WSGIHandler(), []  # get_wsgi_application would set logging up anew

        def django(environ, start_response):
            self.reached.append(environ["PATH_INFO"])
            return self.django(environ, start_response)

        self.app = ResolveFromMemory(django)

    def get(self, rf, path=URL, query="environment=production", method="GET", data="", **extra):
        """``(status, headers, body, reached Django)`` of one request through the WSGI layer."""
        request = rf.generic(method, f"{path}?{query}" if query else path, data, **extra)
        started = []
        before = len(self.reached)
        chunks = self.app(request.environ, lambda status, headers, exc_info=None: started.append((status, headers)))
        body = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()  # as the server does: Django's request_finished
        status, headers = started[0]
        return status, dict(headers), body, len(self.reached) > before


def test_the_wsgi_layer_follows_the_settings_and_is_let_go_with_its_instance():
    from django.core.signals import setting_changed

    def listening():
        alive = (receiver() if isinstance(receiver, weakref.ref) else receiver  # a strong one is held as is
                 for _, receiver, *_ in setting_changed.receivers)
        return [getattr(r, "__self__", None) for r in alive]

    layer = ResolveFromMemory(WSGIHandler())
    assert layer._on and layer in listening()
    with override_settings(MIDDLEWARE=[name for name in settings.MIDDLEWARE if name != FAST_PATH]):
        assert not layer._on
    assert layer._on
    gone = weakref.ref(layer)
    del layer
    gc.collect()
    assert gone() is None  # the signal did not keep it


def _same_but_the_request_id(one, other):
    (status, headers, body, _), (status2, headers2, body2, _) = one, other
    assert headers.pop("X-Request-ID") != headers2.pop("X-Request-ID")
    assert (status, headers, body) == (status2, headers2, body2)


@pytest.mark.django_db(transaction=True)
def test_a_resolve_held_in_memory_is_answered_ahead_of_django_as_django_answers_it(
    postgres, caching, deployed, token, rf, django_assert_num_queries
):
    through, bearer = Through(), {"HTTP_AUTHORIZATION": f"Bearer {token[1]}"}
    by_django = through.get(rf, **bearer)  # fills the cache and records the token's use
    assert by_django[0] == "200 OK" and by_django[3]
    with django_assert_num_queries(0):
        from_memory = through.get(rf, **bearer)
    assert not from_memory[3]
    _same_but_the_request_id(by_django, from_memory)
    assert from_memory[1]["Content-Type"] == "application/json" and "Content-Security-Policy" in from_memory[1]

    etag = {"HTTP_IF_NONE_MATCH": from_memory[1]["ETag"], **bearer}
    not_modified = through.get(rf, **etag)  # the first 304 teaches the headers of a 304
    assert not_modified[0] == "304 Not Modified" and not_modified[3]
    again = through.get(rf, **etag)
    assert again[0] == "304 Not Modified" and not again[3] and again[2] == b""
    _same_but_the_request_id(not_modified, again)
    head = through.get(rf, method="HEAD", **bearer)
    assert head[0] == "200 OK" and not head[3]


@contextlib.contextmanager
def access_lines():
    """The access lines written meanwhile, as the JSON formatter writes them (read after the block)."""
    stream, logger = io.StringIO(), logging.getLogger("promptledger.request")
    handler, level = logging.StreamHandler(stream), logger.level
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    lines = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


@pytest.mark.django_db(transaction=True)
def test_a_resolve_from_memory_writes_the_access_line_and_the_counts_django_would(
    postgres, caching, deployed, token, rf
):
    through, bearer = Through(), {"HTTP_AUTHORIZATION": f"Bearer {token[1]}"}
    through.get(rf, **bearer)  # fills the cache
    before = exposition().decode()
    with access_lines() as lines:
        auth._last_written.clear()  # the token's use is due: Django's fast path answers and records it
        by_django = through.get(rf, **bearer)
        from_memory = through.get(rf, **bearer)
    after = exposition().decode()
    assert by_django[3] and not from_memory[3]
    django_line, memory_line = lines
    assert django_line.pop("request_id") == by_django[1]["X-Request-ID"]
    assert memory_line.pop("request_id") == from_memory[1]["X-Request-ID"]
    for line in (django_line, memory_line):
        line.pop("duration_ms"), line.pop("time")
        line["message"] = line["message"].split(" in ")[0]
    assert memory_line == django_line
    assert memory_line["token_id"] == token[0].pk and memory_line["route"] == "registry-api:resolve"
    counted = value(after, "promptledger_http_requests_total", route="registry-api:resolve", method="GET",
                    status="200") - value(before, "promptledger_http_requests_total", route="registry-api:resolve",
                                          method="GET", status="200")
    assert counted == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", [
    "unknown token", "kill switch", "use due", "host", "escaped query", "no environment", "post", "body",
    "session", "other path", "off", "guessing",
])
def test_what_memory_does_not_hold_goes_to_django(
    kind, postgres, caching, cast, prompt, deployed, token, rf, settings, monkeypatch
):
    through, bearer = Through(), {"HTTP_AUTHORIZATION": f"Bearer {token[1]}"}
    through.get(rf, **bearer)
    assert through.get(rf, **bearer)[3] is False  # held in memory now
    if kind == "kill switch":
        set_kill_switch(actor=Actor(user=cast["owner"]), prompt=prompt,
                        environment=Environment.objects.get(slug="production"), disabled=True, reason="incident")
        wait_for(lambda: through.get(rf, **bearer)[0].startswith("423"), timeout=10, interval=0.01,
                 message="the kill switch")
    if kind == "use due":
        auth._last_written.clear()
    if kind == "guessing":  # this address is refused for guessing tokens (this minute and the next)
        for now in (time.time(), time.time() + throttling.BAD_TOKEN_WINDOW):
            window = int(now // throttling.BAD_TOKEN_WINDOW)
            monkeypatch.setitem(throttling._blocked, f"throttle_bad_token_127.0.0.1_{window}", True)
    if kind == "off":
        settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != FAST_PATH]
    request = {
        "unknown token": dict(HTTP_AUTHORIZATION="Bearer pl_not-a-token"),
        "host": dict(HTTP_HOST="evil.example", **bearer),
        "escaped query": dict(query="environment=production&unit=a%20b", **bearer),
        "no environment": dict(query="", **bearer),
        "post": dict(method="POST", **bearer),
        "body": dict(data=b"x", **bearer),
        "session": {},
        "other path": dict(path="/api/v1/prompts/a.b/resolve", **bearer),
    }.get(kind, bearer)
    status, _, _, reached = through.get(rf, **request)
    assert reached, status
    assert status.split()[0] == {
        "unknown token": "401", "kill switch": "423", "host": "400", "no environment": "400", "post": "405",
        "session": "401", "other path": "404", "guessing": "429",
    }.get(kind, "200")
