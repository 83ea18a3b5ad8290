"""Changing a running network by governance, on real node processes.

A 4-node devnet (checkpoint interval 5, so a validator set change takes effect within 6 blocks of its
approval) commits txs; then, each change proposed with `omsnode governance propose` by the operator of
`org-0` and approved by the other organisations' validators:

1. a fifth organisation joins; with five member organisations a change now needs four approvals;
2. its validator `node-4` is added; its node, started from genesis with its own key, catches up as a
   follower, is restarted as a validator, and votes from the boundary on: the network commits with a
   quorum of 4 of 5;
3. `node-1`'s key is rotated, and `node-1` restarted with the new key votes again;
4. `node-3` is removed and stops voting, and the four others go on;
5. every node's `verify-chain` passes across the three changes, and a proof of a tx committed after them,
   taken from a node before every node stops, verifies with only the genesis file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devnet.network import Devnet, NodeInfo, free_ports
from ledger.genesis import ConsensusParams
from ledger.keys import PrivateKey
from ledger.membership import compute_epoch_start
from node.config import GENESIS_FILE, KEY_FILE, NodeConfig
from node.tokens import TOKENS_FILE
from omsclient.signing import Keyring
from tests.e2e.conftest import omsnode, omsnode_json
from tests.helpers.devnet import load, status, wait_converged, wait_for
from tests.helpers.tamper import flip_bit

pytestmark = [pytest.mark.e2e]

INTERVAL = 5
"""Checkpoint interval of the devnet's genesis."""

WAIT_S = 240.0
"""Generous: five node processes share a busy machine."""


class Network:
    """The devnet, a signer for each validator's key, and governance through the CLI and signed txs."""

    def __init__(self, devnet: Devnet, keys_dir: Path) -> None:
        self.devnet = devnet
        self.keys_dir = keys_dir
        self.client = devnet.client(0, timeout=30.0)
        self.keyring = Keyring(keys_dir, devnet.genesis.chain_id, self.client.valid_until)

    def save_key(self, ident: str, key: PrivateKey) -> None:
        key.save(self.keys_dir / f"{ident}.key")
        self.keyring = Keyring(self.keys_dir, self.devnet.genesis.chain_id, self.client.valid_until)

    def propose(self, kind: str, params: dict[str, Any]) -> str:
        """Propose with the CLI as `org-0`'s operator; the proposal id."""
        node = self.devnet.node(0).url
        args = ("governance", "propose", kind, "--payload", json.dumps(params))
        result = omsnode_json(*args, "--node", node, "--token", self.devnet.token)
        assert result["status"] == "committed", result
        proposal: str = result["resource"]["id"]
        return proposal

    def approve(self, proposal: str, *validators: str) -> dict[str, Any]:
        """Approve with each validator's key (a signed tx each); the last receipt's result."""
        result: dict[str, Any] = {}
        for validator in validators:
            tx = self.keyring.sign(validator, "governance.approve", {"proposal": proposal})
            done = self.client.wait_tx(self.client.submit(tx), timeout=WAIT_S)
            assert done["status"] == "committed", done
            result = done["receipt"]["result"]
        return result

    def decide(self, kind: str, params: dict[str, Any], *approvers: str) -> int:
        """Propose and approve until executed; the height at which a validator change then takes effect."""
        proposal = self.propose(kind, params)
        assert self.approve(proposal, *approvers)["status"] == "executed"
        return self.get_start(proposal)

    def get_start(self, proposal: str) -> int:
        """The first height a validator change that `proposal` made certifies (it says where it was executed)."""
        shown = omsnode_json("governance", "show", proposal, "--node", self.devnet.node(0).url, "--token", self.token)
        assert shown["status"] == "executed", shown
        return compute_epoch_start(shown["executed_height"], INTERVAL)

    @property
    def token(self) -> str:
        return self.devnet.token

    def status(self, index: int) -> dict[str, Any]:
        found = status(self.devnet.node(index).url)
        assert found is not None, f"node {index} does not answer"
        return found

    def commit_past(self, height: int, tag: str) -> int:
        """Load txs through node 0 until the chain is past `height`, and wait until every running node is there."""
        reached = load(self.devnet, 0, tag, seconds=WAIT_S, until_height=height + 1)
        wait_converged(self.devnet, reached, timeout=WAIT_S)
        return reached

    def signers(self, height: int) -> set[str]:
        block = self.client.get(f"/v1/blocks/{height}")
        return {validator for validator, _ in block["certificate"]["signatures"]}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root = tmp_path_factory.mktemp("governance")
    devnet = Devnet.create(root / "net", 4, ConsensusParams(checkpoint_interval=INTERVAL))
    keys_dir = root / "validator-keys"
    keys_dir.mkdir()
    for node in devnet.nodes:
        shutil.copy(node.home / KEY_FILE, keys_dir / f"node-{node.index}.key")
    devnet.start_all()
    try:
        devnet.wait_until_up(timeout=WAIT_S)
        yield Network(devnet, keys_dir)
    finally:
        devnet.stop_all()


def add_node_home(devnet: Devnet, ident: str, key: PrivateKey) -> NodeInfo:
    """A home for a node the genesis does not list: the genesis, its own key, its id, a port, and the devnet's
    API token."""
    (port,) = free_ports(1)
    home = devnet.root / ident
    home.mkdir()
    shutil.copy(devnet.node(0).home / TOKENS_FILE, home / TOKENS_FILE)
    devnet.genesis.save(home / GENESIS_FILE)
    key.save(home / KEY_FILE)
    NodeConfig(node_id=ident, org="org-4", port=port).save(home)
    node = NodeInfo(len(devnet.nodes), home, port)
    devnet.nodes.append(node)
    return node


