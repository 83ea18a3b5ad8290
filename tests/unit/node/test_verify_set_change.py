"""verify-chain and state sync across a validator set change made by governance, on real stores and contracts.

Block 1 adds validator `node-4` (proposed by `node-0`, approved by `node-1` and `node-2`: 3 of 4
organisations); with a checkpoint interval of 2 the five validators certify the blocks from height 3.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts import ContractSet, load_contracts
from ledger.block import Block, CommitCertificate
from ledger.encoding import encode
from ledger.genesis import ConsensusParams
from ledger.keys import PrivateKey
from ledger.store import Head, Store
from ledger.tx import Tx
from node.executor import Executor
from node.snapshots import SnapshotServer
from node.verify import verify_chain
from p2p.memory import MemoryNetwork, MemorySyncSource
from p2p.peers import PeerTable
from p2p.snapshot import Manifest, SnapshotOffer, StateSync, encode_manifest
from tests.helpers.builders import Network, make_network
from tests.helpers.chain import certify

START = 3
"""First height the five validators certify."""

HEAD = 6

NEW_SET = ["node-1", "node-2", "node-3", "node-4"]
"""Who signs the certificates from `START` on: four of five, without `node-0`."""


def block_txs(network: Network, height: int) -> list[Tx]:
    if height == 1:
        key = network.keys["node-4"].public.hex()
        params = {"id": "node-4", "org": "org-0", "public_key": key, "address": "http://127.0.0.1:27004"}
        propose = network.tx("node-0", "governance.propose", {"action": "validator.add", "params": params})
        approvals = [network.tx(v, "governance.approve", {"proposal": propose.id.hex()}) for v in ("node-1", "node-2")]
        return [propose, *approvals]
    sku = {"sku": f"SKU-{height}", "price": 100 + height, "currency": "EUR", "tax_class": "standard"}
    return [network.tx("operator-1", "sku.upsert", sku)]


@dataclass
class Chain:
    network: Network
    contracts: ContractSet
    full: Store
    synced: Store


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    network = make_network(validators=4, consensus=ConsensusParams(checkpoint_interval=2))
    network.keys["node-4"] = PrivateKey.from_seed_text("verify/node-4")
    contracts = load_contracts()
    full, synced = Store(tmp_path / "full"), Store(tmp_path / "synced")
    builder = Executor(full, contracts, network.genesis)
    follower = Executor(synced, contracts, network.genesis)
    for height in range(1, HEAD + 1):
        time_ms = network.genesis.genesis_time_ms + height * 1000
        block = builder.build_block(height, 0, "node-1", time_ms, block_txs(network, height))
        signers = NEW_SET if height >= START else None
        certificate = certify(network, block, signers)
        builder.commit(block, certificate)
        if height == START + 1:
            head = Head(height, block.hash(), block.header.state_root, block.header.timestamp_ms)
            synced.load_state(full.iter_state(), head, block, certificate)
        elif height > START + 1:
            follower.commit(block, certificate)
    yield Chain(network, contracts, full, synced)
    full.close()
    synced.close()


def test_the_chain_verifies_across_the_change_by_replay_and_from_a_snapshot(chain: Chain) -> None:
    for store in (chain.full, chain.synced):
        report = verify_chain(store, chain.network.genesis, chain.contracts)
        assert report.ok, report.failures
        assert report.height == HEAD
    block = chain.full.get_block(START - 1)
    assert block is not None and len(block.header.validators_hash) == 32


@pytest.mark.parametrize("which", ["full", "synced"])
def test_a_block_after_the_change_certified_by_the_old_quorum_fails(chain: Chain, which: str) -> None:
    store: Store = getattr(chain, which)
    block = chain.full.get_block(HEAD)
    assert block is not None
    old_quorum = certify(chain.network, block, ["node-0", "node-1", "node-2"])
    store.raw_db().put(b"c/" + HEAD.to_bytes(8, "big"), encode(old_quorum.to_wire()))
    report = verify_chain(store, chain.network.genesis, chain.contracts)
    assert [f.height for f in report.failures] == [HEAD]
    assert "quorum is 4" in report.failures[0].what


def test_a_block_before_the_change_signed_by_the_newcomer_fails(chain: Chain) -> None:
    block = chain.full.get_block(START - 1)
    assert block is not None
    early = certify(chain.network, block, ["node-2", "node-3", "node-4"])
    chain.full.raw_db().put(b"c/" + (START - 1).to_bytes(8, "big"), encode(early.to_wire()))
    report = verify_chain(chain.full, chain.network.genesis, chain.contracts)
    assert [f.height for f in report.failures] == [START - 1]
    assert "unknown validator 'node-4'" in report.failures[0].what


class Loader:
    def __init__(self) -> None:
        self.entries: dict[bytes, bytes] = {}

    def __call__(self, block: Block, certificate: CommitCertificate, entries: Iterator[tuple[bytes, bytes]]) -> None:
        self.entries = dict(entries)


class Stripped:
    """A peer that serves an honest snapshot but leaves the set changes out of its manifest."""

    def __init__(self, honest: SnapshotOffer) -> None:
        self.honest = honest

    def manifest_bytes(self) -> bytes:
        return encode_manifest(dataclasses.replace(self.honest.manifest, epochs=()))

    def chunk_bytes(self, index: int) -> bytes:
        return self.honest.chunk_bytes(index)


def run_state_sync(chain: Chain, server: object) -> tuple[Manifest | None, StateSync, Loader]:
    genesis = chain.network.genesis
    source = MemorySyncSource(MemoryNetwork(genesis), "node-3")
    source.snapshots["node-1"] = server  # type: ignore[assignment]
    loader = Loader()
    sync = StateSync(genesis, source, PeerTable.from_genesis(genesis, "node-3"), loader)
    return asyncio.run(sync.sync()), sync, loader


def test_state_sync_follows_the_certified_set_changes_to_the_snapshot(chain: Chain) -> None:
    server = SnapshotServer(chain.full, every=1)
    server.capture()
    offer = asyncio.run(server.current_offer())
    assert offer is not None and [link.header.height for link in offer.manifest.epochs] == [START - 1]
    manifest, sync, loader = run_state_sync(chain, offer)
    assert manifest is not None and manifest.height == HEAD and not sync.refused
    assert loader.entries == dict(chain.full.iter_state())
    _, stripped, loader = run_state_sync(chain, Stripped(offer))
    assert "node-1" in stripped.refused and not loader.entries
    server.close()
