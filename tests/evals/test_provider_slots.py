"""The providers' concurrency limit (``evals.providers.limits.Slots``): at most n holders, waiters
served in arrival order, and a cancelled waiter neither keeps nor loses a slot."""

import asyncio

import pytest

from evals.providers.limits import ProviderLimits, Slots


def run(coroutine):
    return asyncio.run(coroutine)


def test_at_most_n_hold_a_slot_and_waiters_are_served_in_arrival_order():
    async def main():
        slots, held, most, order = Slots(3), 0, 0, []

        async def caller(i):
            nonlocal held, most
            await slots.acquire()
            order.append(i)
            held += 1
            most = max(most, held)
            await asyncio.sleep(0.001)
            held -= 1
            slots.release()

        await asyncio.gather(*(caller(i) for i in range(20)))
        return slots, most, order

    slots, most, order = run(main())
    assert most == 3
    assert order == list(range(20))  # first come, first served
    assert (slots.free, len(slots.waiters)) == (3, 0)


def test_a_cancelled_waiter_neither_keeps_nor_loses_a_slot():
    async def main():
        slots = Slots(1)
        await slots.acquire()
        waiting = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        waiting.cancel()  # cancelled while it waits
        with pytest.raises(asyncio.CancelledError):
            await waiting
        handed = asyncio.ensure_future(slots.acquire())
        await asyncio.sleep(0)
        slots.release()  # hands the slot to `handed` ...
        handed.cancel()  # ... which is cancelled before it runs: the slot goes back
        with pytest.raises(asyncio.CancelledError):
            await handed
        return slots

    slots = run(main())
    assert (slots.free, len(slots.waiters)) == (1, 0)


def test_a_slot_is_released_when_the_request_fails():
    async def main():
        limits = ProviderLimits(concurrency=2, rpm=0)
        for _ in range(5):
            with pytest.raises(RuntimeError):
                async with limits.slot():
                    raise RuntimeError("the provider call failed")
        return limits

    limits = run(main())
    assert limits.slots.free == 2
