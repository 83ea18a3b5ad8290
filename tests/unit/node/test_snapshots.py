"""The snapshot a node serves: prepared once per snapshot height on a worker thread, chunks read from the prepared
offer (never from the state again), the current offer served while the next is prepared."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.block import genesis_hash
from ledger.commitment import compute_commitment
from ledger.encoding import encode
from ledger.store import Head, Store
from node.snapshots import SnapshotServer
from p2p.snapshot import decode_chunk, decode_manifest, verify_chunk, verify_manifest
from tests.helpers.builders import make_network
from tests.unit.p2p.p2p_chains import certify, make_block

NET = make_network(4)
ENTRIES = {f"order/A-{i:07d}".encode(): encode({"qty": i, "sku": f"S-{i % 97}"}) for i in range(20_000)}
CHUNK_ENTRIES = 1_000


def load(store: Store, entries: dict[bytes, bytes], height: int) -> None:
    """Give `store` the certified state `entries` at `height`, as state sync would."""
    block = make_block(NET, height, genesis_hash(NET.genesis), [], state_root=compute_commitment(entries.items()))
    head = Head(height, block.hash(), block.header.state_root, block.header.timestamp_ms)
    store.load_state(iter(entries.items()), head, block, certify(NET, block))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "data")
    load(store, ENTRIES, 40)
    yield store
    store.close()


def test_chunks_come_from_the_prepared_offer_without_touching_the_state(store: Store) -> None:
    server = SnapshotServer(store, every=1, chunk_entries=CHUNK_ENTRIES, hold_s=3600)

    async def run() -> None:
        server.capture()
        offers = await asyncio.gather(*(server.current_offer() for _ in range(5)))
        assert len({id(offer) for offer in offers}) == 1 and server.prepared == 1, "prepared once for its height"
        offer = offers[0]
        assert offer is not None
        manifest = decode_manifest(offer.manifest_bytes())
        verify_manifest(NET.genesis, manifest)
        server.capture()  # a newer point lets the first point's store snapshot go: chunks no longer need it
        assert await server.current_offer() is offer and server.prepared == 1, "held: no second preparation"
        timings, got = [], {}
        for index in reversed(range(manifest.chunks)):
            started = time.perf_counter()
            data = await asyncio.to_thread(offer.chunk_bytes, index)
            timings.append((time.perf_counter() - started) * 1000)
            got[index] = decode_chunk(data)
        for index in range(manifest.chunks):
            assert verify_chunk(manifest, index, offer.chunk_bytes(index)) == got[index]
        assert sorted(entry for index in got for entry in got[index]) == sorted(ENTRIES.items())
        timings.sort()
        print(
            f"\nchunk of {CHUNK_ENTRIES} entries from a prepared offer of {len(ENTRIES)} entries, read last to "
            f"first: median {timings[len(timings) // 2]:.2f} ms, max {timings[-1]:.2f} ms"
        )

    try:
        asyncio.run(run())
    finally:
        server.close()


def test_the_next_offer_is_prepared_off_the_event_loop_while_the_current_one_is_served(store: Store) -> None:
    server = SnapshotServer(store, every=1, chunk_entries=CHUNK_ENTRIES, hold_s=0)
    preparing = threading.Event()
    release = threading.Event()
    build = server._build_offer

    def slow_build(point):  # type: ignore[no-untyped-def]
        if server.prepared:
            preparing.set()
            release.wait(10)
        return build(point)

    server._build_offer = slow_build  # type: ignore[method-assign]

    async def run() -> None:
        server.capture()
        first = await server.current_offer()
        newer = dict(ENTRIES) | {b"order/B-1": b"\x01"}
        load(store, newer, 41)
        server.capture()
        assert await server.current_offer() is first, "served while the next one is prepared"
        await asyncio.to_thread(preparing.wait, 10)
        ticks = 0
        while ticks < 5:  # the event loop runs while the worker prepares
            await asyncio.sleep(0.01)
            ticks += 1
        release.set()
        while server.prepared < 2:
            await asyncio.sleep(0.01)
        second = await server.current_offer()
        assert second is not None and second.manifest.height == 41 and second.manifest.entries == len(newer)
        with pytest.raises(IndexError):
            first.chunk_bytes(0)  # the replaced offer serves nothing more

    try:
        asyncio.run(run())
    finally:
        server.close()


def test_closing_stops_a_preparation_under_way(store: Store) -> None:
    server = SnapshotServer(store, every=1, chunk_entries=10)

    async def run() -> None:
        # the worker is held busy until after closing began, so the preparation is surely under way (queued) then
        busy = threading.Event()
        server._worker.submit(busy.wait)
        server.capture()
        task = asyncio.ensure_future(server.current_offer())
        await asyncio.sleep(0.05)
        threading.Timer(0.2, busy.set).start()
        server.close()
        assert await task is None

    asyncio.run(run())
