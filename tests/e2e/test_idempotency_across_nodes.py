"""One `Idempotency-Key` is one action on every node of a 4-node devnet of real processes.

The same identity, key and body sent to node 0 and then to node 1 make one
order and one stock receipt, answered alike (the same tx, receipt and
resource), whether node 0's tx was already committed or still pending when
node 1 was asked; another body under the key is 409 `idempotency_conflict`
on node 2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devnet.network import Devnet
from node.tokens import SCOPES, TokenStore, make_token

pytestmark = [pytest.mark.e2e]

CHANNEL_TOKEN = make_token()
"""An API token of `channel-1`, accepted by every node."""


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet.create(tmp_path_factory.mktemp("idempotency") / "net", 4)
    for node in devnet.nodes:
        TokenStore(node.home).create(devnet.genesis, "channel-1", SCOPES, "channel", token=CHANNEL_TOKEN)
    devnet.start_all()
    try:
        devnet.wait_until_up(timeout=180)
        stock_a_store(devnet)
        yield devnet
    finally:
        devnet.stop_all()


def stock_a_store(devnet: Devnet) -> None:
    with devnet.client(0, timeout=60) as client:
        keyring = devnet.keyring(client)
        place = {"location": "LIS-1", "type": "store", "region": "PT", "lat": 38_722_000, "lon": -8_600_000}
        for kind, payload in (
            ("sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
            ("location.upsert", place),
            ("stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 50}]}),
        ):
            done = client.wait_tx(client.submit(keyring.sign("operator-1", kind, payload)), timeout=120)
            assert done["status"] == "committed", done


def post(devnet: Devnet, index: int, path: str, token: str, key: str, body: Any, **params: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}", "idempotency-key": key}
    return httpx.post(f"{devnet.node(index).url}{path}", json=body, params=params, headers=headers, timeout=120)


def get(devnet: Devnet, index: int, path: str, **params: Any) -> Any:
    answer = httpx.get(
        f"{devnet.node(index).url}{path}", params=params, headers={"authorization": f"Bearer {devnet.token}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def order(ref: str, qty: int = 1) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "currency": "EUR",
        "customer_hash": hashlib.sha256(ref.encode()).hexdigest(),
        "payment_terms": "on_account",
        "lines": [{"sku": "TEE-M", "qty": qty}],
        "delivery": {"region": "PT", "lat": 38_700_000, "lon": -8_600_000},
    }


def on_hand(devnet: Devnet, index: int) -> int:
    row: int = get(devnet, index, "/v1/inventory/LIS-1/TEE-M")["on_hand"]
    return row


def test_the_same_order_sent_to_two_nodes_is_one_order_with_one_answer(devnet: Devnet) -> None:
    first = post(devnet, 0, "/v1/orders", CHANNEL_TOKEN, "order-1", order("IDEM-1"), wait="commit")
    assert first.status_code == 200 and first.json()["status"] == "committed", first.text
    again = post(devnet, 1, "/v1/orders", CHANNEL_TOKEN, "order-1", order("IDEM-1"), wait="commit")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    other = post(devnet, 2, "/v1/orders", CHANNEL_TOKEN, "order-1", order("IDEM-1", qty=2), wait="commit")
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict", other.text
    found = get(devnet, 3, "/v1/orders", channel="channel-1", external_ref="IDEM-1")["items"]
    assert [item["order_id"] for item in found] == [first.json()["resource"]["order_id"]]


def test_a_receipt_sent_to_a_second_node_while_the_first_is_pending_is_received_once(devnet: Devnet) -> None:
    before = on_hand(devnet, 0)
    receipt = {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 7}]}
    pending = post(devnet, 0, "/v1/inventory/receipts", devnet.token, "receipt-1", receipt)
    assert pending.status_code in (200, 202), pending.text
    second = post(devnet, 1, "/v1/inventory/receipts", devnet.token, "receipt-1", receipt, wait="commit")
    first = post(devnet, 0, "/v1/inventory/receipts", devnet.token, "receipt-1", receipt, wait="commit")
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json()["tx_id"] == second.json()["tx_id"]
    assert first.json()["receipt"] == second.json()["receipt"] and first.json()["status"] == "committed"
    assert on_hand(devnet, 0) == on_hand(devnet, 1) == before + 7
    other = post(devnet, 2, "/v1/inventory/receipts", devnet.token, "receipt-1", receipt | {"document": "X"})
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict", other.text
