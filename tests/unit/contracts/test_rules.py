"""Unit tests of the OMS rules, one behaviour each, through the contract runtime."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import queries
from contracts.allocation import compute_distance_sq
from contracts.invoicing import compute_half_up, compute_lines
from contracts.lifecycle import is_allowed_transition
from contracts.numbering import compute_order_number, is_valid_order_number
from contracts.orders import MAX_IMPORT_ORDERS
from tests.helpers.contracts import CUSTOMER, Ledger, create, make_shop, ok, pay, receive, refused, stock


@pytest.fixture
def ledger() -> Ledger:
    return make_shop()


def test_order_number_has_a_check_digit_that_catches_a_typo() -> None:
    number = compute_order_number(1234, 7)
    assert is_valid_order_number(number)
    typo = number[:-3] + str((int(number[-3]) + 1) % 10) + number[-2:]
    assert not is_valid_order_number(typo)
    assert compute_order_number(1234, 7) != compute_order_number(1234, 8)


def test_order_reserves_stock_and_an_oversell_is_refused(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3}]))
    assert order["status"] == "allocated"
    assert stock(ledger, "WH1", "TEE")["available"] == 0
    refused(create(ledger, "B", [{"sku": "TEE", "qty": 1}]), "insufficient_stock")
    assert stock(ledger, "WH1", "TEE")["reserved"] == 3


def test_duplicate_external_reference_returns_the_existing_order(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    first = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    second = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    assert second == {"order_id": first["order_id"], "status": "allocated", "duplicate": True}
    assert stock(ledger, "WH1", "TEE")["reserved"] == 1


def test_customer_reference_must_be_a_hash(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    refused(create(ledger, "A", [{"sku": "TEE", "qty": 1}], customer_hash="alice@example.com"), "bad_payload")


def test_journal_sums_to_on_hand_and_answers_past_heights(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    height = ledger.height
    ok(ledger.submit("store-1", "stock.adjust", {"location": "WH1", "sku": "TEE", "delta": -2, "reason": "broken"}))
    entries = queries.list_journal(ledger.state, "WH1", "TEE")
    assert [e["kind"] for e in entries] == ["receipt", "adjustment"]
    assert sum(e["delta"] for e in entries) == stock(ledger, "WH1", "TEE")["on_hand"] == 3
    assert queries.get_stock_at(ledger.state, "WH1", "TEE", height)["on_hand"] == 5
    assert len(entries[0]["tx_id"]) == 64


def test_adjustment_needs_a_reason_and_cannot_oversell(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    refused(
        ledger.submit("store-1", "stock.adjust", {"location": "WH1", "sku": "TEE", "delta": -1, "reason": ""}),
        "bad_payload",
    )
    ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    adjust = {"location": "WH1", "sku": "TEE", "delta": -1, "reason": "lost"}
    refused(ledger.submit("store-1", "stock.adjust", adjust), "insufficient_stock")


def test_stock_count_reports_differences_without_changing_stock(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    receive(ledger, "WH1", "MUG", 2)
    count = {"location": "WH1", "counts": [{"sku": "TEE", "qty": 4}], "full": True}
    result = ok(ledger.submit("store-1", "stock.count", count))
    assert result["differences"] == [
        {"sku": "MUG", "ledger": 2, "counted": 0, "difference": -2},
        {"sku": "TEE", "ledger": 5, "counted": 4, "difference": -1},
    ]
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 5
    assert len(queries.get_count_reports(ledger.state, "WH1")) == 1


def test_a_lot_is_traced_from_receipt_through_transfer_to_shipment(ledger: Ledger) -> None:
    receive(ledger, "ST1", "TEE", 4, lot="LOT-9")
    transfer = {"from": "ST1", "to": "WH2", "lines": [{"sku": "TEE", "qty": 3}]}
    sent = ok(ledger.submit("store-1", "stock.transfer", transfer))
    ok(ledger.submit("store-1", "stock.transfer.accept", {"transfer_id": sent["transfer_id"]}))
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3}]))
    pay(ledger, order["order_id"])
    ok(ledger.submit("operator-1", "fulfilment.ship", {"fulfilment_id": order["fulfilments"][0], "carrier": "DHL"}))
    trace = queries.trace_lot(ledger.state, "LOT-9")
    assert [(e["location"], e["kind"], e["delta"]) for e in trace] == [
        ("ST1", "receipt", 4),
        ("ST1", "transfer_out", -3),
        ("WH2", "transfer_in", 3),
        ("WH2", "shipment", -3),
    ]


def test_single_location_with_everything_wins_over_a_split(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    receive(ledger, "WH2", "TEE", 2)
    receive(ledger, "WH2", "MUG", 2)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}, {"sku": "MUG", "qty": 1}]))
    fulfilments = queries.get_order(ledger.state, order["order_id"])["fulfilments"]  # type: ignore[index]
    assert [f["location"] for f in fulfilments] == ["WH2"]


def test_split_across_locations_respects_max_splits(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    receive(ledger, "WH2", "MUG", 2)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}, {"sku": "MUG", "qty": 2}]))
    assert order["fulfilments"] == [order["order_id"] + "-1", order["order_id"] + "-2"]
    ledger.set_config("allocation.max_splits", 1)
    refused(
        create(ledger, "B", [{"sku": "TEE", "qty": 0 + 1}, {"sku": "GIFT", "qty": 1}, {"sku": "MUG", "qty": 9}]),
        "insufficient_stock",
    )


def test_distance_breaks_a_priority_tie(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    receive(ledger, "WH2", "TEE", 2)
    near_wh1 = {"region": "NL", "lat": 52_100_000, "lon": 4_900_000}
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}], delivery=near_wh1))
    assert queries.get_order(ledger.state, order["order_id"])["fulfilments"][0]["location"] == "WH1"  # type: ignore[index]
    assert compute_distance_sq(52_000_000, 4_000_000, 52_000_000, 5_000_000) < 1_000_000**2


def location_payload(name: str, **fields: Any) -> dict[str, Any]:
    """A warehouse that ships online, near the shop's own."""
    return {"location": name, "type": "warehouse", "region": "NL", "lat": 52_000_000, "lon": 4_900_000, **fields}


