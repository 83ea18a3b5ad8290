"""A node's wiring: the envelope replay windows it keeps in its home across a restart, and its status when halted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ledger.encoding import encode
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from node.config import CLIENTS_DIR, GENESIS_FILE, KEY_FILE
from node.home import create_network
from node.node import Node
from node.wal import LogWriteFailed
from p2p.envelope import seal
from p2p.gossip import TXS_KIND
from p2p.inbox import encode_frame


def test_a_restarted_node_refuses_what_it_accepted_before_and_what_was_sent_to_another(tmp_path: Path) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    chain_id = Genesis.load(homes[0] / GENESIS_FILE).chain_id
    key = PrivateKey.load(homes[1] / KEY_FILE)

    def frame(seq: int, recipient: str = "node-0") -> bytes:
        body = encode([])
        envelope = seal(key, sender="node-1", recipient=recipient, chain_id=chain_id, seq=seq, kind=TXS_KIND, body=body)
        return encode_frame([envelope])

    def receive(node: Node, data: bytes) -> int:
        return asyncio.run(node.transport.receive(data))

    node = Node(homes[0])
    try:
        assert receive(node, frame(5)) == 1
        assert receive(node, frame(6, recipient="node-2")) == 0
        assert node.transport.inbox.gate.dropped["wrong_recipient"] == 1
    finally:
        asyncio.run(node.close())
    node = Node(homes[0])
    try:
        assert receive(node, frame(5)) == 0
        assert node.transport.inbox.gate.dropped["replay"] == 1
        assert receive(node, frame(6)) == 1
    finally:
        asyncio.run(node.close())


def test_a_halted_replica_shows_in_the_status_and_is_not_voting(tmp_path: Path) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    node = Node(homes[0])
    try:
        assert node.status()["consensus_halted"] is None and node.status()["voting"]
        node.driver._halt(LogWriteFailed("consensus.wal: writing 1 records failed: [Errno 28] No space left"))
        status = node.status()
        assert "No space left" in status["consensus_halted"] and status["voting"] is False
    finally:
        asyncio.run(node.close())
