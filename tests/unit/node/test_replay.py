"""Replay protection is world state: a node that joined by state sync refuses an old tx as a full node does.

Two LevelDB stores: `full` executed every block; `synced` loaded `full`'s
world state at a checkpoint (as state sync does) and holds no index entry of
the txs below it. Both run the real contracts through the real executor and
admission.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts import ContractSet, load_contracts
from ledger.block import Block
from ledger.encoding import decode
from ledger.errors import InvalidBlock
from ledger.replay import REPLAY_PREFIX, DuplicateTransaction, ExpiredTransaction, WindowTooLong
from ledger.store import Head, Store
from ledger.tx import MAX_TX_WINDOW, Tx
from node.admission import Admission
from node.executor import Executor
from tests.helpers.builders import Network, make_network
from tests.helpers.chain import certify

RECEIPT_VALID_UNTIL = 6
"""Last height at which the stock receipt (committed at height 2) may be taken."""

SNAPSHOT = 3
"""Height of the snapshot the synced store starts from."""

SETUP = [
    ("operator-1", "sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
    (
        "operator-1",
        "location.upsert",
        {"location": "LIS-1", "type": "store", "org": "org-0", "region": "PT", "lat": 38_722_000, "lon": -9_139_000},
    ),
]

RECEIPT = {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 1000}], "document": "PO-1"}


@dataclass
class Nodes:
    network: Network
    receipt: Tx
    """The stock receipt of 1,000 units, committed at height 2."""
    full: Executor
    synced: Executor


def commit(executor: Executor, network: Network, txs: list[Tx]) -> Block:
    height = executor.store.height + 1
    block = executor.build_block(height, 0, "node-0", network.genesis.genesis_time_ms + height * 1000, txs)
    executor.commit(block, certify(network, block))
    return block


def filler(network: Network, height: int) -> list[Tx]:
    return [network.tx("operator-1", "sku.upsert", {**SETUP[0][2], "sku": f"FILL-{height}"})]


@pytest.fixture(scope="module")
def contracts() -> ContractSet:
    return load_contracts()


@pytest.fixture
def nodes(tmp_path: Path, contracts: ContractSet) -> Iterator[Nodes]:
    network = make_network(validators=4)
    full = Executor(Store(tmp_path / "full"), contracts, network.genesis)
    synced = Executor(Store(tmp_path / "synced"), contracts, network.genesis)
    commit(full, network, [network.tx(signer, kind, payload) for signer, kind, payload in SETUP])
    network.valid_until = RECEIPT_VALID_UNTIL
    receipt = network.tx("store-1", "stock.receive", RECEIPT)
    network.valid_until = MAX_TX_WINDOW
    commit(full, network, [receipt])
    block = commit(full, network, filler(network, 3))
    head = Head(SNAPSHOT, block.hash(), block.header.state_root, block.header.timestamp_ms)
    synced.store.load_state(full.store.iter_state(), head, block, full.store.get_certificate(SNAPSHOT))
    yield Nodes(network, receipt, full, synced)
    full.store.close()
    synced.store.close()


def on_hand(executor: Executor) -> int:
    raw = executor.store.get_state(b"stock/LIS-1/TEE-M")
    assert raw is not None
    return int(decode(raw)["on_hand"])


def test_a_synced_node_holds_no_tx_index_below_its_snapshot(nodes: Nodes) -> None:
    assert nodes.full.store.get_tx_location(nodes.receipt.id) == (2, 0)
    assert nodes.synced.store.get_tx_location(nodes.receipt.id) is None


@pytest.mark.parametrize("which", ["full", "synced"])
def test_admission_refuses_a_replay_of_a_committed_tx(nodes: Nodes, which: str) -> None:
    executor: Executor = getattr(nodes, which)
    admission = Admission(nodes.network.genesis, executor.contracts, executor.store)
    with pytest.raises(DuplicateTransaction):
        admission.check(nodes.receipt)


@pytest.mark.parametrize("which", ["full", "synced"])
def test_a_block_replaying_a_committed_tx_is_invalid(nodes: Nodes, which: str) -> None:
    executor: Executor = getattr(nodes, which)
    with pytest.raises(InvalidBlock, match="already committed"):
        executor.build_block(SNAPSHOT + 1, 0, "node-0", nodes.network.genesis.genesis_time_ms + 10_000, [nodes.receipt])


def test_both_nodes_agree_on_every_block_and_refuse_the_replay_until_it_expires(nodes: Nodes) -> None:
    for height in range(SNAPSHOT + 1, RECEIPT_VALID_UNTIL + 2):
        block = commit(nodes.full, nodes.network, filler(nodes.network, height))
        nodes.synced.commit(block, nodes.full.store.get_certificate(height))
        assert nodes.synced.store.state_root() == nodes.full.store.state_root() == block.header.state_root
        admission = Admission(nodes.network.genesis, nodes.synced.contracts, nodes.synced.store)
        expected = DuplicateTransaction if height < RECEIPT_VALID_UNTIL else ExpiredTransaction
        with pytest.raises(expected):
            admission.check(nodes.receipt)
    assert on_hand(nodes.synced) == on_hand(nodes.full) == 1000


def test_replay_records_are_pruned_when_their_window_closes(nodes: Nodes) -> None:
    def records(executor: Executor) -> list[bytes]:
        return [key for key, _ in executor.store.scan_state(REPLAY_PREFIX.encode())]

    assert len(records(nodes.full)) == 4
    for height in range(SNAPSHOT + 1, RECEIPT_VALID_UNTIL + 2):
        block = commit(nodes.full, nodes.network, filler(nodes.network, height))
        nodes.synced.commit(block, nodes.full.store.get_certificate(height))
    assert not any(nodes.receipt.id.hex().encode() in key for key in records(nodes.full))
    assert records(nodes.synced) == records(nodes.full)


def test_a_window_beyond_the_limit_is_refused_on_admission_and_in_a_block(nodes: Nodes) -> None:
    nodes.network.valid_until = SNAPSHOT + 1 + MAX_TX_WINDOW + 1
    far = nodes.network.tx("store-1", "stock.receive", RECEIPT)
    with pytest.raises(WindowTooLong):
        Admission(nodes.network.genesis, nodes.full.contracts, nodes.full.store).check(far)
    with pytest.raises(InvalidBlock, match="beyond"):
        nodes.full.build_block(SNAPSHOT + 1, 0, "node-0", nodes.network.genesis.genesis_time_ms + 10_000, [far])
