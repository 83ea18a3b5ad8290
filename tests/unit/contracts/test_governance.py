"""Contract versions pinned on the ledger, and governance proposals approved by a quorum of organisations."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from contracts import ContractSet, ContractVersionMismatch, load_contracts
from contracts.context import BlockContext
from contracts.governance import compute_quorum
from contracts.runtime import CONTRACTS_DIR
from ledger.block import Receipt
from ledger.state import MemoryState, StateView
from ledger.tx import Tx
from tests.helpers.builders import Network, make_network

FIXTURES = Path(__file__).parent / "fixtures_runtime"


class Chain:
    """Blocks executed one after another on one in-memory state, as a node would commit them."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.base = MemoryState()
        self.height = 0

    def run(self, contracts: ContractSet, txs: list[Tx]) -> list[Receipt]:
        """Execute the next block; its writes are committed only if it executes."""
        view = StateView(self.base)
        height = self.height + 1
        receipts = contracts.execute_block(
            view, txs, BlockContext(height, 1_700_000_000_000 + height, self.net.genesis)
        )
        for key, value in view.writes().items():
            if value is None:
                self.base.entries.pop(key, None)
            else:
                self.base.entries[key] = value
        self.height = height
        return receipts

    def get(self, key: str) -> object:
        return StateView(self.base).get(key)


def load_counter(*search_path: Path) -> ContractSet:
    return load_contracts(("governance", "counter"), search_path=(*search_path, FIXTURES, CONTRACTS_DIR))


@pytest.fixture
def new_version(tmp_path: Path) -> tuple[ContractSet, str]:
    """The counter contract with an edited source, and that source's sha256."""
    source = (FIXTURES / "counter.py").read_bytes() + b"\nVERSION = 2\n"
    (tmp_path / "counter.py").write_bytes(source)
    return load_counter(tmp_path), hashlib.sha256(source).hexdigest()


def activation(module: str, digest: str, from_height: int) -> dict[str, object]:
    return {"action": "contract.activate", "params": {"module": module, "sha256": digest, "from_height": from_height}}


def test_the_running_sources_are_pinned_at_the_first_block() -> None:
    contracts = load_counter()
    chain = Chain(make_network())
    chain.run(contracts, [])
    for name in ("governance", "counter", "counter_store"):
        assert chain.get(f"contract/{name}") == {"hash": contracts.versions()[name], "since_height": 1}
    chain.run(contracts, [])
    assert chain.get("contract/counter") == {"hash": contracts.versions()["counter"], "since_height": 1}


def test_a_node_running_other_source_refuses_the_block_and_says_why(new_version: tuple[ContractSet, str]) -> None:
    edited, edited_hash = new_version
    pinned = load_counter()
    chain = Chain(make_network())
    chain.run(pinned, [])
    before = dict(chain.base.entries)
    with pytest.raises(ContractVersionMismatch) as mismatch:
        chain.run(edited, [])
    assert (mismatch.value.module, mismatch.value.height) == ("counter", 2)
    assert mismatch.value.expected == pinned.versions()["counter"]
    assert mismatch.value.local == edited_hash
    message = str(mismatch.value)
    assert "'counter'" in message and pinned.versions()["counter"] in message and edited_hash in message
    assert chain.base.entries == before and chain.height == 1


def test_a_pinned_module_missing_here_stops_the_node_too() -> None:
    chain = Chain(make_network())
    chain.run(load_counter(), [])
    with pytest.raises(ContractVersionMismatch, match="no such module"):
        chain.run(load_contracts(("governance",)), [])


