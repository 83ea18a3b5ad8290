"""Membership changed by governance: the quorum of member organisations, and each membership action."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.governance import compute_quorum
from contracts.runtime import read_membership
from ledger.keys import PrivateKey
from ledger.membership import Membership, compute_epoch_start
from tests.helpers.builders import make_network
from tests.helpers.contracts import Ledger, make_oms_network, ok, refused

INTERVAL = 50
"""The checkpoint interval of the test genesis (the default)."""


def make_ledger() -> Ledger:
    """Four organisations `org-0`..`org-3`, each with its validator `node-<i>`."""
    return Ledger(network=make_oms_network(validators=4))


def new_key(ledger: Ledger, ident: str) -> str:
    key = PrivateKey.from_seed_text(f"members/{ident}")
    ledger.network.keys[ident] = key
    return key.public.hex()


def membership(ledger: Ledger) -> Membership:
    return read_membership(ledger.state, ledger.network.genesis)


def propose(ledger: Ledger, signer: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    return ledger.submit(signer, "governance.propose", {"action": action, "params": params})


def approve(ledger: Ledger, signer: str, proposal: str) -> dict[str, Any]:
    return ledger.submit(signer, "governance.approve", {"proposal": proposal})


def decide(ledger: Ledger, action: str, params: dict[str, Any], approvers: list[str]) -> dict[str, Any]:
    """Propose as `approvers[0]`, approved by the others in turn; the last receipt's result."""
    result = ok(propose(ledger, approvers[0], action, params))
    for signer in approvers[1:]:
        result = ok(approve(ledger, signer, result["proposal"]))
    return result


@pytest.mark.parametrize(("orgs", "quorum"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (7, 5)])
def test_the_quorum_is_two_thirds_of_the_organisations_rounded_up(orgs: int, quorum: int) -> None:
    assert compute_quorum(orgs) == quorum


def test_an_organisation_is_added_by_three_of_four_then_changes_need_four_of_five() -> None:
    ledger = make_ledger()
    first = ok(propose(ledger, "node-0", "org.add", {"org": "org-4", "name": "Depot"}))
    assert (first["approvals"], first["quorum"], first["status"]) == (1, 3, "open")
    assert ok(approve(ledger, "node-1", first["proposal"]))["status"] == "open"
    assert not membership(ledger).has_org("org-4")
    assert ok(approve(ledger, "node-2", first["proposal"]))["status"] == "executed"
    assert membership(ledger).org_ids() == ["org-0", "org-1", "org-2", "org-3", "org-4"]
    result = decide(ledger, "org.add", {"org": "org-5", "name": "Five"}, ["node-0", "node-1", "node-2"])
    assert (result["approvals"], result["quorum"], result["status"]) == (3, 4, "open")
    assert ok(approve(ledger, "node-3", result["proposal"]))["status"] == "executed"


def test_a_non_member_cannot_propose_nor_approve() -> None:
    ledger = make_ledger()
    new_key(ledger, "stranger")
    refused(propose(ledger, "stranger", "org.add", {"org": "x", "name": "X"}), "unknown_signer")
    first = ok(propose(ledger, "node-0", "org.add", {"org": "x", "name": "X"}))
    refused(approve(ledger, "stranger", first["proposal"]), "unknown_signer")
    refused(approve(ledger, "store-1", first["proposal"]), "forbidden_role")


def test_a_second_approval_of_one_organisation_counts_once() -> None:
    ledger = make_ledger()
    first = ok(propose(ledger, "node-0", "org.add", {"org": "x", "name": "X"}))
    refused(approve(ledger, "operator-1", first["proposal"]), "already_approved")
    assert ok(approve(ledger, "node-1", first["proposal"]))["approvals"] == 2


def test_an_organisation_approves_with_its_operator_key() -> None:
    ledger = make_ledger()
    operator = new_key(ledger, "operator-2")
    params = {"id": "operator-2", "org": "org-2", "public_key": operator, "roles": ["operator"]}
    decide(ledger, "client.add", params, ["node-0", "node-1", "node-2"])
    first = ok(propose(ledger, "operator-2", "org.add", {"org": "x", "name": "X"}))
    assert ok(approve(ledger, "operator-1", first["proposal"]))["approvals"] == 2


def test_a_removed_organisations_approval_no_longer_counts() -> None:
    ledger = make_ledger()
    pending = ok(propose(ledger, "node-3", "org.add", {"org": "x", "name": "X"}))
    ok(approve(ledger, "node-0", pending["proposal"]))
    decide(ledger, "org.remove", {"org": "org-3"}, ["node-0", "node-1", "node-2"])
    refused(approve(ledger, "node-3", pending["proposal"]), "not_a_member")
    result = ok(approve(ledger, "node-1", pending["proposal"]))
    assert (result["approvals"], result["quorum"], result["status"]) == (2, 2, "executed")


def test_a_client_is_added_then_revoked() -> None:
    ledger = make_ledger()
    key = new_key(ledger, "till-9")
    params = {"id": "till-9", "org": "org-1", "public_key": key, "roles": ["store"]}
    refused(ledger.submit("till-9", "stock.count", {}), "unknown_signer")
    decide(ledger, "client.add", params, ["node-0", "node-1", "node-2"])
    assert membership(ledger).client("till-9") is not None
    assert ledger.submit("till-9", "stock.count", {})["code"] != "unknown_signer"
    decide(ledger, "client.revoke", {"id": "till-9"}, ["node-0", "node-1", "node-2"])
    refused(ledger.submit("till-9", "stock.count", {}), "unknown_signer")


