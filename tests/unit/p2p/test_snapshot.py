"""State sync: a certified snapshot is fetched in chunks, verified against the state root, and loaded."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p2p_chains import certify, make_block

from ledger.block import Block, CommitCertificate, genesis_hash
from ledger.commitment import compute_commitment, compute_path, compute_prefix
from ledger.encoding import encode
from ledger.errors import InvalidBlock
from ledger.state import MemoryState
from p2p.errors import InvalidSnapshot
from p2p.memory import MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.snapshot import (
    MAX_PREFIX_BITS,
    Manifest,
    SnapshotOffer,
    StateSync,
    decode_chunk,
    decode_manifest,
    encode_chunk,
    encode_manifest,
    verify_chunk,
    verify_manifest,
)
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
ENTRIES = {f"order/A-{i:06d}".encode(): encode({"qty": i, "sku": f"S-{i % 7}"}) for i in range(1000)}
Entries = list[tuple[bytes, bytes]]


def certified_state(entries: dict[bytes, bytes], height: int = 40) -> tuple[Block, CommitCertificate]:
    block = make_block(NET, height, genesis_hash(GENESIS), [], state_root=compute_commitment(entries.items()))
    return block, certify(NET, block)


BLOCK, CERT = certified_state(ENTRIES)


def offer(entries: dict[bytes, bytes] = ENTRIES, block: Block = BLOCK, cert: CommitCertificate = CERT) -> SnapshotOffer:
    return SnapshotOffer(MemoryState(dict(entries)), block, cert, chunk_entries=64)


class Tampered:
    """A peer whose snapshot is an honest one with chunk bodies or the manifest rewritten."""

    def __init__(
        self,
        honest: SnapshotOffer,
        chunk: Callable[[int, Entries], Entries] | None = None,
        manifest: Callable[[Manifest], Manifest] | None = None,
    ) -> None:
        self.honest, self.chunk, self.manifest = honest, chunk, manifest

    def manifest_bytes(self) -> bytes:
        if self.manifest is None:
            return self.honest.manifest_bytes()
        return encode_manifest(self.manifest(self.honest.manifest))

    def chunk_bytes(self, index: int) -> bytes:
        entries = self.honest.read_chunk(index)
        return encode_chunk(self.chunk(index, entries) if self.chunk else entries)


class Loader:
    def __init__(self) -> None:
        self.loaded: dict[bytes, bytes] | None = None
        self.block: Block | None = None

    def __call__(self, block: Block, certificate: CommitCertificate, entries: Iterator[tuple[bytes, bytes]]) -> None:
        self.block, self.loaded = block, dict(entries)


def run_state_sync(servers: dict[str, object], min_height: int = 0) -> tuple[Manifest | None, StateSync, Loader]:
    source = MemorySyncSource(MemoryNetwork(GENESIS), "node-3")
    source.snapshots.update(servers)  # type: ignore[arg-type]
    loader = Loader()
    sync = StateSync(GENESIS, source, PeerTable.from_genesis(GENESIS, "node-3"), loader)
    progress: list[tuple[int, int]] = []
    sync.progress = lambda done, total: progress.append((done, total))
    manifest = asyncio.run(sync.sync(min_height))
    if manifest is not None:
        assert progress[-1] == (manifest.chunks, manifest.chunks)
    return manifest, sync, loader


def test_loads_a_verified_snapshot() -> None:
    manifest, sync, loader = run_state_sync({"node-1": offer()})
    assert manifest is not None and manifest.height == 40 and manifest.entries == 1000
    assert manifest.chunks == 1 << manifest.prefix_bits == 32 and max(manifest.chunk_sizes) <= 64
    assert loader.loaded == ENTRIES and loader.block is not None and loader.block.hash() == BLOCK.hash()
    assert not sync.refused


def test_prefers_the_highest_certified_snapshot() -> None:
    newer = dict(ENTRIES) | {b"order/B-1": b"\x01"}
    block, cert = certified_state(newer, height=90)
    manifest, _, loader = run_state_sync({"node-0": offer(), "node-2": offer(newer, block, cert)})
    assert manifest is not None and manifest.height == 90 and loader.loaded == newer


def test_no_offer_or_only_old_offers_fall_back_to_none() -> None:
    assert run_state_sync({})[0] is None
    manifest, _, loader = run_state_sync({"node-0": offer()}, min_height=40)
    assert manifest is None and loader.loaded is None


def drop_last(index: int, entries: Entries) -> Entries:
    return entries[:-1] if index == 3 else entries


def change_value(index: int, entries: Entries) -> Entries:
    return [(k, b"\x00" + v) if index == 5 and n == 0 else (k, v) for n, (k, v) in enumerate(entries)]


def add_entry(index: int, entries: Entries) -> Entries:
    return [*entries, (entries[-1][0] + b"~", b"x")] if index == 0 else entries


def repeat_entry(index: int, entries: Entries) -> Entries:
    return [entries[0], *entries] if index == 2 else entries


def swap_values(index: int, entries: Entries) -> Entries:
    if index != 1:
        return entries
    (k0, v0), (k1, v1) = entries[0], entries[1]
    return [(k0, v1), (k1, v0), *entries[2:]]


TAMPERINGS: dict[str, Callable[[SnapshotOffer], Tampered]] = {
    "an entry dropped": lambda o: Tampered(o, chunk=drop_last),
    "a value changed": lambda o: Tampered(o, chunk=change_value),
    "an entry added": lambda o: Tampered(o, chunk=add_entry),
    "an entry repeated": lambda o: Tampered(o, chunk=repeat_entry),
    "two values swapped": lambda o: Tampered(o, chunk=swap_values),
    "a chunk out of order": lambda o: Tampered(o, chunk=lambda i, e: o.read_chunk(7) if i == 6 else e),
    "a lying manifest block": lambda o: Tampered(
        o, manifest=lambda m: dataclasses.replace(m, block=certified_state({}, 40)[0])
    ),
    "a certificate short of quorum": lambda o: Tampered(
        o,
        manifest=lambda m: dataclasses.replace(m, certificate=certify(NET, m.block, ("node-0", "node-1"))),
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
def test_tampered_snapshot_is_refused_and_an_honest_peer_used(how: str) -> None:
    alone, sync, loader = run_state_sync({"node-0": TAMPERINGS[how](offer())})
    assert alone is None and loader.loaded is None, how
    assert list(sync.refused) == ["node-0"] and sync.peers.get("node-0").marked_bad, how
    manifest, sync, loader = run_state_sync({"node-0": TAMPERINGS[how](offer()), "node-1": offer()})
    assert manifest is not None and loader.loaded == ENTRIES, how
    assert set(sync.refused) <= {"node-0"}, how


def test_only_tampered_snapshots_load_nothing() -> None:
    manifest, sync, loader = run_state_sync({"node-0": TAMPERINGS["a value changed"](offer())})
    assert manifest is None and loader.loaded is None and "subtree root" in sync.refused["node-0"]


def test_unreachable_peer_is_skipped() -> None:
    source = MemorySyncSource(MemoryNetwork(GENESIS), "node-3")
    source.snapshots["node-0"] = offer()
    source.network.partition(["node-0"])
    sync = StateSync(GENESIS, source, PeerTable.from_genesis(GENESIS, "node-3"), Loader())
    assert asyncio.run(sync.sync()) is None and sync.peers.get("node-0").errors == 1 and not sync.refused


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=120),
    chunk=st.integers(min_value=1, max_value=50),
    order=st.randoms(use_true_random=False),
)
def test_chunks_in_any_order_are_the_subtrees_at_the_least_depth_that_fits(
    size: int, chunk: int, order: random.Random
) -> None:
    entries = {b"k%04d" % i: b"v%d" % i for i in range(size)}
    snapshot = SnapshotOffer(MemoryState(entries), BLOCK, CERT, chunk_entries=chunk)
    manifest = snapshot.manifest
    indexes = list(range(manifest.chunks))
    order.shuffle(indexes)
    got = {index: decode_chunk(snapshot.chunk_bytes(index)) for index in indexes}
    assert sorted(entry for entries in got.values() for entry in entries) == sorted(entries.items())
    for index, chunk_entries in got.items():
        assert chunk_entries == sorted(chunk_entries) and len(chunk_entries) == manifest.chunk_sizes[index]
        assert all(compute_prefix(compute_path(key), manifest.prefix_bits) == index for key, _ in chunk_entries)
    bits, sizes = manifest.prefix_bits, manifest.chunk_sizes
    assert max(sizes) <= chunk or bits == MAX_PREFIX_BITS
    if bits:
        assert max(sizes[i] + sizes[i + 1] for i in range(0, len(sizes), 2)) > chunk, "no shallower depth fits"
    with pytest.raises(IndexError):
        snapshot.chunk_bytes(manifest.chunks)


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=120),
    chunk=st.integers(min_value=1, max_value=50),
    changed=st.integers(min_value=0),
    value=st.binary(max_size=8),
)
def test_chunk_roots_combine_to_the_state_root_and_catch_any_changed_entry(
    size: int, chunk: int, changed: int, value: bytes
) -> None:
    entries = {b"k%04d" % i: b"v%d" % i for i in range(size)}
    block, cert = certified_state(entries)
    snapshot = SnapshotOffer(MemoryState(entries), block, cert, chunk_entries=chunk)
    manifest = snapshot.manifest
    verify_manifest(GENESIS, manifest)
    for index in range(manifest.chunks):
        verify_chunk(manifest, index, snapshot.chunk_bytes(index))
    filled = [index for index, n in enumerate(manifest.chunk_sizes) if n]
    index = filled[changed % len(filled)]
    body = snapshot.read_chunk(index)
    key, old = body[changed % len(body)]
    if value != old:
        body[changed % len(body)] = (key, value)
        with pytest.raises(InvalidSnapshot, match="does not match its subtree root"):
            verify_chunk(manifest, index, encode_chunk(body))
    roots = list(manifest.chunk_roots)
    roots[index] = bytes([roots[index][0] ^ 1]) + roots[index][1:]
    with pytest.raises(InvalidSnapshot, match="do not combine"):
        verify_manifest(GENESIS, dataclasses.replace(manifest, chunk_roots=tuple(roots)))


def test_manifest_round_trip_and_inconsistent_manifests_refused() -> None:
    honest = offer().manifest
    assert decode_manifest(encode_manifest(honest)) == honest
    bad = [
        dataclasses.replace(honest, prefix_bits=honest.prefix_bits + 1),
        dataclasses.replace(honest, height=honest.height + 1),
        dataclasses.replace(honest, chunk_roots=honest.chunk_roots[:-1]),
        dataclasses.replace(honest, chunk_sizes=honest.chunk_sizes[:-1]),
    ]
    for manifest in bad:
        with pytest.raises(InvalidSnapshot):
            decode_manifest(encode_manifest(manifest))
    for junk in (b"\xc1", encode([1]), encode({"height": 1})):
        with pytest.raises(InvalidBlock):
            decode_manifest(junk)
    with pytest.raises(InvalidSnapshot):
        decode_chunk(encode([[b"k", 1]]))


def test_a_manifest_giving_an_empty_chunk_a_root_or_a_filled_one_none_is_refused() -> None:
    entries = {b"k%d" % i: b"v" for i in range(3)}
    block, cert = certified_state(entries)
    manifest = SnapshotOffer(MemoryState(entries), block, cert, chunk_entries=1).manifest
    verify_manifest(GENESIS, manifest)
    empty, filled = manifest.chunk_sizes.index(0), manifest.chunk_sizes.index(1)
    for index, root in ((empty, bytes([1]) * 32), (filled, bytes(32))):
        roots = list(manifest.chunk_roots)
        roots[index] = root
        with pytest.raises(InvalidSnapshot, match=f"chunk {index}: . entries cannot have the root"):
            verify_manifest(GENESIS, dataclasses.replace(manifest, chunk_roots=tuple(roots)))


class CountingLoader(Loader):
    """Counts the entries instead of keeping them, so that only state sync's own memory is measured."""

    def __call__(self, block: Block, certificate: CommitCertificate, entries: Iterator[tuple[bytes, bytes]]) -> None:
        self.block, self.count = block, sum(1 for _ in entries)


