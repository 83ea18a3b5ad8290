"""A node's part in personal data: it seals alike when a request is retried, reads only what its organisation
may, and grants only what its organisation took to an organisation that fulfils it."""

from __future__ import annotations

import pytest

from contracts.runtime import read_membership
from ledger.keys import PrivateKey
from ledger.personal import NoEncryptionKey
from node.personal import PersonalErased, PersonalNotFound, make_grant, read_personal, seal_for
from tests.helpers.builders import CHAIN_ID, org_encryption_key
from tests.helpers.contracts import create, make_shop, ok
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
