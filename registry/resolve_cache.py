"""What resolve reads, kept in each process: token grants by key hash (user, scopes, expiry,
revoked, the user's teams and site roles) and pointers by (prompt slug, environment slug) (version,
canary, content hashes, kill switch). A cached resolve costs no query.

Staleness is bounded, and the bound does not rest on one mechanism:

- On PostgreSQL each process runs a listener thread (``LISTEN promptledger_resolve`` on a connection
  of its own). Triggers (registry/migrations/0004) send ``pg_notify`` in the transaction of every
  change that matters (a deploy, a kill switch, a token revoked, a membership or site role, a user
  deactivated), so the message leaves when the change commits and never after a rollback; the
  listener drops what it names. The cache is read only while its listener is connected, and emptied
  on every (re)connect, so nothing cached before a gap outlives it.
- Every entry also expires at most ``PROMPTLEDGER_RESOLVE_CACHE_SECONDS`` (30 s by default) after
  it was last read from the database: the safety net should a notification ever be lost. The
  listener re-reads every entry every third of that, two statements for the whole cache
  (``revalidate``), so a busy cache's entries are renewed without a query on the request path; an
  entry that differs from the database is dropped. Without a listener, entries are filled again on
  the request path when they expire, each lifetime drawn between half the TTL and all of it so
  that entries filled together (a warm-up, a restart) do not all expire in the same second.
  Without a listener (the embedded SQLite mode, or ``PROMPTLEDGER_RESOLVE_CACHE_LISTEN=false``)
  that TTL is the bound (1 s by default there).
- A fill whose query may have read the database before a change that was notified meanwhile is
  discarded: each fill carries the generation it started in, and every invalidation moves it on.
- Inside a transaction (a test's, or a request that wrote) the cache is neither read nor filled:
  that connection may see writes nobody else can yet.
"""

import logging
import os
import random
import threading
import time

from django.conf import settings
from django.db import connection, connections

from . import selectors

CHANNEL = "promptledger_resolve"
LISTENER_NAME = "promptledger-resolve-listener"
log = logging.getLogger(__name__)


def lifetime(seconds):
    """An entry's time to live: spread over [seconds / 2, seconds], never more than ``seconds``."""
    return seconds * (0.5 + random.random() / 2)  # noqa: S311 - spreading expiries, not a secret