def test_activation_needs_a_quorum_of_organisations_and_takes_effect_at_from_height(
    new_version: tuple[ContractSet, str],
) -> None:
    edited, edited_hash = new_version
    net = make_network(validators=4)
    old = load_counter()
    chain = Chain(net)
    propose = net.tx("node-0", "governance.propose", activation("counter", edited_hash, 5))
    receipts = chain.run(old, [propose, net.tx("node-1", "governance.approve", {"proposal": propose.id.hex()})])
    assert [r.result for r in receipts] == [
        {"proposal": propose.id.hex(), "approvals": 1, "quorum": 3, "status": "open"},
        {"proposal": propose.id.hex(), "approvals": 2, "quorum": 3, "status": "open"},
    ]
    assert "next" not in chain.get("contract/counter")  # type: ignore[operator]
    receipts = chain.run(old, [net.tx("node-2", "governance.approve", {"proposal": propose.id.hex()})])
    assert receipts[0].result["status"] == "executed"
    old_hash = old.versions()["counter"]
    assert chain.get("contract/counter") == {
        "hash": old_hash,
        "since_height": 1,
        "next": {"hash": edited_hash, "since_height": 5},
    }
    chain.run(old, [])
    with pytest.raises(ContractVersionMismatch):
        chain.run(edited, [])
    chain.run(old, [])
    assert chain.height == 4
    with pytest.raises(ContractVersionMismatch) as mismatch:
        chain.run(old, [])
    assert (mismatch.value.expected, mismatch.value.local) == (edited_hash, old_hash)
    chain.run(edited, [])
    assert chain.get("contract/counter") == {"hash": edited_hash, "since_height": 5}


def test_approvals_are_counted_per_organisation_not_per_validator() -> None:
    net = make_network(validators=4)
    validators = tuple(dataclasses.replace(v, org="org-0") if v.id == "node-1" else v for v in net.genesis.validators)
    organisations = tuple(o for o in net.genesis.organisations if o["id"] != "org-1")
    net.genesis = dataclasses.replace(net.genesis, validators=validators, organisations=organisations)
    contracts = load_counter()
    chain = Chain(net)
    change = {"action": "config.set", "params": {"key": "step_budget", "value": 1000}}
    propose = net.tx("node-0", "governance.propose", change)
    same_org = net.tx("node-1", "governance.approve", {"proposal": propose.id.hex()})
    other_org = net.tx("node-2", "governance.approve", {"proposal": propose.id.hex()})
    late = net.tx("node-3", "governance.approve", {"proposal": propose.id.hex()})
    receipts = chain.run(contracts, [propose, same_org, other_org, late])
    assert compute_quorum(3) == 2
    assert [r.code for r in receipts] == ["ok", "already_approved", "ok", "proposal_closed"]
    assert receipts[2].result == {"proposal": propose.id.hex(), "approvals": 2, "quorum": 2, "status": "executed"}
    assert chain.get("config") == {"step_budget": 1000}


def test_an_activation_not_approved_before_its_height_expires() -> None:
    net = make_network(validators=4)
    contracts = load_counter()
    chain = Chain(net)
    propose = net.tx("node-0", "governance.propose", activation("counter", "ab" * 32, 3))
    chain.run(contracts, [propose, net.tx("node-1", "governance.approve", {"proposal": propose.id.hex()})])
    chain.run(contracts, [])
    receipts = chain.run(contracts, [net.tx("node-2", "governance.approve", {"proposal": propose.id.hex()})])
    assert receipts[0].code == "proposal_expired"
    assert "next" not in chain.get("contract/counter")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("signer", "kind", "payload", "code"),
    [
        ("store-1", "governance.propose", activation("counter", "ab" * 32, 9), "forbidden_role"),
        ("node-0", "governance.propose", {"action": "contract.delete", "params": {}}, "bad_payload"),
        ("node-0", "governance.propose", activation("counter", "AB" * 32, 9), "bad_payload"),
        ("node-0", "governance.propose", activation("counter", "ab" * 32, 1), "bad_payload"),
        ("node-0", "governance.propose", {"action": "config.set", "params": {"key": "", "value": 1}}, "bad_payload"),
        ("node-0", "governance.approve", {"proposal": "00" * 32}, "unknown_proposal"),
    ],
)
def test_a_malformed_governance_tx_is_rejected_and_changes_nothing(
    signer: str, kind: str, payload: dict[str, object], code: str
) -> None:
    net = make_network(validators=4)
    chain = Chain(net)
    receipts = chain.run(load_counter(), [net.tx(signer, kind, payload)])
    assert receipts[0].code == code
    assert [k for k in chain.base.entries if not k.startswith((b"contract/", b"counter/"))] == []