def test_allocation_reads_only_the_locations_that_hold_the_skus(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    receive(ledger, "WH2", "MUG", 1)
    receive(ledger, "WH1", "MUG", 1)
    assert dict(ledger.state.scan("allocatable/")) == {"allocatable/MUG": ["WH1", "WH2"], "allocatable/TEE": ["WH1"]}
    ok(ledger.submit("store-1", "stock.safety", {"location": "WH2", "sku": "MUG", "qty": 1}))
    assert ledger.state.get("allocatable/MUG") == ["WH1"], "safety stock is not allocatable"
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    assert dict(ledger.state.scan("allocatable/")) == {"allocatable/MUG": ["WH1"]}, "all of it is reserved"
    ok(ledger.submit("channel-1", "order.cancel", {"order_id": order["order_id"]}))
    assert dict(ledger.state.scan("allocatable/")) == {"allocatable/MUG": ["WH1"], "allocatable/TEE": ["WH1"]}


def test_empty_locations_cost_an_order_nothing_and_an_organisation_registers_a_bounded_number() -> None:
    def order_steps(empty_locations: int) -> int:
        ledger = make_shop()
        receive(ledger, "WH1", "TEE", 5)
        network = ledger.network
        txs = [network.tx("store-1", "location.upsert", location_payload(f"E{i}")) for i in range(empty_locations)]
        assert all(receipt.ok for receipt in ledger.run_block(txs))
        ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
        return ledger.contracts.meter.used

    limit = make_shop().config["catalogue.max_locations_per_org"]
    assert order_steps(limit - 3) == order_steps(0), "org-0 had ST1, WH1 and WH2; the rest are empty"
    ledger = make_shop()
    txs = [ledger.network.tx("store-1", "location.upsert", location_payload(f"E{i}")) for i in range(limit - 3)]
    ledger.run_block(txs)
    receipt = ledger.submit("store-1", "location.upsert", location_payload("ONE-TOO-MANY"))
    refused(receipt, "too_many_locations")
    assert receipt["message"] == f"organisation org-0 has {limit} locations, the most it may register"
    ok(ledger.submit("store-1", "location.upsert", location_payload("E0", active=False)))
    ok(ledger.submit("operator-1", "location.upsert", location_payload("E1", org="org-1")))
    ok(ledger.submit("store-1", "location.upsert", location_payload("ONE-MORE")))
    refused(ledger.submit("store-1", "location.upsert", location_payload("ONE-TOO-MANY")), "too_many_locations")


def test_click_and_collect_is_served_by_the_pickup_store_first(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    receive(ledger, "ST1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}], pickup="ST1", delivery=None))
    locations = [f["location"] for f in queries.get_order(ledger.state, order["order_id"])["fulfilments"]]  # type: ignore[index]
    assert locations == ["ST1", "WH1"]
    refused(create(ledger, "B", [{"sku": "TEE", "qty": 1}], pickup="WH1", delivery=None), "pickup_not_allowed")


@pytest.mark.parametrize(
    ("setting", "value", "extra", "reason"),
    [
        ("review.max_order_amount", 1000, {}, "amount_over_limit"),
        ("review.max_line_qty", 1, {}, "qty_over_limit"),
        ("review.blocked_customers", [CUSTOMER], {}, "blocked_customer"),
        ("review.max_order_amount", 0, {"delivery": None}, "missing_delivery"),
    ],
)
def test_interception_rules_hold_the_order(
    ledger: Ledger, setting: str, value: Any, extra: dict[str, Any], reason: str
) -> None:
    receive(ledger, "WH1", "TEE", 5)
    ledger.set_config(setting, value)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}], **extra))
    assert order["status"] == "on_hold" and order["hold_reasons"] == [reason]
    assert stock(ledger, "WH1", "TEE")["reserved"] == 0


