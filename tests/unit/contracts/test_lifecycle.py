"""The order lifecycle made complete: each test reproduces a way an order got stuck or money stopped adding up."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import queries
from tests.helpers.contracts import Ledger, create, get_order, make_shop, ok, pay, receive, refused, stock


@pytest.fixture
def ledger() -> Ledger:
    return make_shop()


def ship(ledger: Ledger, fulfilment_id: str, deliver: bool = True) -> dict[str, Any]:
    shipped = ok(ledger.submit("operator-1", "fulfilment.ship", {"fulfilment_id": fulfilment_id, "carrier": "DHL"}))
    if deliver:
        ok(ledger.submit("operator-1", "fulfilment.deliver", {"fulfilment_id": fulfilment_id}))
    return shipped


def fulfilment_at(ledger: Ledger, order_id: str, location: str) -> str:
    return next(f["fulfilment_id"] for f in get_order(ledger, order_id)["fulfilments"] if f["location"] == location)


def documents(ledger: Ledger, order_id: str) -> tuple[int, int]:
    """(invoiced, credited) totals of an order."""
    found = queries.list_invoices(ledger.state, order_id)
    invoiced = sum(d["total"] for d in found if not d["credit_note"])
    return invoiced, sum(d["total"] for d in found if d["credit_note"])


def refund(ledger: Ledger, order_id: str, amount: int, **extra: Any) -> dict[str, Any]:
    payload = {"order_id": order_id, "amount": amount, "reference": f"REF-{ledger.height}"} | extra
    return ledger.submit("channel-1", "payment.refund", payload)


def test_a_prepaid_order_paid_while_held_is_released_when_approved(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    ledger.set_config("review.max_order_amount", 1000)
    held = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    assert held["status"] == "on_hold"
    pay(ledger, held["order_id"])
    assert ok(ledger.submit("operator-1", "order.approve", {"order_id": held["order_id"]}))["status"] == "released"
    ledger.begin_block(advance_ms=10**8)
    assert get_order(ledger, held["order_id"])["status"] == "released"


def test_an_order_in_review_does_not_time_out_and_its_payment_clock_starts_on_approval(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    ledger.set_config("review.max_order_amount", 1000)
    ledger.set_config("orders.unpaid_timeout_ms", 5_000)
    held = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    ledger.begin_block(advance_ms=60_000)
    assert get_order(ledger, held["order_id"])["status"] == "on_hold"
    ok(ledger.submit("operator-1", "order.approve", {"order_id": held["order_id"]}))
    ledger.begin_block(advance_ms=5_000)
    assert get_order(ledger, held["order_id"])["status"] == "cancelled"
    assert stock(ledger, "WH1", "TEE")["reserved"] == 0


def test_a_zero_total_order_is_paid_by_definition(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    ledger.set_config("orders.unpaid_timeout_ms", 5_000)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1, "discount": 1999}]))
    assert order["total"] == 0 and order["status"] == "released"
    ledger.begin_block(advance_ms=60_000)
    ship(ledger, order["fulfilments"][0])
    assert get_order(ledger, order["order_id"])["status"] == "delivered"
    assert ok(ledger.submit("channel-1", "order.complete", {"order_id": order["order_id"]}))["status"] == "completed"


@pytest.mark.parametrize("mode", ["shipment", "order"])
def test_an_order_with_one_line_shipped_and_one_declined_cancels_the_rest_is_invoiced_and_completes(
    ledger: Ledger, mode: str
) -> None:
    ledger.set_config("allocation.unservable", "backorder")
    ledger.set_config("invoicing.mode", mode)
    receive(ledger, "WH1", "TEE", 1)
    receive(ledger, "WH2", "MUG", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}, {"sku": "MUG", "qty": 1}], shipping_charge=495))
    order_id = order["order_id"]
    pay(ledger, order_id)
    ship(ledger, fulfilment_at(ledger, order_id, "WH1"))
    ok(ledger.submit("store-1", "fulfilment.decline", {"fulfilment_id": fulfilment_at(ledger, order_id, "WH2")}))
    assert get_order(ledger, order_id)["status"] == "backordered"
    cancelled = ok(ledger.submit("channel-1", "order.cancel", {"order_id": order_id, "reason": "out of stock"}))
    assert cancelled["status"] == "delivered" and cancelled["cancelled"] == 899
    assert cancelled["refund_due"] == 899
    assert documents(ledger, order_id) == (order["total"] - 899, 0)
    refused(ledger.submit("channel-1", "order.complete", {"order_id": order_id}), "unsettled")
    ok(refund(ledger, order_id, 899))
    assert ok(ledger.submit("channel-1", "order.complete", {"order_id": order_id}))["status"] == "completed"


def test_a_paid_order_ships_what_is_allocated_and_new_stock_sources_its_backorder(ledger: Ledger) -> None:
    ledger.set_config("allocation.unservable", "backorder")
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}, {"sku": "MUG", "qty": 2}]))
    order_id = order["order_id"]
    assert order["status"] == "backordered"
    pay(ledger, order_id)
    ship(ledger, fulfilment_at(ledger, order_id, "WH1"))
    assert get_order(ledger, order_id)["backorder"] == [{"line": 1, "sku": "MUG", "qty": 2}]
    receive(ledger, "WH2", "MUG", 5)
    ledger.begin_block()
    view = get_order(ledger, order_id)
    assert view["backorder"] == [] and view["status"] == "partially_shipped"
    ship(ledger, fulfilment_at(ledger, order_id, "WH2"))
    assert get_order(ledger, order_id)["status"] == "delivered"
    assert documents(ledger, order_id) == (order["total"], 0)


def test_backorders_are_sourced_again_oldest_first_a_bounded_batch_per_block(ledger: Ledger) -> None:
    ledger.set_config("allocation.unservable", "backorder")
    ledger.set_config("allocation.resource_batch", 2)
    orders = [ok(create(ledger, f"B{i}", [{"sku": "MUG", "qty": 1}], payment_terms="on_account")) for i in range(5)]
    receive(ledger, "WH1", "MUG", 4)

    def waiting() -> list[str]:
        return [o["order_id"] for o in orders if get_order(ledger, o["order_id"])["backorder"]]

    ledger.begin_block()
    assert waiting() == [o["order_id"] for o in orders[2:]]
    ledger.begin_block()
    ledger.begin_block()
    assert waiting() == [orders[4]["order_id"]]
    assert stock(ledger, "WH1", "MUG")["available"] == 0


def test_safety_stock_is_never_allocated(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    ok(ledger.submit("store-1", "stock.safety", {"location": "WH1", "sku": "TEE", "qty": 2}))
    refused(create(ledger, "A", [{"sku": "TEE", "qty": 2}]), "insufficient_stock")
    assert ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))["status"] == "allocated"


def test_a_paid_order_with_a_gift_card_cancels_what_has_not_shipped(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "GIFT", "qty": 1}, {"sku": "TEE", "qty": 1}], shipping_charge=495))
    pay(ledger, order["order_id"])
    cancelled = ok(ledger.submit("channel-1", "order.cancel", {"order_id": order["order_id"]}))
    assert cancelled["status"] == "delivered", "the gift card was delivered"
    assert cancelled["cancelled"] == 1999 + 495 == cancelled["refund_due"], "no goods shipped: no shipping charge"
    assert stock(ledger, "WH1", "TEE")["reserved"] == 0
    refused(ledger.submit("channel-1", "order.cancel", {"order_id": order["order_id"]}), "already_shipped")
    ok(refund(ledger, order["order_id"], 1999 + 495))
    assert ok(ledger.submit("channel-1", "order.complete", {"order_id": order["order_id"]}))["status"] == "completed"


def test_cancelling_the_goods_before_payment_cancels_the_shipping_charge_of_a_gift_card_order(ledger: Ledger) -> None:
    receive(ledger, "WH1", "MUG", 1)
    order = ok(create(ledger, "A", [{"sku": "GIFT", "qty": 2}, {"sku": "MUG", "qty": 1}], shipping_charge=395))
    cancelled = ok(
        ledger.submit("channel-1", "order.cancel", {"order_id": order["order_id"], "lines": [{"line": 1, "qty": 1}]})
    )
    assert cancelled["cancelled"] == 899 + 395
    assert pay(ledger, order["order_id"])["status"] == "delivered"
    assert ok(ledger.submit("channel-1", "order.complete", {"order_id": order["order_id"]}))["status"] == "completed"


def test_a_virtual_line_is_never_returned_into_stock(ledger: Ledger) -> None:
    order = ok(create(ledger, "A", [{"sku": "GIFT", "qty": 1}]))
    pay(ledger, order["order_id"])
    request = {"order_id": order["order_id"], "lines": [{"sku": "GIFT", "qty": 1}]}
    refused(ledger.submit("channel-1", "return.request", request), "not_returnable")


def test_partial_cancellation_by_line_and_quantity_before_shipment(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    receive(ledger, "WH1", "MUG", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3, "discount": 100}, {"sku": "MUG", "qty": 1}]))
    order_id = order["order_id"]
    cancel = {"order_id": order_id, "lines": [{"line": 0, "qty": 2}]}
    cancelled = ok(ledger.submit("channel-1", "order.cancel", cancel))
    assert cancelled["status"] == "allocated" and cancelled["cancelled"] == (3 * 1999 - 100) * 2 // 3
    assert stock(ledger, "WH1", "TEE")["reserved"] == 1
    refused(ledger.submit("channel-1", "order.cancel", cancel), "not_cancellable")
    assert pay(ledger, order_id)["captured"] == order["total"] - cancelled["cancelled"]
    ship(ledger, order["fulfilments"][0])
    assert documents(ledger, order_id) == (order["total"] - cancelled["cancelled"], 0)
    assert ok(ledger.submit("channel-1", "order.complete", {"order_id": order_id}))["status"] == "completed"


def test_prices_excluding_tax_invoice_what_was_charged_however_the_order_is_split(ledger: Ledger) -> None:
    ledger.set_config("tax.prices_include_tax", False)
    receive(ledger, "WH1", "TEE", 1)
    receive(ledger, "WH2", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2, "discount": 1}]))
    assert len(order["fulfilments"]) == 2 and order["total"] == 4836
    pay(ledger, order["order_id"])
    for fulfilment_id in order["fulfilments"]:
        ship(ledger, fulfilment_id)
    assert documents(ledger, order["order_id"]) == (order["total"], 0)


def test_a_tax_rate_change_before_shipment_does_not_change_the_invoice(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    ledger.set_config("tax.rates", {"standard": {"*": 2300}, "reduced": {"*": 900}, "zero": {"*": 0}})
    ship(ledger, order["fulfilments"][0])
    [invoice] = queries.list_invoices(ledger.state, order["order_id"])
    assert invoice["total"] == order["total"] and invoice["lines"][0]["tax_rate"] == 2100


def test_refunds_pay_back_credit_notes_and_only_a_full_refund_makes_an_order_refunded(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3}], shipping_charge=495))
    order_id = order["order_id"]
    pay(ledger, order_id)
    ship(ledger, order["fulfilments"][0])
    request = {"order_id": order_id, "lines": [{"sku": "TEE", "qty": 1}]}
    first = ok(ledger.submit("channel-1", "return.request", request))
    ok(ledger.submit("store-1", "return.receive", {"return_id": first["return_id"], "location": "WH1"}))
    refused(refund(ledger, order_id, order["total"]), "over_refund")
    assert ok(refund(ledger, order_id, 1))["status"] == "returned"
    assert ok(refund(ledger, order_id, 1998))["refund_due"] == 0
    second = ok(ledger.submit("channel-1", "return.request", request | {"lines": [{"sku": "TEE", "qty": 2}]}))
    received = ok(ledger.submit("store-1", "return.receive", {"return_id": second["return_id"], "location": "WH1"}))
    assert len(received["credit_notes"]) == 1
    assert documents(ledger, order_id) == (order["total"], order["total"]), "the shipping charge is credited too"
    assert ok(refund(ledger, order_id, order["total"] - 1999))["status"] == "refunded"


def test_a_receipt_document_sent_again_answers_the_first_result(ledger: Ledger) -> None:
    payload = {"location": "WH1", "document": "DN-1", "lines": [{"sku": "TEE", "qty": 4}]}
    first = ok(ledger.submit("store-1", "stock.receive", payload))
    again = ok(ledger.submit("store-1", "stock.receive", payload))
    assert again == first | {"duplicate": True} and stock(ledger, "WH1", "TEE")["on_hand"] == 4
    refused(
        ledger.submit("store-1", "stock.receive", payload | {"lines": [{"sku": "TEE", "qty": 5}]}),
        "duplicate_reference",
    )
    ok(ledger.submit("store-1", "stock.receive", payload | {"location": "WH2"}))
    assert stock(ledger, "WH2", "TEE")["on_hand"] == 4


def test_a_payment_reference_captured_again_counts_once(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    capture = {"order_id": order["order_id"], "amount": 1000, "reference": "PSP-1"}
    first = ok(ledger.submit("channel-1", "payment.capture", capture))
    assert ok(ledger.submit("channel-1", "payment.capture", capture)) == first | {"duplicate": True}
    assert get_order(ledger, order["order_id"])["payment"]["captured"] == 1000
    refused(ledger.submit("channel-1", "payment.capture", capture | {"amount": 999}), "duplicate_reference")


def test_captures_may_be_required_to_come_from_the_payment_provider(ledger: Ledger) -> None:
    """Issue 11: capture by the channel stays possible, and an operator-configured rule can require a payment
    provider's identity to capture."""
    receive(ledger, "WH1", "TEE", 2)
    by_channel = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    assert pay(ledger, by_channel["order_id"])["status"] == "released", "by default the channel captures"
    ledger.set_config("payments.capture_requires_provider", True)
    order_id = ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))["order_id"]
    capture = {"order_id": order_id, "amount": get_order(ledger, order_id)["total"], "reference": "PSP-B"}
    for signer in ("channel-1", "operator-1", "store-1"):
        refused(ledger.submit(signer, "payment.capture", capture), "forbidden_role")
    assert get_order(ledger, order_id)["payment"]["events"] == [], "a refused capture leaves no trace"
    ok(ledger.submit("channel-1", "payment.authorize", capture | {"reference": "PSP-B-AUTH"}))
    refused(ledger.submit("psp-2", "payment.capture", capture), "forbidden")
    paid = ok(ledger.submit("psp-1", "payment.capture", capture))
    assert (paid["status"], paid["captured"]) == ("released", capture["amount"])
    assert get_order(ledger, order_id)["payment"]["events"][-1]["kind"] == "captured"


