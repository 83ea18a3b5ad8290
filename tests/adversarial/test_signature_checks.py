"""A Byzantine validator's traffic costs a bounded, small number of signature checks, counted at the Ed25519
verify itself (real signatures throughout): a NEW-VIEW stuffed with copies of one view change carrying a real
commit certificate, the same certificate carried again and again, a bad signature sent again, and a gossip
batch of junk txs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from nacl.signing import VerifyKey

from consensus.messages import NewView, Prepare, PrePrepare, ViewChange, sign_message
from consensus.replica import FAILURES_ALLOWED, PROPOSALS_AHEAD
from ledger.encoding import encode
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.tx import encode_tx, make_tx
from node.config import CLIENTS_DIR, GENESIS_FILE, KEY_FILE
from node.home import create_network
from node.node import Node
from p2p.envelope import seal
from p2p.gossip import TXS_KIND
from p2p.inbox import encode_frame
from tests.sim.cluster import Cluster


class Checks:
    """How many Ed25519 signatures were checked."""

    count = 0


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Checks]:
    counted = Checks()
    real = VerifyKey.verify

    def verify(self: VerifyKey, *args: object, **kwargs: object) -> bytes:
        counted.count += 1
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(VerifyKey, "verify", verify)
    yield counted


def committed_cluster() -> Cluster:
    """Four validators that committed block 1 in view 0."""
    cluster = Cluster.make(4)
    cluster.offer(cluster.txs(1))
    assert {app.head()[0] for app in cluster.apps.values()} == {1}
    return cluster


def view_change(cluster: Cluster, sender: str, view: int = 1) -> ViewChange:
    """A real view change of `sender` for `view`, carrying the real certificate of block 1 (node 0's)."""
    genesis, key = cluster.network.genesis, cluster.network.keys[sender]
    certificate = cluster.apps["node-0"].head_certificate()
    return sign_message(ViewChange(genesis.chain_id, view, 1, certificate, None, sender), key)


def test_a_new_view_stuffed_with_copies_of_one_view_change_costs_no_check(checks: Checks) -> None:
    cluster = committed_cluster()
    replica = cluster.replicas["node-3"]
    genesis, key = cluster.network.genesis, cluster.network.keys["node-1"]
    copies = (view_change(cluster, "node-1"),) * 2000
    stuffed = sign_message(NewView(genesis.chain_id, 1, copies, None, "node-1"), key)
    checks.count = 0
    for _ in range(5):
        assert replica.on_message("node-1", stuffed) == []
    assert checks.count == 0 and replica.view == 0


def test_a_new_view_padded_with_view_changes_from_strangers_costs_no_check(checks: Checks) -> None:
    cluster = committed_cluster()
    replica = cluster.replicas["node-3"]
    genesis, key = cluster.network.genesis, cluster.network.keys["node-1"]
    real = tuple(view_change(cluster, sender) for sender in ("node-0", "node-1", "node-2"))
    strangers = tuple(dataclasses.replace(real[0], sender=f"stranger-{i}") for i in range(500))
    padded = sign_message(NewView(genesis.chain_id, 1, real + strangers, None, "node-1"), key)
    checks.count = 0
    assert replica.on_message("node-1", padded) == []
    assert checks.count == 0 and replica.view == 0


def test_proposals_far_ahead_cost_no_check(checks: Checks) -> None:
    cluster = committed_cluster()
    replica = cluster.replicas["node-3"]
    genesis, key = cluster.network.genesis, cluster.network.keys["node-0"]
    block = cluster.apps["node-0"].build_block(2, 0, cluster.txs(1))
    checks.count = 0
    for height in range(2 + PROPOSALS_AHEAD + 1, 200):
        far = sign_message(PrePrepare(genesis.chain_id, 0, height, block, "node-0"), key)
        assert replica.on_message("node-0", far) == []
    assert checks.count == 0


def test_a_certificate_carried_again_is_checked_once(checks: Checks) -> None:
    cluster = committed_cluster()
    replica = cluster.replicas["node-3"]
    quorum = replica.quorum
    checks.count = 0
    for _ in range(20):
        for sender in ("node-0", "node-1", "node-2"):
            replica.on_message(sender, view_change(cluster, sender, view=5))
    # Each view change's own signature once, and the one certificate they all carry once.
    assert checks.count <= 3 + quorum


def test_a_bad_signature_sent_again_costs_nothing(checks: Checks) -> None:
    cluster = committed_cluster()
    replica = cluster.replicas["node-3"]
    genesis = cluster.network.genesis
    forged = Prepare(genesis.chain_id, 0, 2, b"\x01" * 32, "node-1", b"\x02" * 64)
    checks.count = 0
    for _ in range(100):
        assert replica.on_message("node-1", forged) == []
    assert checks.count == 1


def test_a_new_view_for_a_view_already_started_costs_no_check(checks: Checks) -> None:
    cluster = committed_cluster()
    genesis, keys = cluster.network.genesis, cluster.network.keys
    replica = cluster.replicas["node-3"]
    changes = tuple(view_change(cluster, sender) for sender in ("node-0", "node-1", "node-2"))
    new_view = sign_message(NewView(genesis.chain_id, 1, changes, None, "node-1"), keys["node-1"])
    replica.on_message("node-1", new_view)
    assert replica.view == 1 and not replica.is_view_changing
    checks.count = 0
    for _ in range(50):
        replica.on_message("node-1", dataclasses.replace(new_view, signature=b"\x03" * 64))
    assert checks.count == 0


def test_a_junk_gossip_batch_costs_a_bounded_number_of_checks(tmp_path: Path, checks: Checks) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    genesis = Genesis.load(homes[0] / GENESIS_FILE)
    peer_key = PrivateKey.load(homes[1] / KEY_FILE)
    client_key = PrivateKey.load(tmp_path / CLIENTS_DIR / "channel-1.key")
    node = Node(homes[0])
    try:
        valid_until = node.suggest_valid_until()
        # a payload its kind's schema admits, so that each tx reaches its signature check (a payload the schema
        # refuses is dropped before it, at no signature's cost)
        order = {
            "currency": "EUR",
            "customer_hash": "ab" * 32,
            "payment_terms": "on_account",
            "external_ref": "J-1",
            "lines": [{"sku": "TEE", "qty": 1}],
        }
        junk = [
            dataclasses.replace(
                make_tx(
                    genesis.chain_id, "order.create", "channel-1", nonce, order, client_key, valid_until=valid_until
                ),
                signature=bytes(64),
            )
            for nonce in range(1000)
        ]

        def send(seq: int, body: bytes) -> None:
            envelope = seal(
                peer_key,
                sender="node-1",
                recipient="node-0",
                chain_id=genesis.chain_id,
                seq=seq,
                kind=TXS_KIND,
                body=body,
            )
            asyncio.run(node.transport.receive(encode_frame([envelope])))

        def cost(seq: int, txs: list) -> int:
            """Signature checks taken by one frame of a gossip batch of `txs` (one is the envelope's seal)."""
            before = checks.count
            send(seq, encode([encode_tx(tx) for tx in txs]))
            return checks.count - before

        assert cost(1, junk[:10]) == 1 + 10
        assert cost(2, junk[:10]) == 1
        # At most the peer's budget of failed checks (and what refills while the batch is taken), not 990.
        assert cost(3, junk[10:]) < 100
        assert cost(4, junk * 3) == 1
        assert node.gossip.oversized == 1 and len(node.mempool) == 0
    finally:
        asyncio.run(node.close())


def test_a_validator_sending_new_bad_signatures_is_charged_and_then_refused_unchecked(checks: Checks) -> None:
    cluster = committed_cluster()
    replica = cluster.replicas["node-3"]
    genesis, keys = cluster.network.genesis, cluster.network.keys
    checks.count = 0
    for nonce in range(1000):
        forged = Prepare(genesis.chain_id, 0, 2, b"\x01" * 32, "node-1", nonce.to_bytes(64, "big"))
        assert replica.on_message("node-1", forged) == []
    assert checks.count == FAILURES_ALLOWED
    honest = sign_message(Prepare(genesis.chain_id, 0, 2, b"\x01" * 32, "node-2"), keys["node-2"])
    replica.on_message("node-2", honest)
    assert checks.count == FAILURES_ALLOWED + 1