def test_price_mismatch_and_repeat_order_hold_and_operator_decides(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    ledger.set_config("review.repeat_window_ms", 60_000)
    held = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1, "unit_price": 999}]))
    assert held["hold_reasons"] == ["price_mismatch"]
    again = ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))
    assert again["hold_reasons"] == ["repeat_order"]
    refused(ledger.submit("channel-1", "order.approve", {"order_id": held["order_id"]}), "forbidden_role")
    assert ok(ledger.submit("operator-1", "order.approve", {"order_id": held["order_id"]}))["status"] == "allocated"
    assert ok(ledger.submit("operator-1", "order.reject", {"order_id": again["order_id"]}))["status"] == "cancelled"
    refused(ledger.submit("operator-1", "order.approve", {"order_id": held["order_id"]}), "invalid_transition")


def test_repeat_window_counts_the_orders_placed_while_it_is_on(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    assert ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))["hold_reasons"] == []
    assert list(ledger.state.scan("customer/")) == [], "with the window off no order time is kept"
    ledger.set_config("review.repeat_window_ms", 60_000)
    assert ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))["hold_reasons"] == []
    assert ok(create(ledger, "C", [{"sku": "TEE", "qty": 1}]))["hold_reasons"] == ["repeat_order"]


def test_unpaid_order_is_cancelled_by_block_time_and_its_stock_released(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    ledger.set_config("orders.unpaid_timeout_ms", 5_000)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    ok(ledger.submit("store-1", "stock.count", {"location": "WH1", "counts": [{"sku": "TEE", "qty": 2}]}))
    assert queries.get_order(ledger.state, order["order_id"])["status"] == "allocated"  # type: ignore[index]
    ledger.begin_block(advance_ms=5_000)
    view = queries.get_order(ledger.state, order["order_id"])
    assert view is not None and view["status"] == "cancelled" and view["history"][-1]["by"] == "ledger"
    assert stock(ledger, "WH1", "TEE")["available"] == 2


def test_paid_order_does_not_time_out(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    ledger.set_config("orders.unpaid_timeout_ms", 5_000)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    assert pay(ledger, order["order_id"])["status"] == "released"
    ledger.begin_block(advance_ms=60_000)
    assert queries.get_order(ledger.state, order["order_id"])["status"] == "released"  # type: ignore[index]


def test_declined_fulfilment_is_reallocated_elsewhere(ledger: Ledger) -> None:
    receive(ledger, "ST1", "MUG", 1)
    receive(ledger, "WH2", "MUG", 1)
    order = ok(create(ledger, "A", [{"sku": "MUG", "qty": 1}], pickup="ST1", delivery=None))
    result = ok(
        ledger.submit("store-1", "fulfilment.decline", {"fulfilment_id": order["fulfilments"][0], "reason": "broken"})
    )
    assert result["reallocated_to"] == [order["order_id"] + "-2"]
    assert stock(ledger, "ST1", "MUG")["reserved"] == 0 and stock(ledger, "WH2", "MUG")["reserved"] == 1


def test_backorder_is_allocated_by_the_ledger_once_stock_arrives(ledger: Ledger) -> None:
    ledger.set_config("allocation.unservable", "backorder")
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    assert order["status"] == "backordered" and order["backorder"] == [{"line": 0, "sku": "TEE", "qty": 2}]
    pay(ledger, order["order_id"])
    receive(ledger, "WH1", "TEE", 2)
    ledger.begin_block()
    view = queries.get_order(ledger.state, order["order_id"])
    assert view is not None and view["status"] == "released" and view["backorder"] == []
    assert view["fulfilments"][0]["location"] == "WH1" and view["fulfilments"][0]["status"] == "released"
    refused(ledger.submit("operator-1", "order.allocate", {"order_id": order["order_id"]}), "invalid_transition")


def test_virtual_goods_ship_at_once_on_payment_and_are_invoiced(ledger: Ledger) -> None:
    order = ok(create(ledger, "A", [{"sku": "GIFT", "qty": 2}]))
    assert pay(ledger, order["order_id"])["status"] == "delivered"
    invoices = queries.list_invoices(ledger.state, order["order_id"])
    assert [i["total"] for i in invoices] == [5000]
    assert queries.list_journal(ledger.state, "virtual")[0]["kind"] == "virtual_outbound"


def test_store_cannot_act_for_another_organisation(ledger: Ledger) -> None:
    payload = {"location": "FOREIGN", "type": "store", "region": "NL", "lat": 0, "lon": 0, "org": "org-9"}
    refused(ledger.submit("store-1", "location.upsert", payload), "forbidden")


def test_shipping_moves_stock_out_and_issues_invoice_per_shipment(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    receive(ledger, "WH2", "MUG", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}, {"sku": "MUG", "qty": 1}], shipping_charge=495))
    pay(ledger, order["order_id"])
    first, second = order["fulfilments"]
    refused(ledger.submit("operator-1", "fulfilment.deliver", {"fulfilment_id": first}), "invalid_transition")
    shipped = ok(
        ledger.submit("operator-1", "fulfilment.ship", {"fulfilment_id": first, "carrier": "DHL", "tracking": "T1"})
    )
    assert shipped["order_status"] == "partially_shipped"
    ok(ledger.submit("operator-1", "fulfilment.ship", {"fulfilment_id": second, "carrier": "DHL"}))
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 0
    invoices = queries.list_invoices(ledger.state, order["order_id"])
    first_skus = [line["sku"] for line in queries.get_order(ledger.state, order["order_id"])["fulfilments"][0]["lines"]]  # type: ignore[index]
    other = "TEE" if first_skus == ["MUG"] else "MUG"
    assert [[line["sku"] for line in i["lines"]] for i in invoices] == [[*first_skus, "shipping"], [other]]
    assert sum(i["total"] for i in invoices) == queries.get_order(ledger.state, order["order_id"])["total"]  # type: ignore[index]


