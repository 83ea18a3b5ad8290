"""One real node process: the whole tx path over HTTP, clear refusals, and verify-chain on tampering."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import plyvel
import pytest

from omsclient import tx_id
from tests.e2e.conftest import SingleNode, omsnode, omsnode_json

pytestmark = [pytest.mark.e2e]


def setup_catalogue(node: SingleNode) -> None:
    assert (
        node.send(
            "operator-1", "sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}
        )["status"]
        == "committed"
    )
    assert (
        node.send(
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
        )["status"]
        == "committed"
    )
    assert (
        node.send("store-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 5}]})["status"]
        == "committed"
    )


def order(ref: str, qty: int) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "currency": "EUR",
        "customer_hash": hashlib.sha256(ref.encode()).hexdigest(),
        "lines": [{"sku": "TEE-M", "qty": qty}],
        "delivery": {"region": "PT", "lat": 38_700_000, "lon": -9_100_000},
    }


def test_signed_tx_to_block_to_state_to_query(single_node: SingleNode) -> None:
    setup_catalogue(single_node)
    done = single_node.send("channel-1", "order.create", order("web-1", 2))
    assert done["status"] == "committed", done
    order_id = done["receipt"]["result"]["order_id"]
    got = single_node.client.get(f"/v1/orders/{order_id}")
    assert got["order_id"] == order_id and got["history"]
    (row,) = single_node.client.get("/v1/inventory", location="LIS-1", sku="TEE-M")["items"]
    assert (row["on_hand"], row["reserved"], row["available"]) == (5, 2, 3)
    refused = single_node.send("channel-1", "order.create", order("web-2", 4))
    assert refused["status"] == "rejected" and refused["reason"].startswith("insufficient_stock")
    (row,) = single_node.client.get("/v1/inventory", location="LIS-1", sku="TEE-M")["items"]
    assert row["available"] == 3
    block = single_node.client.get(f"/v1/blocks/{done['height']}")
    assert done["receipt"]["tx_id"] in [tx["id"] for tx in block["txs"]]
    assert done["receipt"] in block["receipts"]
    assert len(block["certificate"]["signatures"]) == 1
    status = single_node.client.status()
    assert set(status) >= {"node_id", "height", "head_hash", "view", "primary", "validators"}
    assert status["height"] >= 5 and status["primary"] == "node-0"


def test_bad_input_gets_a_clear_4xx_and_loses_nothing(single_node: SingleNode) -> None:
    wire = single_node.keyring.sign("channel-1", "order.create", order("web-9", 1))
    http = httpx.Client(base_url=single_node.url, headers={"authorization": f"Bearer {single_node.token}"})
    bad_sig = http.post("/v1/tx", json={**wire, "signature": "00" * 64})
    assert bad_sig.status_code == 400 and bad_sig.json()["error"] == "invalid_signature"
    with_float = http.post("/v1/tx", json={**wire, "payload": {**wire["payload"], "shipping_charge": 1.5}})
    assert with_float.status_code == 400 and "float" in with_float.json()["message"]
    stranger = http.post("/v1/tx", json={**wire, "signer": "mallory"})
    assert stranger.status_code == 400 and stranger.json()["error"] == "unknown_signer"
    wrong_role = single_node.keyring.sign(
        "channel-1", "sku.upsert", {"sku": "X", "price": 1, "currency": "EUR", "tax_class": "standard"}
    )
    answer = http.post("/v1/tx", json=wrong_role)
    assert answer.status_code == 400 and "may not send" in answer.json()["message"]
    missing = http.post("/v1/tx", json={"kind": "order.create"})
    assert missing.status_code == 422 and missing.json()["error"] == "invalid_request"
    assert http.get("/v1/tx/" + "ab" * 32).status_code == 404
    assert http.get("/v1/blocks/999").json()["error"] == "not_found"
    good = http.post("/v1/tx", json=wire)
    assert good.status_code == 202 and good.json()["tx_id"] == tx_id(wire)
    assert single_node.client.wait_tx(tx_id(wire))["status"] in ("committed", "rejected")
    assert http.get("/openapi.json").json()["paths"]["/v1/tx"]["post"]["summary"]
    http.close()


def test_verify_chain_passes_then_reports_each_tampering(single_node: SingleNode) -> None:
    setup_catalogue(single_node)
    single_node.send("channel-1", "order.create", order("web-3", 1))
    single_node.stop()
    home = str(single_node.home)
    report = omsnode_json("verify-chain", "--home", home)
    assert report["ok"] and report["height"] >= 4
    db_path = single_node.home / "data"

    def tamper(prefix: bytes, index: int, offset: int) -> tuple[bytes, bytes]:
        db = plyvel.DB(str(db_path))
        key, value = list(db.iterator(prefix=prefix))[index]
        changed = bytearray(value)
        changed[offset % len(changed)] ^= 0x01
        db.put(key, bytes(changed))
        db.close()
        return key, value

    def restore(key: bytes, value: bytes) -> None:
        db = plyvel.DB(str(db_path))
        db.put(key, value)
        db.close()

    for prefix, index, offset, expected_height in (
        (b"b/", 2, -40, 3),  # a byte inside block 3 (in its last tx)
        (b"b/", 1, 30, 2),  # a byte in block 2's header
        (b"r/", 0, -3, 1),  # a stored receipt
        (b"s/", 0, -1, 0),  # a world-state entry
    ):
        key, value = tamper(prefix, index, offset)
        result = omsnode("verify-chain", "--home", home, "--json", check=False)
        assert result.returncode == 1, result.stdout
        failures = __import__("json").loads(result.stdout)["failures"]
        assert failures and failures[0]["height"] == expected_height, (prefix, failures)
        restore(key, value)
    assert omsnode_json("verify-chain", "--home", home)["ok"]


def test_sigkill_while_committing_restarts_consistent(single_node: SingleNode) -> None:
    setup_catalogue(single_node)
    txs = [
        single_node.keyring.sign(
            "store-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 1}]}
        )
        for _ in range(300)
    ]
    single_node.client.submit_many(txs)
    single_node.stop(kill=True)
    single_node.start()
    height_after_restart = single_node.client.status()["height"]
    single_node.stop()
    report = omsnode_json("verify-chain", "--home", str(single_node.home))
    assert report["ok"] and report["height"] == height_after_restart
