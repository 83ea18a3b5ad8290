"""Block sync over the memory network: certified blocks applied in order, forgeries refused and the peer marked."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import httpx
import pytest
from p2p_chains import build_chain, certify, make_block

from ledger.block import Block, CommitCertificate, genesis_hash
from ledger.errors import InvalidBlock
from p2p.memory import MemoryChain, MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.sync import (
    BlockSync,
    HttpSyncSource,
    SyncedBlock,
    decode_blocks,
    decode_status,
    encode_blocks,
    encode_status,
    read_blocks,
)
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
CHAIN = build_chain(NET, 120, txs_per_block=2)


class Applier:
    """The node's apply hook reduced to a list; refuses what the test tells it to."""

    def __init__(self) -> None:
        self.applied: list[Block] = []

    async def __call__(self, block: Block, certificate: CommitCertificate) -> None:
        self.applied.append(block)


def make_sync(serving: dict[str, list[SyncedBlock]], seed: int = 0, batch_size: int = 25) -> tuple[BlockSync, Applier]:
    network = MemoryNetwork(GENESIS, seed=seed)
    source = MemorySyncSource(network, "node-3")
    for peer, blocks in serving.items():
        source.chains[peer] = MemoryChain(blocks)
    applier = Applier()
    peers = PeerTable.from_genesis(GENESIS, "node-3")
    return BlockSync(GENESIS, source, peers, applier, batch_size=batch_size), applier


def heights(applier: Applier) -> list[int]:
    return [block.height for block in applier.applied]


def test_syncs_every_block_in_order_with_progress() -> None:
    sync, applier = make_sync({"node-0": CHAIN, "node-1": CHAIN[:60], "node-2": CHAIN[:10]})
    seen: list[tuple[int, int]] = []
    sync.progress = lambda done, total: seen.append((done, total))
    report = asyncio.run(sync.sync(0))
    assert heights(applier) == list(range(1, 121))
    assert [b.hash() for b in applier.applied] == [b.hash() for b, _ in CHAIN]
    assert (report.height, report.target, report.blocks, report.txs) == (120, 120, 120, 240)
    assert seen[-1] == (120, 120) and len(seen) == 120 and not report.refused
    assert sync.peers.get("node-1").last_height_seen == 60


def test_resumes_from_our_head() -> None:
    sync, applier = make_sync({"node-1": CHAIN})
    report = asyncio.run(sync.sync(100, CHAIN[99][0].hash()))
    assert heights(applier) == list(range(101, 121)) and report.start_height == 100


def test_nothing_to_do_when_no_peer_is_ahead() -> None:
    sync, applier = make_sync({"node-0": CHAIN[:5]})
    report = asyncio.run(sync.sync(5, CHAIN[4][0].hash()))
    assert applier.applied == [] and report.blocks == 0


def forged_chains() -> dict[str, list[SyncedBlock]]:
    """Ways a peer can lie about block 31: each must be refused."""
    block, cert = CHAIN[30]
    other_txs = [NET.tx("channel-1", "order.create", {"ref": "forged"})]
    forged = make_block(NET, 31, block.header.prev_hash, other_txs)
    bad_sig = dict(cert.signatures)
    bad_sig["node-1"] = NET.keys["node-3"].sign(b"something else")
    lies = {
        "changed txs, old certificate": (forged, cert),
        "changed state root, old certificate": (
            dataclasses.replace(block, header=dataclasses.replace(block.header, state_root=b"\x00" * 32)),
            cert,
        ),
        "txs swapped, header kept": (Block(block.header, tuple(other_txs)), cert),
        "too few signatures": (block, certify(NET, block, signers=("node-0", "node-1"))),
        "one signature repeated": (
            block,
            CommitCertificate(31, 0, block.hash(), (cert.signatures[0],) * 3),
        ),
        "a bad signature": (block, CommitCertificate(31, 0, block.hash(), tuple(sorted(bad_sig.items())))),
        "signed by a stranger": (block, certify(make_network(5), block, signers=("node-0", "node-1", "node-4"))),
        "a fresh certificate for a forged block": (forged, certify(NET, forged, signers=("node-0", "node-3"))),
        "broken link": (make_block(NET, 31, b"\x11" * 32, block.txs), None),
        "wrong height": (CHAIN[31][0], CHAIN[31][1]),
    }
    chains = {}
    for name, (bad_block, bad_cert) in lies.items():
        chains[name] = [*CHAIN[:30], (bad_block, bad_cert or certify(NET, bad_block)), *CHAIN[31:]]
    return chains