def test_a_return_reference_sent_again_answers_the_first_return(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}], "reference": "RMA-1"}
    first = ok(ledger.submit("channel-1", "return.request", request))
    assert ok(ledger.submit("channel-1", "return.request", request)) == first | {"duplicate": True}
    refused(ledger.submit("channel-1", "return.request", request | {"reason": "other"}), "duplicate_reference")
    assert len(get_order(ledger, order["order_id"])["returns"]) == 1


def test_an_exchange_is_priced_from_the_catalogue_and_ships_once_its_return_paid_for_it(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    exchange = [{"sku": "TEE", "qty": 1, "unit_price": 1}]
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}], "exchange": exchange}
    returned = ok(ledger.submit("channel-1", "return.request", request))
    replacement = get_order(ledger, returned["exchange_order"])
    assert replacement["total"] == 1999 and replacement["status"] == "allocated"
    refused(
        ledger.submit(
            "operator-1",
            "fulfilment.ship",
            {"fulfilment_id": replacement["fulfilments"][0]["fulfilment_id"], "carrier": "DHL"},
        ),
        "invalid_transition",
    )
    ok(ledger.submit("store-1", "return.receive", {"return_id": returned["return_id"], "location": "WH1"}))
    replacement = get_order(ledger, returned["exchange_order"])
    assert replacement["status"] == "released" and replacement["payment"]["captured"] == 1999
    original = get_order(ledger, order["order_id"])
    assert original["payment"]["refunded"] == 1999 and original["status"] == "refunded"