def test_chunks_wait_for_the_verdict_on_disk_not_in_memory() -> None:
    big = {f"order/B-{i:07d}".encode(): bytes(200) + i.to_bytes(4, "big") for i in range(40_000)}
    block, cert = certified_state(big)
    source = MemorySyncSource(MemoryNetwork(GENESIS), "node-3")
    source.snapshots["node-1"] = SnapshotOffer(MemoryState(big), block, cert, chunk_entries=1000)  # type: ignore[assignment]
    loader = CountingLoader()
    sync = StateSync(GENESIS, source, PeerTable.from_genesis(GENESIS, "node-3"), loader)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        manifest = asyncio.run(sync.sync())
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    snapshot_bytes = sum(len(k) + len(v) for k, v in big.items())
    assert manifest is not None and loader.count == len(big)
    assert peak < snapshot_bytes / 4, f"state sync held {peak} bytes for a {snapshot_bytes}-byte snapshot"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signed_by": "someone"}, "unknown field `signed_by`"),
        ({"prefix_bits": "1"}, r"Expected `int`, got `str` - at `\$.prefix_bits`"),
        ({"prefix_bits": 13}, r"Expected `int` <= 12 - at `\$.prefix_bits`"),
        ({"chunk_sizes": [-1]}, r"Expected `int` >= 0 - at `\$.chunk_sizes\[0\]`"),
        ({"chunk_roots": [b"short"]}, r"Expected `bytes` of length >= 32 - at `\$.chunk_roots\[0\]`"),
        ({"height": True}, r"Expected `int`, got `bool` - at `\$.height`"),
    ],
)
def test_a_manifest_with_an_unknown_field_or_a_wrong_type_is_refused_by_its_declared_shape(
    change: dict[str, object], message: str
) -> None:
    wire = offer().manifest.to_wire() | change
    with pytest.raises(InvalidSnapshot, match=message):
        decode_manifest(encode(wire))
