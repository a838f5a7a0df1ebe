"""Per-provider limits: at most N requests in flight and at most R requests a minute.

asyncio primitives belong to the event loop they are used on, and a Celery task may call
``asyncio.run()`` again and again, so every limit (and every cached SDK client) is created lazily
for the running loop and forgotten with it. Limits therefore hold per event loop: two threads each
running their own loop each get the full allowance.

The rate limit is a token bucket refilled at R/60 tokens a second holding at most one second's
worth (so R=600 allows bursts of 10, then one request every 100 ms). Tokens may go into debt: a
caller reserves the next slot and sleeps until it, which keeps callers in arrival order without a
lock. A slot is taken per HTTP request, retries included, and only while the request is in flight:
backing off between attempts holds neither a concurrency slot nor a token.
"""

import asyncio
import math
import threading
import time
import weakref
from collections import deque
from contextlib import asynccontextmanager

from .base import provider_setting


class LoopLocal:
    """A dict per running event loop, dropped when the loop is garbage-collected."""

    def __init__(self):
        self._by_loop = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, key, factory):
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = self._by_loop.setdefault(loop, {})
            if key not in mine:
                mine[key] = factory()
            return mine[key]

    def pop_running_loop(self):
        """Forget this loop's values and return them (to close them)."""
        with self._lock:
            return list(self._by_loop.pop(asyncio.get_running_loop(), {}).values())

    def clear(self):
        with self._lock:
            self._by_loop.clear()


class TokenBucket:
    """Requests-per-minute: ``acquire()`` returns when the caller may send (0 rpm = unlimited)."""

    def __init__(self, rpm):
        self.rate = rpm / 60.0
        self.capacity = max(1, math.ceil(self.rate))
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()

    async def acquire(self):
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


class Slots:
    """At most ``n`` holders, the others served first come, first served; a released slot is handed
    straight to the longest waiter. Used instead of ``asyncio.Semaphore``, whose ``acquire`` in
    Python 3.11 scans every waiter on each call (``locked()``): with a run's lanes queued on a
    provider's limit that scan was a tenth of a worker's time in the provider call (issue 18)."""

    def __init__(self, n):
        self.free = n
        self.waiters = deque()

    async def acquire(self):
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter  # resolved by release(), which hands its slot over
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled before using it: pass it on
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise

    def release(self):
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class ProviderLimits:
    def __init__(self, concurrency, rpm):
        self.concurrency, self.rpm = concurrency, rpm
        self.slots = Slots(concurrency) if concurrency > 0 else None
        self.bucket = TokenBucket(rpm)

    @asynccontextmanager
    async def slot(self):
        """Hold one request slot: concurrency first, so a token is spent only when the request can go."""
        if self.slots is None:
            await self.bucket.acquire()
            yield
            return
        await self.slots.acquire()
        try:
            await self.bucket.acquire()
            yield
        finally:
            self.slots.release()


_limits = LoopLocal()


def limits_for(provider):
    """This loop's limits of ``provider``, as the settings say now (a changed setting gets fresh limits)."""
    concurrency = int(provider_setting(provider, "CONCURRENCY"))
    rpm = float(provider_setting(provider, "RPM"))
    return _limits.get((provider, concurrency, rpm), lambda: ProviderLimits(concurrency, rpm))


def reset():
    _limits.clear()