def test_an_exchange_over_its_limits_is_held_for_review(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    ledger.set_config("review.max_line_qty", 5)
    exchange = [{"sku": "MUG", "qty": 9}]
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}], "exchange": exchange}
    returned = ok(ledger.submit("channel-1", "return.request", request))
    assert get_order(ledger, returned["exchange_order"])["hold_reasons"] == ["qty_over_limit"]


def test_a_return_that_never_arrives_expires_and_the_order_goes_on(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    ledger.set_config("returns.expiry_ms", 10_000)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 2}]}
    returned = ok(ledger.submit("channel-1", "return.request", request))
    ledger.begin_block(advance_ms=10_000)
    assert queries.get_return(ledger.state, returned["return_id"])["status"] == "expired"  # type: ignore[index]
    assert get_order(ledger, order["order_id"])["status"] == "delivered"
    again = ok(ledger.submit("channel-1", "return.request", request))
    cancelled = ok(ledger.submit("channel-1", "return.cancel", {"return_id": again["return_id"]}))
    assert cancelled["order_status"] == "delivered"
    assert ok(ledger.submit("channel-1", "order.complete", {"order_id": order["order_id"]}))["status"] == "completed"


def test_a_return_is_received_in_parts_each_in_its_condition(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 3)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 3}]}
    returned = ok(ledger.submit("channel-1", "return.request", request))
    part = {
        "return_id": returned["return_id"],
        "location": "WH1",
        "lines": [{"sku": "TEE", "qty": 1, "condition": "damaged"}],
    }
    assert ok(ledger.submit("store-1", "return.receive", part))["status"] == "partially_received"
    rest = {"return_id": returned["return_id"], "location": "WH1", "condition": "sellable"}
    assert ok(ledger.submit("store-1", "return.receive", rest))["order_status"] == "returned"
    assert (stock(ledger, "WH1", "TEE")["on_hand"], stock(ledger, "WH1", "TEE")["damaged"]) == (2, 1)


