"""A node's part in personal data: it seals alike when a request is retried, reads only what its organisation
may, and grants only what its organisation took to an organisation that fulfils it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from contracts.runtime import read_membership
from ledger.keys import PrivateKey
from ledger.personal import NoEncryptionKey
from node.personal import PersonalErased, PersonalGrants, PersonalNotFound, make_grant, read_personal, seal_for
from tests.helpers.builders import CHAIN_ID, org_encryption_key
from tests.helpers.contracts import create, make_shop, ok
from tests.helpers.executed import ExecutedLedger
from tests.unit.contracts.test_personal import SHIP_TO

NODE_KEY = PrivateKey.from_seed_text("node-personal")


def test_a_retried_request_seals_the_same_record_and_a_new_one_another() -> None:
    membership = read_membership(make_shop().state, make_shop().network.genesis)
    order = {"external_ref": "w-1", "ship_to": SHIP_TO, "notes": "hi"}
    first = seal_for(membership, "org-0", dict(order), NODE_KEY, ("channel-1", "key-1"))
    assert "ship_to" not in first and "notes" not in first
    assert seal_for(membership, "org-0", dict(order), NODE_KEY, ("channel-1", "key-1")) == first
    assert seal_for(membership, "org-0", dict(order), NODE_KEY, ("channel-1", "key-2")) != first
    assert seal_for(membership, "org-0", dict(order), NODE_KEY) != first
    with pytest.raises(NoEncryptionKey):
        seal_for(membership, "org-9", dict(order), NODE_KEY)


def test_a_node_reads_what_its_org_may_and_grants_only_what_it_took_to_who_fulfils() -> None:
    ledger = make_shop()
    ok(ledger.submit("operator-1", "stock.receive", {"location": "FOREIGN", "lines": [{"sku": "TEE", "qty": 5}]}))
    order_id = ok(create(ledger, "web-1", [{"sku": "TEE", "qty": 1}], ship_to=SHIP_TO))["order_id"]
    org0, org1 = (org_encryption_key(CHAIN_ID, org) for org in ("org-0", "org-1"))
    state, membership = ledger.state, read_membership(ledger.state, ledger.network.genesis)
    assert read_personal(state, order_id, "org-0", org0)[0]["ship_to"] == SHIP_TO
    with pytest.raises(PersonalNotFound):
        read_personal(state, order_id, "org-1", org1)
    assert make_grant(state, membership, order_id, "org-1", "org-1", org1) is None  # org-1 did not take it
    grant = make_grant(state, membership, order_id, "org-1", "org-0", org0)
    assert grant is not None and grant["org"] == "org-1"
    ok(ledger.submit("node-0", "order.grant_personal", grant))
    assert read_personal(ledger.state, order_id, "org-1", org1)[0]["ship_to"] == SHIP_TO
    assert make_grant(ledger.state, membership, order_id, "org-1", "org-0", org0) is None  # granted already
    ok(ledger.submit("operator-1", "order.erase_personal", {"order_id": order_id}))
    for org, key in (("org-0", org0), ("org-1", org1)):
        with pytest.raises(PersonalErased):
            read_personal(ledger.state, order_id, org, key)


def test_the_grant_task_grants_each_fulfilling_org_once_from_the_feed(tmp_path: Path) -> None:
    ledger = ExecutedLedger(tmp_path / "data")
    try:
        for upsert in (
            {"sku": "TEE", "price": 1999, "currency": "EUR", "tax_class": "standard"},
            {"location": "FOREIGN", "type": "warehouse", "region": "NL", "org": "org-1", "lat": 0, "lon": 0},
        ):
            ok(ledger.submit("operator-1", "sku.upsert" if "sku" in upsert else "location.upsert", upsert))
        ok(ledger.submit("operator-1", "stock.receive", {"location": "FOREIGN", "lines": [{"sku": "TEE", "qty": 5}]}))
        order = {"external_ref": "w-1", "customer_hash": "0" * 64, "currency": "EUR", "ship_to": SHIP_TO}
        order |= {"delivery": {"region": "NL"}, "lines": [{"sku": "TEE", "qty": 1}]}
        order_id = ok(ledger.submit("channel-1", "order.create", order))["order_id"]
        mempool: set[bytes] = set()
        node = SimpleNamespace(
            store=ledger.store,
            config=SimpleNamespace(org="org-0"),
            executor=ledger.executor,
            mempool=mempool,
            genesis=ledger.network.genesis,
            node_id="node-0",
            key=ledger.network.keys["node-0"],
            suggest_valid_until=lambda: ledger.store.height + 10,
        )
        grants = PersonalGrants(node, org_encryption_key(CHAIN_ID, "org-0"))  # type: ignore[arg-type]
        [tx] = grants.step()
        assert (tx.kind, tx.signer) == ("order.grant_personal", "node-0")
        assert (tx.payload["order_id"], tx.payload["org"]) == (order_id, "org-1")
        mempool.add(tx.id)
        assert grants.step() == []  # waiting in the mempool: not sent again
        mempool.clear()
        [again] = grants.step()  # it left the mempool uncommitted: sent again
        ok(ledger.commit(again))
        assert grants.step() == [] and grants.wanted == {}
        org1 = org_encryption_key(CHAIN_ID, "org-1")
        assert read_personal(ledger.state, order_id, "org-1", org1)[0]["ship_to"] == SHIP_TO
    finally:
        ledger.close()
