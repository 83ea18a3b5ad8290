"""A lot followed from its receipt at a warehouse, through a transfer to another organisation's store, to the
order that sold it and the customer's return, on a real node running in this process."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.genesis import Genesis, Identity
from ledger.keys import PrivateKey
from ledger.proof import decode_proof, verify_tx_proof
from ledger.state_proof import decode_state_proof, verify_state_proof
from node.api.app import create_app
from node.config import CLIENTS_DIR, GENESIS_FILE
from node.home import create_network
from node.tokens import SCOPES
from omsclient import Keyring
from tests.helpers.api import bearer, make_token
from tests.unit.node.test_metrics import commit


@dataclasses.dataclass
class Shop:
    home: Path
    client: TestClient
    keyring: Keyring
    genesis: Genesis

    def send(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        status = commit(self.client, self.keyring.signer(signer).sign_tx(kind, payload, **self.window()))
        assert status["status"] == "committed", status
        return dict(status["receipt"]["result"])

    def window(self) -> dict[str, Any]:
        return {"chain_id": self.genesis.chain_id, "valid_until": self.client.get("/v1/status").json()["height"] + 50}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    """A single-validator node whose genesis also holds a franchisee, `org-1`, with its store identity `store-2`."""
    home = tmp_path / "node-0"
    genesis = create_network([home], [0], home / CLIENTS_DIR)
    key = PrivateKey.generate()
    key.save(home / CLIENTS_DIR / "store-2.key")
    genesis = dataclasses.replace(
        genesis,
        organisations=(*genesis.organisations, {"id": "org-1", "name": "Franchisee"}),
        clients=(*genesis.clients, Identity("store-2", "org-1", key.public, frozenset({"store"}))),
    )
    genesis.save(home / GENESIS_FILE)
    with TestClient(create_app(home), headers=bearer(make_token(home))) as client:
        yield Shop(home, client, Keyring(home / CLIENTS_DIR, genesis.chain_id, lambda: 0), genesis)


def place(location: str, org: str) -> dict[str, Any]:
    return {"location": location, "type": "store", "org": org, "region": "NL", "lat": 52_000_000, "lon": 4_900_000}


def test_a_lot_is_traced_from_receipt_through_a_transfer_and_a_sale_to_its_return(shop: Shop) -> None:
    for sku in ("TEE", "MUG"):
        shop.send("operator-1", "sku.upsert", {"sku": sku, "price": 1999, "currency": "EUR", "tax_class": "standard"})
    shop.send("operator-1", "location.upsert", {**place("WH1", "org-0"), "type": "warehouse"})
    shop.send("operator-1", "location.upsert", place("SHOP", "org-1"))
    lines = [{"sku": "TEE", "qty": 2, "lot": "L1"}, {"sku": "MUG", "qty": 4, "lot": "L1"}]
    shop.send("store-1", "stock.receive", {"location": "WH1", "lines": lines})
    transfer = shop.send("store-1", "stock.transfer", {"from": "WH1", "to": "SHOP", "lines": [lines[0]]})
    shop.send("store-2", "stock.transfer.accept", {"transfer_id": transfer["transfer_id"]})
    order = {
        "external_ref": "A-1",
        "customer_hash": hashlib.sha256(b"A-1").hexdigest(),
        "currency": "EUR",
        "payment_terms": "on_account",
        "lines": [{"sku": "TEE", "qty": 1}],
        "delivery": {"region": "NL", "lat": 52_000_000, "lon": 4_900_000},
    }
    order_id = shop.send("channel-1", "order.create", order)["order_id"]
    fulfilment = shop.client.get(f"/v1/orders/{order_id}").json()["fulfilments"][0]["fulfilment_id"]
    shop.send("store-2", "fulfilment.pick", {"fulfilment_id": fulfilment})
    shop.send("store-2", "fulfilment.ship", {"fulfilment_id": fulfilment, "carrier": "PostNL", "tracking": "T1"})
    shop.send("operator-1", "fulfilment.deliver", {"fulfilment_id": fulfilment})
    request = {"order_id": order_id, "lines": [{"sku": "TEE", "qty": 1}], "reference": "RMA-1"}
    returned = shop.send("channel-1", "return.request", request)
    shop.send("store-2", "return.receive", {"return_id": returned["return_id"], "location": "SHOP"})

    trace = shop.client.get("/v1/trace/L1", params={"sku": "TEE", "proof": "true"}).json()
    steps = [(s["kind"], s["location"], s["org"], s["delta"], s["order_id"]) for s in trace["items"]]
    assert steps == [
        ("receipt", "WH1", "org-0", 2, None),
        ("transfer_out", "WH1", "org-0", -2, None),
        ("transfer_in", "SHOP", "org-1", 2, None),
        ("shipment", "SHOP", "org-1", -1, order_id),
        ("return_in", "SHOP", "org-1", 1, order_id),
    ]
    assert trace["lot"] == "L1" and trace["next_cursor"] is None
    heights = [s["height"] for s in trace["items"]]
    assert heights == sorted(heights) and len(set(heights)) == len(heights)
    for step in trace["items"]:
        proven = verify_tx_proof(decode_proof(step["proof"].encode()), shop.genesis)
        assert (proven.tx.id.hex(), proven.height) == (step["tx_id"], step["height"])

    every_sku = shop.client.get("/v1/trace/L1").json()["items"]
    assert [(s["sku"], s["kind"]) for s in every_sku][:1] == [("MUG", "receipt")] and len(every_sku) == 6
    assert all(s["proof"] is None for s in every_sku)
    first = shop.client.get("/v1/trace/L1", params={"sku": "TEE", "limit": 2}).json()
    rest = shop.client.get("/v1/trace/L1", params={"sku": "TEE", "cursor": first["next_cursor"]}).json()
    assert [s["seq"] for s in first["items"] + rest["items"]] == [s["seq"] for s in trace["items"]]

    franchisee = bearer(make_token(shop.home, "store-2", SCOPES))
    seen = shop.client.get("/v1/trace/L1", params={"sku": "TEE"}, headers=franchisee).json()["items"]
    assert [s["kind"] for s in seen] == ["transfer_in", "shipment", "return_in"]
    assert shop.client.get("/v1/trace/NO-SUCH-LOT").json()["items"] == []

    invoice = shop.client.get(f"/v1/orders/{order_id}").json()["invoices"][0]
    for path, kind in (
        (f"/v1/proofs/order/{order_id}", "order.create"),
        (f"/v1/proofs/invoice/{invoice}", "fulfilment.ship"),
        ("/v1/proofs/movement/SHOP/TEE/1", "stock.transfer.accept"),
    ):
        answer = shop.client.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/json", answer.text
        assert verify_tx_proof(decode_proof(answer.content), shop.genesis).tx.kind == kind
    receipt_tx = trace["items"][0]["tx_id"]
    assert shop.client.get(f"/v1/proofs/tx/{receipt_tx}").status_code == 200
    assert shop.client.get(f"/v1/proofs/tx/{receipt_tx}", headers=franchisee).status_code == 404
    assert shop.client.get("/v1/proofs/movement/WH1/TEE/1", headers=franchisee).status_code == 404
    assert shop.client.get("/v1/proofs/tx/not-hex").json()["error"] == "invalid_transaction"


def test_state_proofs_of_an_order_and_a_stock_position_hold_with_only_the_genesis(shop: Shop) -> None:
    shop.send("operator-1", "sku.upsert", {"sku": "TEE", "price": 1999, "currency": "EUR", "tax_class": "standard"})
    shop.send("operator-1", "location.upsert", {**place("WH1", "org-0"), "type": "warehouse"})
    shop.send("store-1", "stock.receive", {"location": "WH1", "lines": [{"sku": "TEE", "qty": 5, "lot": "L1"}]})
    order = {
        "external_ref": "S-1",
        "customer_hash": hashlib.sha256(b"S-1").hexdigest(),
        "currency": "EUR",
        "payment_terms": "on_account",
        "lines": [{"sku": "TEE", "qty": 2}],
        "delivery": {"region": "NL", "lat": 52_000_000, "lon": 4_900_000},
    }
    order_id = shop.send("channel-1", "order.create", order)["order_id"]

    answer = shop.client.get(f"/v1/proofs/state/order/{order_id}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json", answer.text
    proven = verify_state_proof(decode_state_proof(answer.content), shop.genesis)
    served = shop.client.get(f"/v1/orders/{order_id}").json()
    assert proven.key == f"order/{order_id}" and proven.value["status"] == served["status"]
    assert proven.height == shop.client.get("/v1/status").json()["height"]

    stock = verify_state_proof(
        decode_state_proof(shop.client.get("/v1/proofs/state/stock/WH1/TEE").content), shop.genesis
    )
    assert stock.key == "stock/WH1/TEE" and stock.value["on_hand"] == 5 and stock.value["reserved"] == 2

    franchisee = bearer(make_token(shop.home, "store-2", SCOPES))
    assert shop.client.get("/v1/proofs/state/stock/WH1/TEE", headers=franchisee).status_code == 404
    assert shop.client.get("/v1/proofs/state/order/no-such-order").json()["error"] == "not_found"
    assert shop.client.get("/v1/proofs/state/stock/WH1/MUG").status_code == 404