def test_goods_are_returned_only_within_the_window_after_delivery(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    ledger.set_config("returns.window_ms", 60_000)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    ledger.begin_block(advance_ms=61_000)
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}]}
    refused(ledger.submit("channel-1", "return.request", request), "not_returnable")


def test_the_unpaid_timeout_records_what_a_partly_paid_order_may_refund(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    ledger.set_config("orders.unpaid_timeout_ms", 5_000)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    capture = {"order_id": order["order_id"], "amount": 500, "reference": "PSP-1"}
    ok(ledger.submit("channel-1", "payment.capture", capture))
    ledger.begin_block(advance_ms=5_000)
    view = get_order(ledger, order["order_id"])
    assert view["status"] == "cancelled" and view["cancellations"][0]["amount"] == order["total"]
    refused(refund(ledger, order["order_id"], 501), "over_refund")
    assert ok(refund(ledger, order["order_id"], 500))["refund_due"] == 0


def test_the_unpaid_timeout_cancels_a_bounded_batch_per_block_oldest_first(ledger: Ledger) -> None:
    receive(ledger, "WH1", "MUG", 10)
    ledger.set_config("orders.unpaid_timeout_ms", 50_000)
    ledger.set_config("orders.timeout_batch", 3)
    orders = [ok(create(ledger, f"U{i}", [{"sku": "MUG", "qty": 1}]))["order_id"] for i in range(7)]

    def cancelled() -> list[str]:
        return [o for o in orders if get_order(ledger, o)["status"] == "cancelled"]

    ledger.begin_block(advance_ms=60_000)
    assert cancelled() == orders[:3]
    ledger.begin_block()
    ledger.begin_block()
    assert cancelled() == orders
    assert stock(ledger, "WH1", "MUG")["reserved"] == 0


def test_a_transfer_to_another_organisation_waits_for_its_acceptance(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    transfer = {"from": "WH1", "to": "FOREIGN", "lines": [{"sku": "TEE", "qty": 3}]}
    sent = ok(ledger.submit("store-1", "stock.transfer", transfer))
    assert sent["status"] == "in_transit" and stock(ledger, "WH1", "TEE")["on_hand"] == 2
    assert queries.list_inventory(ledger.state, "FOREIGN", "TEE") == []
    refused(ledger.submit("store-1", "stock.transfer.accept", {"transfer_id": sent["transfer_id"]}), "forbidden")
    ok(ledger.submit("store-2", "stock.transfer.accept", {"transfer_id": sent["transfer_id"]}))
    assert stock(ledger, "FOREIGN", "TEE")["on_hand"] == 3
    back = ok(ledger.submit("store-1", "stock.transfer", transfer | {"lines": [{"sku": "TEE", "qty": 2}]}))
    ok(ledger.submit("store-2", "stock.transfer.refuse", {"transfer_id": back["transfer_id"], "reason": "no room"}))
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 2 and stock(ledger, "FOREIGN", "TEE")["on_hand"] == 3


def test_another_organisation_cannot_receive_a_return_nor_credit_it(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    ship(ledger, order["fulfilments"][0])
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}]}
    returned = ok(ledger.submit("channel-1", "return.request", request))
    refused(
        ledger.submit("store-2", "return.receive", {"return_id": returned["return_id"], "location": "FOREIGN"}),
        "forbidden",
    )
    assert queries.list_invoices(ledger.state, None) == queries.list_invoices(ledger.state, order["order_id"])
    assert all(d["issuer"] == "org-0" for d in queries.list_invoices(ledger.state, None))


