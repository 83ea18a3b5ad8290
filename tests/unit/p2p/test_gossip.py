"""Tx gossip over a 5-node memory network: every tx reaches every node, each node forwards it once."""

from __future__ import annotations

import asyncio
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import encode
from ledger.tx import Tx, encode_tx
from p2p.envelope import Envelope
from p2p.gossip import TXS_KIND, SeenIds, TxGossip
from p2p.memory import MemoryNetwork
from tests.helpers.builders import make_network

NET = make_network(5)
GENESIS = NET.genesis


class Node:
    """A node reduced to what gossip touches: a mempool that admits unseen, valid txs."""

    def __init__(self, network: MemoryNetwork, node_id: str) -> None:
        self.transport = network.transport(node_id, NET.keys[node_id])
        self.gossip = TxGossip(self.transport, max_batch_txs=7)
        self.mempool: dict[bytes, Tx] = {}
        self.transport.register(TXS_KIND, self.on_txs)

    def admit(self, txs: list[Tx]) -> None:
        new = [tx for tx in txs if tx.id not in self.mempool]
        for tx in new:
            self.mempool[tx.id] = tx
        self.gossip.on_admitted(new)

    async def on_txs(self, envelope: Envelope) -> None:
        self.admit(self.gossip.decode_batch(envelope.body))


async def run_gossip(seed: int, txs: list[Tx], reorder: int) -> list[Node]:
    network = MemoryNetwork(GENESIS, seed=seed, reorder=reorder, duplicate_rate=0.1)
    nodes = [Node(network, node_id) for node_id in GENESIS.validator_ids()]
    for node in nodes:
        await node.transport.start()
    rng = random.Random(seed)
    for start in range(0, len(txs), 9):
        rng.choice(nodes).admit(txs[start : start + 9])
        if rng.random() < 0.5:
            rng.choice(nodes).admit(txs[start : start + 3])
    while True:
        sent = sum(node.gossip.flush() for node in nodes)
        await network.settle()
        if sent == 0:
            break
    for node in nodes:
        await node.transport.close()
    return nodes


def test_every_tx_reaches_every_node_and_each_node_forwards_it_once() -> None:
    seed = 7
    txs = [NET.tx("channel-1", "order.create", {"ref": f"A-{i}"}) for i in range(60)]
    nodes = asyncio.run(run_gossip(seed, txs, reorder=3))
    ids = {tx.id for tx in txs}
    for node in nodes:
        assert set(node.mempool) == ids, f"seed {seed}: {node.transport.node_id} misses txs"
        assert node.gossip.forwarded == len(txs), f"seed {seed}: {node.transport.node_id} forwarded twice"
    messages = sum(node.gossip.messages_sent for node in nodes)
    assert messages <= len(nodes) * (len(txs) // 7 + 20), f"seed {seed}: {messages} messages is a storm"
    received = sum(node.gossip.received for node in nodes)
    assert received == len(txs) * len(nodes) * (len(nodes) - 1), f"seed {seed}: each forward crosses each link once"
    assert sum(node.transport.inbox.gate.dropped["replay"] for node in nodes) > 0, f"seed {seed}: no duplicates"


def test_decode_batch_skips_junk_and_seen_ids() -> None:
    network = MemoryNetwork(GENESIS)
    gossip = TxGossip(network.transport("node-0", NET.keys["node-0"]))
    a, b = (NET.tx("channel-1", "order.create", {"ref": r}) for r in ("x", "y"))
    gossip.on_admitted([a])
    body = encode([encode_tx(a), b"junk", encode_tx(b), encode_tx(b), 5])
    assert gossip.decode_batch(body) == [b]
    assert (gossip.received, gossip.duplicates, gossip.malformed) == (3, 2, 2)
    assert gossip.decode_batch(b"\xc1") == [] and gossip.decode_batch(encode({"a": 1})) == []
    assert gossip.malformed == 4


def test_flush_splits_by_bytes_and_count() -> None:
    network = MemoryNetwork(GENESIS)
    transport = network.transport("node-0", NET.keys["node-0"])
    txs = [NET.tx("channel-1", "order.create", {"ref": f"B-{i}"}) for i in range(10)]
    size = len(encode_tx(txs[0]))
    gossip = TxGossip(transport, max_batch_txs=4, max_batch_bytes=size * 3)
    assert gossip.on_admitted(txs) == 10 and gossip.on_admitted(txs) == 0
    assert gossip.flush() == 4
    assert gossip.flush() == 0


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(st.integers(min_value=0, max_value=30), max_size=100), capacity=st.integers(1, 10))
def test_seen_ids_stays_bounded_and_remembers_recent(ids: list[int], capacity: int) -> None:
    seen = SeenIds(capacity)
    for i in ids:
        seen.add(bytes([i]))
        assert len(seen) <= capacity
        assert bytes([i]) in seen


class FullNode(Node):
    """A node whose mempool refuses everything while `full` is set (admission fails, nothing is marked seen)."""

    full = True

    def admit(self, txs: list[Tx]) -> None:
        if not self.full:
            super().admit(txs)


async def offer_to_full_peer() -> tuple[Node, FullNode, Tx]:
    network = MemoryNetwork(GENESIS, seed=1)
    node, peer = Node(network, "node-0"), FullNode(network, "node-1")
    for each in (node, peer):
        await each.transport.start()
    tx = NET.tx("channel-1", "order.create", {"ref": "waiting"})
    node.admit([tx])
    node.gossip.flush()
    await network.settle()
    assert tx.id not in peer.mempool
    peer.full = False
    assert node.gossip.on_admitted([tx]) == 0
    assert node.gossip.resend([tx]) == 1
    node.gossip.flush()
    await network.settle()
    for each in (node, peer):
        await each.transport.close()
    return node, peer, tx


def test_a_tx_refused_by_a_full_peer_reaches_it_when_resent() -> None:
    """A tx forwarded once while a peer's pool was full would otherwise never reach that peer."""
    node, peer, tx = asyncio.run(offer_to_full_peer())
    assert tx.id in peer.mempool
    assert node.gossip.resent == 1
