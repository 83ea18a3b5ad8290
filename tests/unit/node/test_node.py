"""A node's wiring: the envelope replay windows it keeps in its home across a restart, its status when halted, and
the address records it takes from the validators governance added."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contracts import load_contracts
from ledger.encoding import encode
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.store import Store
from node.config import CLIENTS_DIR, DATA_DIR, GENESIS_FILE, KEY_FILE
from node.executor import Executor
from node.home import create_network
from node.node import Node
from node.wal import LogWriteFailed
from p2p.addresses import AddressBook
from p2p.envelope import seal
from p2p.gossip import TXS_KIND
from p2p.inbox import encode_frame
from tests.helpers.builders import Network
from tests.helpers.chain import certify


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


def test_a_node_takes_and_keeps_the_address_records_of_validators_governance_added_and_drops_the_removed(
    tmp_path: Path,
) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    genesis = create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    network = Network(genesis, {f"node-{i}": PrivateKey.load(home / KEY_FILE) for i, home in enumerate(homes)})
    newcomer = PrivateKey.from_seed_text("node-4")
    store = Store(homes[0] / DATA_DIR)
    executor = Executor(store, load_contracts(), genesis)

    def decide(height: int, action: str, params: dict[str, object]) -> None:
        propose = network.tx("node-0", "governance.propose", {"action": action, "params": params})
        approve = [network.tx(v, "governance.approve", {"proposal": propose.id.hex()}) for v in ("node-1", "node-2")]
        block = executor.build_block(height, 0, "node-0", genesis.genesis_time_ms + height, [propose, *approve])
        executor.commit(block, certify(network, block))

    decide(1, "validator.add", {"id": "node-4", "org": "org-0", "public_key": newcomer.public.hex()})
    store.close()
    signer = AddressBook(genesis.chain_id, {"node-4": newcomer.public})
    record = signer.announce(newcomer, "node-4", "http://127.0.0.9:27004", now_ms=5)
    node = Node(homes[0])
    try:
        assert node.addresses.take(encode([record.to_wire()]), forward=False) == 1
    finally:
        asyncio.run(node.close())
    node = Node(homes[0])  # restarted: the record kept in its home still checks out
    try:
        assert node.addresses.book.address_of("node-4") == "http://127.0.0.9:27004"
        assert node.addresses.book.refused == 0
    finally:
        asyncio.run(node.close())

    store = Store(homes[0] / DATA_DIR)
    executor = Executor(store, load_contracts(), genesis)
    decide(2, "validator.remove", {"id": "node-4"})
    store.close()
    node = Node(homes[0])  # once no set in force or scheduled lists it, its records are refused
    try:
        assert node.addresses.book.address_of("node-4") is None
        assert node.addresses.take(encode([record.to_wire()]), forward=False) == 0
    finally:
        asyncio.run(node.close())