def test_an_intercepted_order_does_not_ship_until_released(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 1)
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    pay(ledger, order["order_id"])
    held = ok(ledger.submit("channel-1", "order.intercept", {"order_id": order["order_id"], "reason": "fraud alert"}))
    assert held["status"] == "intercepted"
    ship_payload = {"fulfilment_id": order["fulfilments"][0], "carrier": "DHL"}
    refused(ledger.submit("operator-1", "fulfilment.ship", ship_payload), "order_intercepted")
    refused(ledger.submit("channel-1", "order.release", {"order_id": order["order_id"]}), "forbidden_role")
    assert ok(ledger.submit("operator-1", "order.release", {"order_id": order["order_id"]}))["status"] == "released"
    ship(ledger, order["fulfilments"][0])


def test_a_held_order_is_edited_and_reviewed_again(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 2)
    held = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}], delivery=None))
    assert held["hold_reasons"] == ["missing_delivery"]
    edit = {"order_id": held["order_id"], "delivery": {"region": "NL"}, "lines": [{"sku": "TEE", "qty": 2}]}
    edited = ok(ledger.submit("channel-1", "order.edit", edit))
    assert edited["status"] == "allocated" and edited["total"] == 2 * 1999 and edited["hold_reasons"] == []
    refused(ledger.submit("channel-1", "order.edit", edit), "invalid_transition")


def test_an_approved_count_posts_its_differences_as_adjustments(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    count = ok(ledger.submit("store-1", "stock.count", {"location": "WH1", "counts": [{"sku": "TEE", "qty": 3}]}))
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 5
    approve = {"location": "WH1", "count": count["count"], "reason": "shrinkage"}
    refused(ledger.submit("store-1", "stock.count.approve", approve), "forbidden_role")
    ok(ledger.submit("operator-1", "stock.count.approve", approve))
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 3
    assert queries.list_journal(ledger.state, "WH1", "TEE")[-1]["reason"] == "shrinkage"
    refused(ledger.submit("operator-1", "stock.count.approve", approve), "invalid_transition")