@pytest.mark.parametrize("lie", sorted(forged_chains()))
def test_forged_block_is_refused_peer_marked_and_honest_peer_used(lie: str) -> None:
    sync, applier = make_sync({"node-0": forged_chains()[lie], "node-1": CHAIN})
    sync.peers.get("node-1").rtt_ms = 50.0
    sync.peers.get("node-0").rtt_ms = 1.0
    report = asyncio.run(sync.sync(0))
    assert heights(applier) == list(range(1, 121)), lie
    assert [b.hash() for b in applier.applied] == [b.hash() for b, _ in CHAIN], lie
    assert "node-0" in report.refused and sync.peers.get("node-0").marked_bad, lie
    assert sync.peers.get("node-1").marked_bad == ""


def test_only_a_lying_peer_leaves_us_at_the_last_good_block() -> None:
    lie = forged_chains()["too few signatures"]
    sync, applier = make_sync({"node-0": lie, "node-2": lie[:40]})
    report = asyncio.run(sync.sync(0))
    assert heights(applier) == list(range(1, 31))
    assert set(report.refused) == {"node-0", "node-2"} and report.height == 30
    again = asyncio.run(sync.sync(30, CHAIN[29][0].hash()))
    assert again.blocks == 0 and len(applier.applied) == 30


def test_apply_refusal_marks_the_peer() -> None:
    sync, applier = make_sync({"node-0": CHAIN, "node-1": CHAIN})

    async def refuse_block_7(block: Block, certificate: CommitCertificate) -> None:
        if block.height == 7 and len(applier.applied) == 6 and not sync.peers.get("node-0").marked_bad:
            raise InvalidBlock("state root mismatch after re-execution")
        applier.applied.append(block)

    sync.apply = refuse_block_7
    report = asyncio.run(sync.sync(0))
    assert heights(applier) == list(range(1, 121)) and list(report.refused) == ["node-0"]


def test_the_next_batch_is_asked_for_while_a_batch_is_applied_by_a_hook_that_never_awaits() -> None:
    sync, applier = make_sync({"node-0": CHAIN}, batch_size=25)
    source = sync.source
    assert isinstance(source, MemorySyncSource)
    requests_at: dict[int, int] = {}

    def apply_at_once(block: Block, certificate: CommitCertificate) -> None:
        requests_at[block.height] = source.requests
        applier.applied.append(block)

    sync.apply = apply_at_once
    asyncio.run(sync.sync(0))
    assert heights(applier) == list(range(1, 121))
    assert requests_at[2] == requests_at[1] + 1, "the second batch was not asked for before the first one was applied"


def test_unreachable_peers_are_skipped_not_marked() -> None:
    seed = random.Random().randrange(1000)
    sync, applier = make_sync({"node-0": CHAIN, "node-1": CHAIN}, seed=seed)
    source = sync.source
    assert isinstance(source, MemorySyncSource)
    source.network.set_down("node-0", True)
    report = asyncio.run(sync.sync(0))
    assert heights(applier) == list(range(1, 121)), f"seed {seed}"
    assert not report.refused and sync.peers.get("node-0").errors == 1


def test_wire_helpers_round_trip_and_read_blocks_stops_at_gaps_and_limits() -> None:
    assert decode_status(encode_status(42, b"h")) == 42
    assert [(b.hash(), c) for b, c in decode_blocks(encode_blocks(CHAIN[:3]))] == [(b.hash(), c) for b, c in CHAIN[:3]]
    chain = MemoryChain(CHAIN[:10])
    assert read_blocks(chain, 1, 10) == encode_blocks(CHAIN[:10])
    assert len(decode_blocks(read_blocks(chain, 8, 50))) == 3
    assert len(decode_blocks(read_blocks(chain, 1, 10, max_blocks=4))) == 4
    assert len(decode_blocks(read_blocks(chain, 1, 10, max_bytes=1))) == 1
    assert decode_blocks(read_blocks(chain, 11, 20)) == []
    for junk in (b"\xc1", encode_status(1, b""), encode_blocks([]) + b"x"):
        with pytest.raises(InvalidBlock):
            decode_blocks(junk)
    with pytest.raises(InvalidBlock):
        decode_status(encode_blocks([]))


def test_http_source_speaks_the_documented_routes() -> None:
    chain = MemoryChain(CHAIN[:12])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/p2p/status":
            return httpx.Response(200, content=encode_status(chain.height, CHAIN[11][0].hash()))
        if request.url.path == "/p2p/blocks":
            lo, hi = int(request.url.params["from"]), int(request.url.params["to"])
            return httpx.Response(200, content=read_blocks(chain, lo, hi))
        return httpx.Response(503)

    async def scenario() -> None:
        peers = PeerTable({"node-0": "http://peer-0", "node-1": "http://peer-1"})
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        source = HttpSyncSource(peers, client)
        applier = Applier()
        sync = BlockSync(GENESIS, source, peers, applier, batch_size=5)
        report = await sync.sync(0)
        await client.aclose()
        assert heights(applier) == list(range(1, 13)) and report.target == 12
        assert peers.get("node-0").reachable and peers.get("node-0").rtt_ms is not None
        assert genesis_hash(GENESIS) == applier.applied[0].header.prev_hash

    asyncio.run(scenario())
