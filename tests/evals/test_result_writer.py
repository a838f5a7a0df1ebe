"""How a drive batches its results (``runner.driving._ResultWriter``): no database, a store that
records what it was asked to write."""

import asyncio

from evals.runner.driving import _ResultWriter


class Store:
    def __init__(self):
        self.batches, self.release = [], asyncio.Event()

    async def write_results(self, token, batch):
        self.batches.append([item for item, _ in batch])
        await self.release.wait()
        return len(batch)


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


def test_results_that_finish_during_a_write_wait_for_a_full_batch_or_the_linger():
    async def scenario():
        store = Store()
        writer = _ResultWriter(store, "w", batch_size=2, linger=60)
        writer.add("a", {})
        writer.add("b", {})
        await settle()
        assert store.batches == [["a", "b"]]  # a full batch goes at once
        writer.add("c", {})  # finishes while that batch is being written
        store.release.set()
        await settle()
        assert store.batches == [["a", "b"]]  # "c" alone does not make a statement of its own
        writer.add("d", {})
        await settle()
        assert store.batches == [["a", "b"], ["c", "d"]]
        writer.add("e", {})
        await writer.close()  # what is left goes at once
        return store.batches

    assert asyncio.run(scenario()) == [["a", "b"], ["c", "d"], ["e"]]


def test_a_lone_result_is_written_once_the_linger_has_passed():
    async def scenario():
        store = Store()
        store.release.set()
        writer = _ResultWriter(store, "w", batch_size=64, linger=0.01)
        writer.add("a", {})
        for _ in range(500):
            if store.batches:
                break
            await asyncio.sleep(0.01)
        batches = list(store.batches)
        await writer.close()
        return batches

    assert asyncio.run(scenario()) == [["a"]]


def test_lanes_held_back_for_room_have_what_waits_written_without_lingering():
    async def scenario():
        store = Store()
        store.release.set()
        writer = _ResultWriter(store, "w", batch_size=64, limit=2, linger=60)
        for name in "abc":
            writer.add(name, {})
        await asyncio.wait_for(writer.wait_for_room(), 5)  # a lane: more than 2 wait
        batches = list(store.batches)
        await writer.close()
        return batches

    assert asyncio.run(scenario()) == [["a", "b", "c"]]
