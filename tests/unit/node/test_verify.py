"""verify-chain over real stores: full replay from genesis, and a state-synced store checked from its base.

Chains are built the way a node builds them: the executor runs real txs through
the real contracts, validators sign commit certificates, and the store is
LevelDB. The state-synced store is made as state sync makes it: the world state
of another store at a checkpoint height is loaded with `Store.load_state`, and
the later blocks are committed on top by an executor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from contracts import ContractSet, load_contracts
from ledger.block import Block, CommitCertificate, Receipt
from ledger.encoding import encode
from ledger.store import STATE_PREFIX, Head, Store
from ledger.tx import Tx
from node.config import DATA_DIR, GENESIS_FILE
from node.executor import Executor
from node.verify import Report, verify_chain
from tests.helpers.builders import Network, make_network
from tests.helpers.chain import certify

BASE = 3
"""Height of the snapshot the state-synced store starts from."""

HEAD = 6
"""Height of the head of both stores."""


def order(ref: str) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "currency": "EUR",
        "customer_hash": hashlib.sha256(ref.encode()).hexdigest(),
        "lines": [{"sku": "TEE-M", "qty": 1}],
        "delivery": {"region": "PT", "lat": 38_700_000, "lon": -9_100_000},
    }


def block_txs(network: Network, height: int) -> list[Tx]:
    """The txs of block `height`: catalogue and stock first, then orders and more stock."""
    if height == 1:
        return [
            network.tx(
                "operator-1", "sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}
            ),
            network.tx(
                "operator-1",
                "location.upsert",
                {
                    "location": "LIS-1",
                    "type": "store",
                    "org": "org-0",
                    "region": "PT",
                    "lat": 38_722_000,
                    "lon": -9_139_000,
                },
            ),
        ]
    if height % 2 == 0:
        return [network.tx("store-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 5}]})]
    return [network.tx("channel-1", "order.create", order(f"web-{height}-{i}")) for i in range(2)]


@dataclass
class Chains:
    """A store with the full history, and a store state-synced from it at `BASE`."""

    network: Network
    contracts: ContractSet
    full: Store
    synced: Store


def commit_next(executor: Executor, network: Network) -> tuple[Block, CommitCertificate]:
    height = executor.store.height + 1
    time_ms = network.genesis.genesis_time_ms + height * 1000
    block = executor.build_block(height, 0, "node-0", time_ms, block_txs(network, height))
    certificate = certify(network, block)
    executor.commit(block, certificate)
    return block, certificate


@pytest.fixture(scope="module")
def contracts() -> ContractSet:
    return load_contracts()


@pytest.fixture
def chains(tmp_path: Path, contracts: ContractSet) -> Iterator[Chains]:
    network = make_network(validators=4)
    full = Store(tmp_path / "full")
    synced = Store(tmp_path / "synced")
    builder = Executor(full, contracts, network.genesis)
    later: list[tuple[Block, CommitCertificate]] = []
    for height in range(1, HEAD + 1):
        block, certificate = commit_next(builder, network)
        if height == BASE:
            head = Head(height, block.hash(), block.header.state_root, block.header.timestamp_ms)
            synced.load_state(full.iter_state(), head, block, certificate)
        elif height > BASE:
            later.append((block, certificate))
    follower = Executor(synced, contracts, network.genesis)
    for block, certificate in later:
        follower.commit(block, certificate)
    yield Chains(network, contracts, full, synced)
    full.close()
    synced.close()


def stored_key(prefix: bytes, height: int, index: int | None = None) -> bytes:
    """The store's key of a block (`b/`), certificate (`c/`) or receipt (`r/`, with `index`) at `height`."""
    key = prefix + height.to_bytes(8, "big")
    return key if index is None else key + index.to_bytes(4, "big")


def verify(chains: Chains, store: Store) -> Report:
    return verify_chain(store, chains.network.genesis, chains.contracts)


def count_txs(store: Store, first: int) -> int:
    return sum(len(block.txs) for h in range(first, store.height + 1) if (block := store.get_block(h)) is not None)


def put_receipt(store: Store, height: int, index: int, receipt: Receipt) -> None:
    store.raw_db().put(stored_key(b"r/", height, index), encode(receipt.to_wire()))


def changed_receipt(store: Store, height: int) -> Receipt:
    receipt = store.get_receipt(height, 0)
    assert receipt is not None
    return Receipt(receipt.tx_id, receipt.ok, receipt.code, receipt.message + " (edited)", receipt.result)


def put_certificate(chains: Chains, store: Store, height: int, signers: list[str]) -> None:
    block = store.get_block(height)
    assert block is not None
    certificate = certify(chains.network, block, signers)
    store.raw_db().put(stored_key(b"c/", height), encode(certificate.to_wire()))


def test_a_full_chain_is_replayed_from_genesis(chains: Chains) -> None:
    heights: list[int] = []
    report = verify_chain(chains.full, chains.network.genesis, chains.contracts, progress=heights.append)
    assert report.ok, report.failures
    assert (report.height, report.base_height, report.re_executed) == (HEAD, 1, True)
    assert report.txs == count_txs(chains.full, 1)
    assert heights == list(range(1, HEAD + 1))


