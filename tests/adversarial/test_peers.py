"""What one sync peer can send: answers nested past any bound, junk, oversized bodies, blocks whose tx
signatures were swapped. Each is refused with the ledger's error, the peer is marked, and neither block
sync nor the catch-up loop stops."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import httpx
import pytest
from hypothesis import given

from ledger.block import Block, CommitCertificate
from ledger.errors import InvalidBlock, LedgerError
from node.catchup import CatchUp
from p2p import sync as sync_module
from p2p.memory import MemoryChain, MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.snapshot import decode_chunk, decode_manifest
from p2p.sync import BlockSync, HttpSyncSource, SyncReport, decode_blocks, decode_status, encode_status, read_blocks
from tests.adversarial.hostile import deep_array, deep_map, hostile_bytes, hostile_values, wrap
from tests.helpers.builders import make_network
from tests.unit.p2p.p2p_chains import build_chain

NET = make_network(4)
GENESIS = NET.genesis
CHAIN = build_chain(NET, 6)


@given(hostile_bytes())
def test_peer_answer_decoders_raise_only_invalid_block(data: bytes) -> None:
    for decoder in (decode_status, decode_blocks, decode_manifest, decode_chunk):
        with contextlib.suppress(InvalidBlock):
            decoder(data)


@given(hostile_values())
def test_a_hostile_block_or_certificate_in_a_blocks_answer_is_invalid_block(value: bytes) -> None:
    block, cert = CHAIN[0]
    entry = {"block": block.to_wire(), "certificate": cert.to_wire()}
    for field in ("block", "certificate"):
        with contextlib.suppress(InvalidBlock):
            decode_blocks(b"\x91" + wrap(entry, field, value))


class Applier:
    def __init__(self) -> None:
        self.applied: list[Block] = []

    async def __call__(self, block: Block, certificate: CommitCertificate) -> None:
        self.applied.append(block)


def _http_sync(answers: dict[str, Any]) -> tuple[BlockSync, Applier, PeerTable]:
    """Peer `node-0` answers from `answers` (status and blocks bodies), `node-1` honestly."""
    honest = MemoryChain(CHAIN)

    def handler(request: httpx.Request) -> httpx.Response:
        peer, path = request.url.host, request.url.path
        if peer == "peer-0" and path in answers:
            return httpx.Response(200, content=answers[path])
        if path == "/p2p/status":
            return httpx.Response(200, content=encode_status(honest.height, CHAIN[-1][0].hash()))
        lo, hi = int(request.url.params["from"]), int(request.url.params["to"])
        return httpx.Response(200, content=read_blocks(honest, lo, hi))

    peers = PeerTable({"node-0": "http://peer-0", "node-1": "http://peer-1"})
    source = HttpSyncSource(peers, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    applier = Applier()
    return BlockSync(GENESIS, source, peers, applier), applier, peers


@pytest.mark.parametrize(
    "answers",
    [
        {"/p2p/status": deep_map(100_000)},
        {"/p2p/status": encode_status(10, b""), "/p2p/blocks": deep_array(100_000)},
        {"/p2p/status": encode_status(10, b""), "/p2p/blocks": b"\x91" + deep_map(600)},
        {"/p2p/status": encode_status(10, b""), "/p2p/blocks": b"\xdd\xff\xff\xff\xff"},
    ],
    ids=["deep-status", "deep-blocks", "deep-block", "huge-header"],
)
def test_a_poisoned_answer_costs_only_that_peer(answers: dict[str, bytes]) -> None:
    sync, applier, _peers = _http_sync(answers)
    report = asyncio.run(sync.sync(0))
    assert [block.height for block in applier.applied] == [1, 2, 3, 4, 5, 6]
    assert report.height == 6


def test_an_answer_longer_than_the_bound_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "MAX_ANSWER_BYTES", 64)
    sync, _applier, peers = _http_sync({"/p2p/status": b"\xc4\xff" + b"\x00" * 255})
    asyncio.run(sync.sync(0))
    assert "longer than 64 bytes" in (peers.get("node-0").last_error or "")


def test_a_block_whose_tx_signature_was_swapped_is_refused_and_its_peer_marked() -> None:
    block, cert = CHAIN[2]
    tx = block.txs[0]
    swapped = dataclasses.replace(tx, signature=bytes(64))
    forged = [*CHAIN[:2], (dataclasses.replace(block, txs=(swapped, *block.txs[1:])), cert), *CHAIN[3:]]
    network = MemoryNetwork(GENESIS)
    source = MemorySyncSource(network, "node-3")
    source.chains["node-0"] = MemoryChain(forged)
    applier = Applier()
    peers = PeerTable.from_genesis(GENESIS, "node-3")
    report = asyncio.run(BlockSync(GENESIS, source, peers, applier).sync(0))
    assert [b.height for b in applier.applied] == [1, 2]
    assert "tx root" in report.refused["node-0"]


class FailingOnceSync:
    """A block sync whose first status poll meets a peer error that escaped every check."""

    def __init__(self) -> None:
        self.polls = 0

    async def poll_status(self) -> dict[str, int]:
        self.polls += 1
        if self.polls == 1:
            raise LedgerError("a peer answer nobody expected")
        return {}

    async def sync(self, height: int, head_hash: bytes) -> SyncReport:
        return SyncReport(height, height, height)


def test_the_catch_up_loop_survives_a_failed_round(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("node.catchup.POLL_INTERVAL_S", 0.01)
    fake = FailingOnceSync()
    executor: Any = type("Executor", (), {"head": lambda self: (0, b"")})()
    catchup = CatchUp(executor, lambda apply: fake, lambda b, r: None, lambda h, c: None)  # type: ignore[arg-type,return-value]

    async def scenario() -> None:
        task = asyncio.create_task(catchup.run())
        while fake.polls < 3:
            await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()

    asyncio.run(scenario())