def test_validator_changes_take_effect_after_the_next_checkpoint_boundary() -> None:
    ledger = make_ledger()
    key = new_key(ledger, "node-4")
    decide(ledger, "org.add", {"org": "org-4", "name": "Depot"}, ["node-0", "node-1", "node-2"])
    params = {"id": "node-4", "org": "org-4", "public_key": key, "address": "http://127.0.0.1:27004"}
    decide(ledger, "validator.add", params, ["node-0", "node-1", "node-2", "node-3"])
    approved = ledger.height
    start = compute_epoch_start(approved, INTERVAL)
    assert start == INTERVAL + 1
    now = membership(ledger)
    assert now.validator_set(start - 1).ids() == ["node-0", "node-1", "node-2", "node-3"]
    assert now.validator_set(start).ids() == ["node-0", "node-1", "node-2", "node-3", "node-4"]
    assert (now.validator_set(start).quorum, now.validator_set(start).f) == (4, 1)
    assert now.next_set_hash(start - 1) == now.validator_set(start).hash()
    assert now.next_set_hash(start) == b""
    refused(ledger.submit("node-4", "governance.approve", {"proposal": "00" * 32}), "unknown_signer")
    rotated = new_key(ledger, "node-1-new")
    approvers = ["node-0", "node-1", "node-2", "node-3"]
    decide(ledger, "validator.rotate", {"id": "node-1", "public_key": rotated}, approvers)
    decide(ledger, "validator.remove", {"id": "node-3"}, approvers)
    later = membership(ledger).validator_set(start)
    assert later.ids() == ["node-0", "node-1", "node-2", "node-4"]
    assert later.keys["node-1"].hex() == rotated
    assert len(membership(ledger).epochs) == 2  # changes before one boundary share its epoch


def test_a_change_approved_after_the_boundary_makes_a_new_epoch() -> None:
    ledger = make_ledger()
    decide(ledger, "validator.remove", {"id": "node-3"}, ["node-0", "node-1", "node-2"])
    while ledger.height < INTERVAL:
        ledger.begin_block()
    decide(ledger, "validator.remove", {"id": "node-2"}, ["node-0", "node-1", "node-2"])
    epochs = membership(ledger).epochs
    assert [e.from_height for e in epochs] == [1, INTERVAL + 1, 2 * INTERVAL + 1]
    assert [e.validators.n for e in epochs] == [4, 3, 2]


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("validator.add", {"id": "node-0", "org": "org-0", "public_key": "11" * 32}, "member_exists"),
        ("validator.add", {"id": "node-9", "org": "org-9", "public_key": "11" * 32}, "unknown_member"),
        ("validator.add", {"id": "node-9", "org": "org-0", "public_key": "zz" * 32}, "bad_payload"),
        ("validator.add", {"id": "a/b", "org": "org-0", "public_key": "11" * 32}, "bad_payload"),
        ("validator.add", {"id": "node-9", "org": "org-0", "public_key": "11" * 32, "x": 1}, "bad_payload"),
        ("validator.remove", {"id": "store-1"}, "unknown_member"),
        ("validator.rotate", {"id": "node-1", "public_key": None}, "bad_payload"),
        ("org.add", {"org": "org-1", "name": "again"}, "member_exists"),
        ("org.remove", {"org": "org-9"}, "unknown_member"),
        ("client.add", {"id": "c", "org": "org-0", "public_key": "11" * 32, "roles": ["validator"]}, "bad_payload"),
        ("client.add", {"id": "c", "org": "org-0", "public_key": "11" * 32, "roles": []}, "bad_payload"),
        ("client.revoke", {"id": "node-0"}, "unknown_member"),
        ("member.add", {"id": "c"}, "bad_payload"),
    ],
)
def test_a_bad_membership_proposal_is_refused_and_changes_nothing(
    action: str, params: dict[str, Any], code: str
) -> None:
    ledger = make_ledger()
    refused(propose(ledger, "node-0", action, params), code)
    assert membership(ledger) is membership(Ledger(network=ledger.network))


def test_the_last_validator_cannot_be_removed() -> None:
    ledger = Ledger(network=make_network(validators=1))
    refused(propose(ledger, "node-0", "validator.remove", {"id": "node-0"}), "bad_payload")


def test_an_organisation_added_with_an_encryption_key_can_have_personal_data_sealed_to_it() -> None:
    ledger = make_ledger()
    key = "ab" * 32
    for bad in ("AB" * 32, "ab" * 31, 7):
        params = {"org": "org-4", "name": "Depot", "encryption_key": bad}
        refused(propose(ledger, "node-0", "org.add", params), "bad_payload")
    decide(ledger, "org.add", {"org": "org-4", "name": "Depot", "encryption_key": key}, ["node-0", "node-1", "node-2"])
    assert membership(ledger).encryption_key("org-4") == bytes.fromhex(key)
    assert membership(ledger).encryption_key("org-9") is None