def test_a_full_chain_catches_a_receipt_that_differs_from_re_execution(chains: Chains) -> None:
    put_receipt(chains.full, 5, 0, changed_receipt(chains.full, 5))
    report = verify(chains, chains.full)
    assert [(f.height, f.what) for f in report.failures] == [(5, "stored receipt 0 differs from re-execution")]
    assert report.height == 4


def test_a_state_synced_store_is_checked_from_its_base(chains: Chains) -> None:
    heights: list[int] = []
    report = verify_chain(chains.synced, chains.network.genesis, chains.contracts, progress=heights.append)
    assert report.ok, report.failures
    assert (report.height, report.base_height, report.re_executed) == (HEAD, BASE, False)
    assert report.txs == count_txs(chains.synced, BASE)
    assert heights == list(range(BASE, HEAD + 1))


def test_a_store_synced_at_its_head_checks_the_state_against_that_block(chains: Chains, tmp_path: Path) -> None:
    block = chains.full.get_block(HEAD)
    certificate = chains.full.get_certificate(HEAD)
    assert block is not None and certificate is not None
    store = Store(tmp_path / "at-head")
    head = Head(HEAD, block.hash(), block.header.state_root, block.header.timestamp_ms)
    store.load_state(chains.full.iter_state(), head, block, certificate)
    assert verify(chains, store).ok
    key, _ = next(chains.full.iter_state())
    store.raw_db().delete(STATE_PREFIX + key)
    report = verify(chains, store)
    store.close()
    assert [f.height for f in report.failures] == [0]
    assert f"block {HEAD}'s state root" in report.failures[0].what


def test_a_changed_state_entry_breaks_the_recomputed_commitment(chains: Chains) -> None:
    key, value = next(chains.synced.iter_state())
    chains.synced.raw_db().put(STATE_PREFIX + key, value + b"\x00")
    report = verify(chains, chains.synced)
    assert report.height == HEAD, "every block still checks out"
    assert [f.height for f in report.failures] == [0]
    assert "state commitment" in report.failures[0].what


def test_a_changed_receipt_above_the_base_is_reported_at_its_block(chains: Chains) -> None:
    put_receipt(chains.synced, 5, 0, changed_receipt(chains.synced, 5))
    report = verify(chains, chains.synced)
    assert [(f.height, f.what) for f in report.failures] == [
        (5, "stored receipts do not match the block's receipts root")
    ]
    assert report.height == 4


def test_a_missing_receipt_is_reported_at_its_block(chains: Chains) -> None:
    chains.synced.raw_db().delete(stored_key(b"r/", 4, 0))
    report = verify(chains, chains.synced)
    assert [(f.height, f.what) for f in report.failures] == [(4, "stored receipt 0 is missing")]


@pytest.mark.parametrize("height", [BASE, 5])
def test_a_certificate_without_a_quorum_is_reported_at_its_block(chains: Chains, height: int) -> None:
    put_certificate(chains, chains.synced, height, ["node-0", "node-1"])
    report = verify(chains, chains.synced)
    assert [f.height for f in report.failures] == [height]
    assert "quorum" in report.failures[0].what


def test_the_base_block_link_is_covered_by_its_certificate(chains: Chains) -> None:
    block = chains.synced.get_block(BASE)
    assert block is not None
    wire = block.to_wire()
    wire["header"]["prev_hash"] = b"\x01" * 32
    chains.synced.raw_db().put(stored_key(b"b/", BASE), encode(wire))
    report = verify(chains, chains.synced)
    assert [f.height for f in report.failures] == [BASE]
    assert "another block" in report.failures[0].what


def test_a_gap_above_the_base_is_reported(chains: Chains) -> None:
    chains.synced.raw_db().delete(stored_key(b"b/", 5))
    report = verify(chains, chains.synced)
    assert [(f.height, f.what) for f in report.failures] == [(5, "block is missing")]


def write_home(chains: Chains, store: Store, home: Path) -> None:
    """A node home holding the genesis and a copy of `store`'s LevelDB."""
    home.mkdir()
    chains.network.genesis.save(home / GENESIS_FILE)
    copy = Store(home / DATA_DIR)
    with copy.raw_db().write_batch() as batch:
        for key, value in store.raw_db().iterator():
            batch.put(key, value)
    copy.close()


def test_the_cli_says_which_mode_ran(chains: Chains, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_home(chains, chains.synced, tmp_path / "synced-home")
    write_home(chains, chains.full, tmp_path / "full-home")

    assert main(["verify-chain", "--home", str(tmp_path / "synced-home"), "--json"]) == 0
    synced = json.loads(capsys.readouterr().out)
    assert synced["ok"] and synced["height"] == HEAD
    assert (synced["base_height"], synced["re_executed"]) == (BASE, False)
    assert main(["verify-chain", "--home", str(tmp_path / "full-home"), "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert (full["base_height"], full["re_executed"]) == (1, True)

    assert main(["verify-chain", "--home", str(tmp_path / "synced-home")]) == 0
    text = capsys.readouterr().out
    assert f"state-synced at height {BASE}: blocks {BASE}..{HEAD} checked" in text
    assert "state commitment recomputed" in text and "not re-executed" in text
    assert main(["verify-chain", "--home", str(tmp_path / "full-home")]) == 0
    assert "re-executed from genesis" in capsys.readouterr().out
