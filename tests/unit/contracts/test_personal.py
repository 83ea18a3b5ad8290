"""An order's personal data on the ledger: only sealed, granted to a fulfilling organisation once, erased for good."""

from __future__ import annotations

from typing import Any

from contracts import keys
from ledger.personal import EncryptionKey, check_personal, open_personal, seal_personal, unwrap_key, wrap_key
from ledger.tx import MAX_TX_WINDOW, make_tx
from tests.helpers.contracts import create, make_shop, ok, refused

SHIP_TO = {
    "name": "Anna de Vries",
    "address_lines": ["Keizersgracht 1", "2nd floor"],
    "city": "Amsterdam",
    "postcode": "1015 CJ",
    "region": "NH",
    "country": "NL",
    "phone": "+31 20 555 0101",
    "email": "anna@example.org",
}

ORG_KEYS = {"org-0": EncryptionKey.generate(), "org-1": EncryptionKey.generate()}


def sealed_to(*orgs: str) -> dict[str, Any]:
    data = check_personal(SHIP_TO, "leave at the door")
    return dict(seal_personal(data, {org: ORG_KEYS[org].public for org in orgs}))


def placed_at_foreign() -> tuple[Any, str, dict[str, Any]]:
    """A shop whose only stock of TEE is at FOREIGN (org-1), and an order of `channel-1` (org-0) sealed to org-0."""
    ledger = make_shop()
    ok(ledger.submit("operator-1", "stock.receive", {"location": "FOREIGN", "lines": [{"sku": "TEE", "qty": 5}]}))
    sealed = sealed_to("org-0")
    order_id = ok(create(ledger, "web-1", [{"sku": "TEE", "qty": 1}], personal=sealed))["order_id"]
    return ledger, order_id, sealed


def grant(ledger: Any, order_id: str, org: str, by: str = "node-0") -> dict[str, Any]:
    record = ledger.state.get(keys.personal_key(order_id))
    commitment = bytes.fromhex(record["commitment"])
    data_key = unwrap_key({"org": "org-0", **record["keys"]["org-0"]}, commitment, ORG_KEYS["org-0"])
    wrap = wrap_key(data_key, commitment, org, ORG_KEYS["org-1"].public)
    payload = {"order_id": order_id, "org": org, "ephemeral": wrap["ephemeral"], "wrapped": wrap["wrapped"]}
    return dict(ledger.submit(by, "order.grant_personal", payload))


def test_the_ledger_keeps_only_the_sealed_record_and_the_channel_org_reads_it() -> None:
    ledger, order_id, sealed = placed_at_foreign()
    record = ledger.state.get(keys.personal_key(order_id))
    assert record["org"] == "org-0" and record["erased_ms"] is None
    assert set(record["keys"]) == {"org-0"} and record["ciphertext"] == sealed["ciphertext"]
    commitment = bytes.fromhex(record["commitment"])
    data_key = unwrap_key({"org": "org-0", **record["keys"]["org-0"]}, commitment, ORG_KEYS["org-0"])
    assert open_personal(record["ciphertext"], record["commitment"], data_key)["ship_to"] == SHIP_TO


def test_ship_to_in_clear_is_no_field_of_an_order() -> None:
    ledger = make_shop()
    base = {"customer_hash": "0" * 64, "currency": "EUR", "lines": [{"sku": "GIFT", "qty": 1}]}
    key = ledger.network.keys["channel-1"]
    chain = ledger.network.genesis.chain_id
    for n, extra in enumerate(({"ship_to": SHIP_TO}, {"notes": "call first"})):
        payload = {"external_ref": f"web-{n}", **base, **extra}
        [receipt] = ledger.run_block(
            [make_tx(chain, "order.create", "channel-1", 100 + n, payload, key, valid_until=MAX_TX_WINDOW)]
        )
        assert (receipt.ok, receipt.code) == (False, "bad_payload")


def test_a_record_not_sealed_to_the_channel_org_is_refused() -> None:
    ledger = make_shop()
    refused(create(ledger, "web-4", [{"sku": "GIFT", "qty": 1}], personal=sealed_to("org-1")), "bad_payload")


def test_the_same_order_sent_again_with_a_new_seal_is_a_duplicate_not_another_order() -> None:
    ledger, order_id, _ = placed_at_foreign()
    again = ok(create(ledger, "web-1", [{"sku": "TEE", "qty": 1}], personal=sealed_to("org-0")))
    assert again == {"order_id": order_id, "status": again["status"], "duplicate": True}


def test_a_grant_goes_only_from_the_ordering_org_to_a_fulfilling_org_once() -> None:
    ledger, order_id, _ = placed_at_foreign()
    refused(grant(ledger, order_id, "org-1", by="node-1"), "forbidden")
    refused(grant(ledger, order_id, "org-0"), "not_fulfilling")
    assert ok(grant(ledger, order_id, "org-1")) == {"order_id": order_id, "org": "org-1"}
    refused(grant(ledger, order_id, "org-1"), "already_granted")
    record = ledger.state.get(keys.personal_key(order_id))
    commitment = bytes.fromhex(record["commitment"])
    data_key = unwrap_key({"org": "org-1", **record["keys"]["org-1"]}, commitment, ORG_KEYS["org-1"])
    assert open_personal(record["ciphertext"], record["commitment"], data_key)["notes"] == "leave at the door"


def test_erasure_destroys_every_wrapped_key_and_the_ciphertext_and_stops_grants() -> None:
    ledger, order_id, sealed = placed_at_foreign()
    ok(grant(ledger, order_id, "org-1"))
    refused(ledger.submit("store-1", "order.erase_personal", {"order_id": order_id}), "forbidden_role")
    assert ok(ledger.submit("operator-1", "order.erase_personal", {"order_id": order_id}))["erased"] is True
    record = ledger.state.get(keys.personal_key(order_id))
    assert record["keys"] == {} and record["ciphertext"] == "" and record["erased_ms"] is not None
    assert record["commitment"] == sealed["commitment"]
    refused(ledger.submit("operator-1", "order.erase_personal", {"order_id": order_id}), "personal_data_erased")


def test_an_order_without_personal_data_has_nothing_to_grant_or_erase() -> None:
    ledger = make_shop()
    order_id = ok(create(ledger, "web-5", [{"sku": "GIFT", "qty": 1}]))["order_id"]
    assert ledger.state.get(keys.personal_key(order_id)) is None
    refused(ledger.submit("operator-1", "order.erase_personal", {"order_id": order_id}), "no_personal_data")