def test_the_network_changes_its_members_and_validators_by_governance(network: Network) -> None:
    devnet = network.devnet
    network.commit_past(3, "before")

    # 1. A fifth organisation: 3 of 4 approve.
    network.decide("org.add", {"org": "org-4", "name": "Depot"}, "node-1", "node-2")
    listed = omsnode_json("governance", "list", "--node", devnet.node(0).url, "--token", network.token)["items"]
    assert [(p["action"], p["status"], sorted(p["approvals"])) for p in listed] == [
        ("org.add", "executed", ["org-0", "org-1", "org-2"])
    ]
    table = omsnode("governance", "list", "--node", devnet.node(0).url, "--token", network.token).stdout
    assert "org.add" in table and "executed" in table

    # 2. Its validator: with five organisations, 4 of 5 approve; its node joins from genesis.
    key = PrivateKey.generate()
    newcomer = add_node_home(devnet, "node-4", key)
    network.save_key("node-4", key)
    params = {"id": "node-4", "org": "org-4", "public_key": key.public.hex(), "address": newcomer.url}
    proposal = network.propose("validator.add", params)
    assert network.approve(proposal, "node-1", "node-2")["status"] == "open"
    assert network.approve(proposal, "node-3")["status"] == "executed"
    start = network.get_start(proposal)
    # Its node starts as a follower (its store knows only genesis), catches up, and restarts as a validator.
    devnet.start(newcomer.index)
    devnet.wait_until_up([newcomer.index], timeout=WAIT_S)
    approved = network.client.get(f"/v1/governance/proposals/{proposal}")["executed_height"]
    wait_for(lambda: network.status(4)["height"] >= approved, WAIT_S, "node-4 to catch up past the approval")
    assert network.status(4)["role"] == "follower"
    devnet.kill(newcomer.index)
    devnet.start(newcomer.index)
    devnet.wait_until_up([newcomer.index], timeout=WAIT_S)
    assert network.status(4)["role"] == "validator"
    reached = network.commit_past(start + INTERVAL, "added")
    assert len(network.signers(start - 1)) >= 3
    assert all(len(network.signers(h)) >= 4 for h in range(start, reached + 1))
    assert network.status(0)["validators"] == ["node-0", "node-1", "node-2", "node-3", "node-4"]
    wait_for(lambda: network.status(4)["voting"], WAIT_S, "node-4 to vote")
    reached = network.commit_past(reached + 2, "voting")
    assert network.status(4)["last_voted_height"] >= start

    # 3. node-1's key rotated: 4 of 5 approve, node-4 among them; node-1 restarts with the new key.
    rotated = PrivateKey.generate()
    start = network.decide(
        "validator.rotate", {"id": "node-1", "public_key": rotated.public.hex()}, "node-2", "node-3", "node-4"
    )
    network.commit_past(start - 1, "rotating")
    devnet.kill(1)
    rotated.save(devnet.node(1).home / KEY_FILE)
    network.save_key("node-1", rotated)
    devnet.start(1)
    devnet.wait_until_up([1], timeout=WAIT_S)
    reached = network.commit_past(start + INTERVAL, "rotated")
    wait_for(lambda: network.status(1)["voting"], WAIT_S, "node-1 to vote with its new key")
    network.commit_past(reached + 1, "voting-again")
    assert network.status(1)["last_voted_height"] > reached

    # 4. node-3 removed: it stops voting, the four others go on.
    start = network.decide("validator.remove", {"id": "node-3"}, "node-1", "node-2", "node-4")
    reached = network.commit_past(start + INTERVAL, "removed")
    assert all("node-3" not in network.signers(h) for h in range(start, reached + 1))
    assert not network.status(3)["voting"]
    assert network.status(3)["last_voted_height"] < start
    assert network.status(0)["validators"] == ["node-0", "node-1", "node-2", "node-4"]

    # 5. Every node's chain verifies across the changes, and so does a proof of a tx made after them.
    proven_tx = network.client.get(f"/v1/blocks/{reached}")["txs"][0]["id"]
    answer = httpx.get(
        f"{devnet.node(2).url}/v1/proofs/tx/{proven_tx}",
        headers={"authorization": f"Bearer {network.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    proof = answer.content
    devnet.stop_all()
    for node in devnet.nodes:
        report = omsnode_json("verify-chain", "--home", str(node.home))
        assert report["ok"], (node.index, report["failures"])
        assert report["height"] >= reached
    verify_proof_offline(devnet, proof, proven_tx, reached)


def verify_proof_offline(devnet: Devnet, proof: bytes, proven_tx: str, height: int) -> None:
    """With only the genesis file: the proof walks the three set changes and holds; a change of any of them
    makes it fail."""
    folder = devnet.root / "offline"
    folder.mkdir()
    genesis = folder / GENESIS_FILE
    shutil.copy(devnet.node(0).home / GENESIS_FILE, genesis)
    (folder / "tx.proof").write_bytes(proof)
    said = omsnode_json("verify-proof", str(folder / "tx.proof"), "--genesis", str(genesis), "--json")
    assert said["ok"] and said["tx_id"] == proven_tx and said["height"] == height
    assert said["validator_set_changes"] == 3 and "node-3" not in said["signers"]
    changes = json.loads(proof)["validator_set_changes"]
    middles = [proof.index(part.encode()) + len(part) // 2 for change in changes for part in change.values()]
    for position in middles:
        (folder / "tampered.proof").write_bytes(flip_bit(proof, position))
        refused = omsnode("verify-proof", str(folder / "tampered.proof"), "--genesis", str(genesis), check=False)
        assert refused.returncode == 1, position