class ResolveCache:
    """Callers and pointers with their deadlines, a generation and the listener that invalidates."""

    def __init__(self, max_entries=50_000):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker listens for itself

    def _reset(self):
        self._lock = threading.Lock()
        self._callers = {}  # key hash -> (ResolveCaller, deadline)
        self._pointers = {}  # (slug, environment) -> (ResolvePointer, deadline)
        self._by_user = {}  # user id -> key hashes, to drop a user's tokens
        self._by_prompt = {}  # prompt id -> pointer keys, to drop a prompt's pointers
        self.generation = 0
        self.live = False  # True while invalidations are being received (or the TTL alone is the bound)
        self._started = False
        self._stop = None
        self._listener = None

    # --- reading and filling ----------------------------------------------------------------------

    def usable(self):
        """Whether this request may read and fill the cache (and the listener is started)."""
        if settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS <= 0 or _this_threads_connection().in_atomic_block:
            return False
        if not self._started:
            self._start()
        return self.live

    def get(self, key_hash, slug, environment):
        """``(caller, pointer)`` when both are cached and fresh, else ``None``."""
        now = time.monotonic()
        caller = self._callers.get(key_hash)
        pointer = self._pointers.get((slug, environment))
        if caller is None or pointer is None or caller[1] <= now or pointer[1] <= now:
            return None
        return caller[0], pointer[0]

    def put(self, generation, key_hash, slug, environment, caller, pointer):
        """Keep what one query found, unless an invalidation came in since it started."""
        deadline = time.monotonic() + lifetime(settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS)
        with self._lock:
            if generation != self.generation or not self.live:
                return
            self._evict(self._callers)
            self._callers[key_hash] = (caller, deadline)
            self._by_user.setdefault(caller.user_id, set()).add(key_hash)
            if pointer.known:
                key = (slug, environment)
                self._evict(self._pointers)
                self._pointers[key] = (pointer, deadline)
                self._by_prompt.setdefault(pointer.prompt_id, set()).add(key)

    def _evict(self, entries):
        if len(entries) >= self.max_entries:  # the oldest fill goes (dicts keep insertion order)
            del entries[next(iter(entries))]

    # --- invalidating -----------------------------------------------------------------------------

    def invalidate(self, payload):
        """Drop what a notification names: ``t:<key hash>``, ``u:<user id>``, ``p:<prompt id>``, or ``*``."""
        kind, _, key = payload.partition(":")
        with self._lock:
            self.generation += 1
            if kind == "t":
                self._callers.pop(key, None)
            elif kind == "u" and key.isdigit():
                for key_hash in self._by_user.pop(int(key), ()):
                    self._callers.pop(key_hash, None)
            elif kind == "p" and key.isdigit():
                for pointer_key in self._by_prompt.pop(int(key), ()):
                    self._pointers.pop(pointer_key, None)
            else:
                self._clear()

    def clear(self):
        with self._lock:
            self.generation += 1
            self._clear()

    def _clear(self):
        self._callers, self._pointers, self._by_user, self._by_prompt = {}, {}, {}, {}

    def _set_live(self, live):
        with self._lock:
            self.generation += 1
            self._clear()
            self.live = live

    # --- revalidating -----------------------------------------------------------------------------

    def revalidate(self, raw):
        """Check every entry against the database in two statements on the listener's connection
        ``raw``: an entry still equal to its row lives another full TTL from the moment the rows
        were read, one that differs (or whose row is gone) is dropped. So, while the listener is
        connected, the safety net costs two queries a third of a TTL per process, not one query per
        entry on the request path each time an entry expires. An entry replaced or dropped while the
        statements ran (a notification, a fill) is left as it now is."""
        read_at = time.monotonic()
        with self._lock:
            callers, pointers = dict(self._callers), dict(self._pointers)
        fresh_callers = selectors.resolve_callers(raw, callers) if callers else {}
        fresh_pointers = selectors.resolve_pointers(raw, pointers) if pointers else {}
        deadline = read_at + settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS
        with self._lock:
            for key, entry in callers.items():
                if self._callers.get(key) is entry:
                    fresh = fresh_callers.get(key)
                    if fresh is not None and selectors.same_caller(fresh, entry[0]):
                        self._callers[key] = (entry[0], deadline)
                    else:
                        del self._callers[key]
            for key, entry in pointers.items():
                if self._pointers.get(key) is entry:
                    if fresh_pointers.get(key) == entry[0]:
                        self._pointers[key] = (entry[0], deadline)
                    else:
                        del self._pointers[key]

    # --- the listener -----------------------------------------------------------------------------

    def _start(self):
        with self._lock:
            if self._started:
                return
            self._started = True
            if not (settings.PROMPTLEDGER_RESOLVE_CACHE_LISTEN and connection.vendor == "postgresql"):
                self.live = True  # no notifications: the TTL alone bounds staleness
                return
            self._stop = threading.Event()
            self._listener = threading.Thread(
                target=self._listen, args=(self._stop,), name="resolve-cache-listener", daemon=True
            )
            self._listener.start()

    def stop(self):
        """Stop the listener and forget everything (tests; the next ``usable`` starts a new one)."""
        stop, listener = self._stop, self._listener
        if stop is not None:
            stop.set()
        if listener is not None:
            listener.join(timeout=10)
        self._set_live(False)
        self._started, self._stop, self._listener = False, None, None

    def _listen(self, stop):
        delay = 0.1
        while not stop.is_set():
            raw = None
            try:
                raw = _listening_connection()
                self._set_live(True)  # emptied on every (re)connect: nothing from before a gap survives
                delay = 0.1
                every = max(1.0, settings.PROMPTLEDGER_RESOLVE_CACHE_SECONDS / 3)
                due = time.monotonic() + every
                while not stop.is_set():
                    for note in raw.notifies(timeout=1.0):
                        self.invalidate(note.payload)
                    if time.monotonic() >= due:  # also shows a lost connection
                        self.revalidate(raw)
                        due = time.monotonic() + every
                    else:
                        raw.execute("SELECT 1")  # a lost connection shows here, not as a quiet notifies()
            except Exception:  # noqa: BLE001 - any failure: stop serving from memory, reconnect
                if not stop.is_set():
                    log.warning("resolve cache listener lost its connection; resolving from the database "
                                "until it is back", exc_info=True)
            finally:
                self._set_live(False)
                if raw is not None:
                    try:
                        raw.close()
                    except Exception:  # noqa: BLE001, S110 - already broken
                        pass
            stop.wait(delay)
            delay = min(delay * 2, 5.0)


def _listening_connection():
    """A psycopg connection of its own to the default database (tests' test database included),
    autocommit, LISTENing, with TCP keepalives so a silent network loss is noticed."""
    wrapper = connections.create_connection("default")
    params = wrapper.get_connection_params()
    params.update(keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                  application_name=LISTENER_NAME)  # how an operator finds it in pg_stat_activity
    params.setdefault("connect_timeout", 5)
    raw = wrapper.get_new_connection(params)
    raw.autocommit = True
    raw.execute(f"LISTEN {CHANNEL}")
    return raw


_thread = threading.local()


def _this_threads_connection():
    """The thread's default database connection (Django keeps one per thread for its life),
    remembered: ``django.db.connection`` finds it through asgiref's Local on every use."""
    wrapper = getattr(_thread, "wrapper", None)
    if wrapper is None:
        wrapper = _thread.wrapper = connections["default"]
    return wrapper


cache = ResolveCache()


def lookup_for_token(*, slug, environment, token_hash):
    """``selectors.resolve_lookup`` for a bearer token, from the cache when it holds both halves."""
    environment = environment or ""
    if not cache.usable():
        return selectors.resolve_lookup(slug=slug, environment=environment, token_hash=token_hash)
    hit = cache.get(token_hash, slug, environment)
    if hit is not None:
        return hit
    generation = cache.generation  # read before the query: see ResolveCache.put
    found = selectors.resolve_lookup(slug=slug, environment=environment, token_hash=token_hash)
    if found is not None:
        cache.put(generation, token_hash, slug, environment, *found)
    return found