def test_tax_is_rounded_half_up_per_line_or_per_invoice() -> None:
    assert compute_half_up(5, 10) == 1 and compute_half_up(4, 10) == 0
    items = [{"unit_price": 5, "qty": 1, "discount": 0, "tax_rate": 1000} for _ in range(3)]
    per_line = compute_lines(items, include_tax=False, per_invoice=False)
    per_invoice = compute_lines(items, include_tax=False, per_invoice=True)
    assert [line["tax"] for line in per_line] == [1, 1, 1]
    assert [line["tax"] for line in per_invoice] == [1, 1, 0]
    inclusive = compute_lines([{"unit_price": 1210, "qty": 1, "discount": 10, "tax_rate": 2100}], True, False)
    assert (inclusive[0]["net"], inclusive[0]["tax"], inclusive[0]["gross"]) == (
        992,
        208,
        1200,
    )


def test_return_credits_the_invoice_and_never_more_than_invoiced(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3, "discount": 100}]))
    pay(ledger, order["order_id"])
    fid = order["fulfilments"][0]
    ok(ledger.submit("operator-1", "fulfilment.ship", {"fulfilment_id": fid, "carrier": "DHL"}))
    refused(
        ledger.submit(
            "channel-1", "return.request", {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}]}
        ),
        "invalid_transition",
    )
    ok(ledger.submit("operator-1", "fulfilment.deliver", {"fulfilment_id": fid}))
    refused(
        ledger.submit(
            "channel-1", "return.request", {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 4}]}
        ),
        "not_returnable",
    )
    ret = ok(
        ledger.submit(
            "channel-1", "return.request", {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 3}]}
        )
    )
    received = ok(
        ledger.submit(
            "store-1", "return.receive", {"return_id": ret["return_id"], "location": "WH1", "condition": "damaged"}
        )
    )
    invoice, note = queries.list_invoices(ledger.state, order["order_id"])
    assert (
        note["credit_note"] and note["refers_to"] == invoice["number"] and received["credit_notes"] == [note["number"]]
    )
    assert note["total"] == invoice["total"] == 3 * 1999 - 100
    assert stock(ledger, "WH1", "TEE")["damaged"] == 3 and stock(ledger, "WH1", "TEE")["on_hand"] == 0
    refund = {"order_id": order["order_id"], "reference": "REF-1"}
    refused(ledger.submit("channel-1", "payment.refund", refund | {"amount": 10**6}), "over_refund")
    assert ok(ledger.submit("channel-1", "payment.refund", refund | {"amount": note["total"]}))["status"] == "refunded"
    refused(ledger.submit("operator-1", "invoice.reverse", {"number": invoice["number"], "reason": "x"}), "over_credit")


