"""An `order.import` of N orders does what the same N orders sent as `order.create` txs in one block do.

Hypothesis draws a stock level at each location and a list of orders (lines,
delivery or pickup, payment terms; some sent again under the same reference,
as the same order or as another one). Two ledgers start from one shop: one
runs a block of one `order.create` per order, the other a block of one
`order.import` of them all. Each order must get the same answer (its result,
or its refusal's code and message) and both ledgers must hold the same state
once ids are set aside: an order's number says where its tx stood in the
block (`numbering.compute_order_number`), and a history step names its tx,
so order numbers are read as the external reference they were placed under
and tx ids as one placeholder. Everything else, stock, reservations,
fulfilments, journal, capacity and indexes alike, must be equal.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import decode
from ledger.state import MemoryState
from tests.helpers.contracts import CUSTOMER, Ledger, make_shop

SHOP = make_shop()
"""The shop both ledgers of an example start from (its entries copied, never changed)."""

TX_ID = "<tx>"
"""What a tx id reads as once ids are set aside."""

LINES = st.lists(
    st.fixed_dictionaries({"sku": st.sampled_from(["TEE", "MUG", "GIFT"]), "qty": st.integers(1, 3)}),
    min_size=1,
    max_size=3,
)

ORDERS = st.lists(
    st.fixed_dictionaries(
        {
            "ref": st.integers(0, 5),
            "lines": LINES,
            "pickup": st.sampled_from([None, "ST1", "FOREIGN"]),
            "payment_terms": st.sampled_from(["prepaid", "on_account"]),
        }
    ),
    min_size=1,
    max_size=8,
)
"""Orders by reference number (a reference drawn twice is sent twice, with the same content or not)."""


def make_payload(order: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "external_ref": f"web-{order['ref']}",
        "customer_hash": CUSTOMER,
        "currency": "EUR",
        "lines": order["lines"],
        "payment_terms": order["payment_terms"],
    }
    if order["pickup"] is None:
        payload["delivery"] = {"region": "NL", "lat": 51_930_000, "lon": 4_900_000}
    else:
        payload["pickup"] = order["pickup"]
    return payload


def copy_shop() -> Ledger:
    return Ledger(
        network=SHOP.network,
        contracts=SHOP.contracts,
        base=MemoryState(dict(SHOP.base.entries)),
        height=SHOP.height,
        time_ms=SHOP.time_ms,
    )


def set_ids_aside(value: Any, order_ids: dict[str, str]) -> Any:
    """`value` with each order number read as `<order ref>` and each tx id (32 bytes) as `TX_ID`."""
    if isinstance(value, dict):
        return {set_ids_aside(key, order_ids): set_ids_aside(item, order_ids) for key, item in value.items()}
    if isinstance(value, list):
        return [set_ids_aside(item, order_ids) for item in value]
    if isinstance(value, bytes) and len(value) == 32:
        return TX_ID
    if isinstance(value, str) and order_ids:
        return re.sub("|".join(map(re.escape, order_ids)), lambda found: order_ids[found.group(0)], value)
    return value


def read_state(ledger: Ledger, order_ids: dict[str, str]) -> dict[str, Any]:
    """Every entry of the ledger's state (contract pins aside), decoded, with ids set aside."""
    return {
        set_ids_aside(key.decode(), order_ids): set_ids_aside(decode(raw), order_ids)
        for key, raw in ledger.base.entries.items()
        if not key.startswith(b"contract/")
    }


@settings(max_examples=25, deadline=None)
@given(
    stocked=st.lists(st.integers(0, 6), min_size=3, max_size=3),
    orders=ORDERS,
)
def test_an_import_places_its_orders_as_single_orders_would(stocked: list[int], orders: list[dict[str, Any]]) -> None:
    network = SHOP.network
    lines = [{"sku": sku, "qty": qty} for sku, qty in (("TEE", stocked[0]), ("MUG", stocked[1])) if qty]
    receipts = [
        network.tx("store-1", "stock.receive", {"location": location, "lines": lines, "document": f"PO-{location}"})
        for location, qty in zip(("ST1", "WH1", "WH2"), stocked, strict=True)
        if qty and lines
    ]
    payloads = [make_payload(order) for order in orders]
    singly, imported = copy_shop(), copy_shop()
    for ledger in (singly, imported):
        if receipts:
            assert all(receipt.ok for receipt in ledger.run_block(receipts))

    single_receipts = singly.run_block([network.tx("channel-1", "order.create", payload) for payload in payloads])
    [import_receipt] = imported.run_block([network.tx("channel-1", "order.import", {"orders": payloads})])

    assert import_receipt.ok, import_receipt
    answers = import_receipt.result["orders"]
    assert len(answers) == len(payloads)
    order_ids: dict[str, str] = {}
    for payload, receipt, answer in zip(payloads, single_receipts, answers, strict=True):
        if not receipt.ok:
            assert (answer["error"], answer["message"]) == (receipt.code, receipt.message)
            continue
        order_ids[receipt.result["order_id"]] = order_ids[answer["order_id"]] = f"<{payload['external_ref']}>"
        assert set_ids_aside(answer, order_ids) == set_ids_aside(receipt.result, order_ids)
    placed = sum(1 for receipt in single_receipts if receipt.ok and receipt.result["duplicate"] is False)
    assert import_receipt.result["placed"] == placed
    assert read_state(imported, order_ids) == read_state(singly, order_ids)