def test_wrong_invoice_is_reversed_and_reissued_never_edited(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    ok(ledger.submit("operator-1", "fulfilment.ship", {"fulfilment_id": order["fulfilments"][0], "carrier": "DHL"}))
    original = queries.list_invoices(ledger.state, order["order_id"])[0]
    ledger.set_config("tax.rates", {"standard": {"*": 1900}, "reduced": {"*": 900}, "zero": {"*": 0}})
    result = ok(ledger.submit("operator-1", "invoice.reverse", {"number": original["number"], "reason": "wrong rate"}))
    documents = {i["number"]: i for i in queries.list_invoices(ledger.state, order["order_id"])}
    assert documents[original["number"]] == original
    assert documents[result["credit_note"]]["total"] == original["total"]
    assert documents[result["reissued"]]["lines"][0]["tax_rate"] == 1900
    assert [d["seq"] for d in documents.values()] == [1, 2, 3]
    refused(
        ledger.submit("operator-1", "invoice.reverse", {"number": original["number"], "reason": "again"}),
        "already_reversed",
    )


def test_transition_table_refuses_skipping_states() -> None:
    assert is_allowed_transition("allocated", "paid")
    assert not is_allowed_transition("created", "shipped")
    assert not is_allowed_transition("cancelled", "allocated")


def test_an_import_places_each_order_on_its_own_with_a_number_of_its_own(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    first = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    orders = [
        {
            "external_ref": ref,
            "customer_hash": CUSTOMER,
            "currency": "EUR",
            "lines": [{"sku": "TEE", "qty": qty}],
            "delivery": {"region": "NL", "lat": 51_930_000, "lon": 4_900_000},
        }
        for ref, qty in (("B", 1), ("C", 2), ("A", 1), ("D", 1))
    ]
    result = ok(ledger.submit("channel-1", "order.import", {"orders": orders}))
    placed, oversold, duplicate, last = result["orders"]
    assert result["placed"] == 2 and duplicate == {
        "order_id": first["order_id"],
        "status": "allocated",
        "duplicate": True,
    }
    assert oversold["error"] == "insufficient_stock" and oversold["external_ref"] == "C"
    assert placed["order_id"] != last["order_id"] and all(
        map(is_valid_order_number, (placed["order_id"], last["order_id"]))
    )
    assert stock(ledger, "WH1", "TEE")["reserved"] == 3, (
        "the refused order's reservation was rolled back, the others kept"
    )
    assert compute_order_number(5, 1, 0) != compute_order_number(5, 1, 1) != compute_order_number(5, 1)


def test_an_import_of_the_most_orders_fits_its_step_budget(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1_000)
    orders = [
        {
            "external_ref": f"R{i}",
            "customer_hash": CUSTOMER,
            "currency": "EUR",
            "lines": [{"sku": "TEE", "qty": 1}],
            "delivery": {"region": "NL", "lat": 51_930_000, "lon": 4_900_000},
        }
        for i in range(MAX_IMPORT_ORDERS)
    ]
    result = ok(ledger.submit("channel-1", "order.import", {"orders": orders}))
    assert result["placed"] == MAX_IMPORT_ORDERS and {r["status"] for r in result["orders"]} == {"allocated"}
    refused(ledger.submit("channel-1", "order.import", {"orders": orders * 2}), "bad_payload")
