"""The lifecycle rules that hold against an adversarial channel, store or operator, one test each, through the
contract runtime: interceptions, payment deadlines, doors around the payment provider, counts, business keys,
returns, capacity, safety stock, transfers to deactivated locations, and free metadata on orders."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.encoding import encode
from tests.helpers.contracts import CUSTOMER, Ledger, create, get_order, make_shop, ok, pay, receive, refused, stock


@pytest.fixture
def ledger() -> Ledger:
    return make_shop()


def backordered_unpaid(ledger: Ledger, qty: int = 2) -> str:
    """An unpaid prepaid order of `qty` TEE that the network cannot serve yet, intercepted by its channel."""
    ledger.set_config("allocation.unservable", "backorder")
    order = ok(create(ledger, "A", [{"sku": "TEE", "qty": qty}]))
    assert order["status"] == "backordered"
    ok(ledger.submit("channel-1", "order.intercept", {"order_id": order["order_id"]}))
    return str(order["order_id"])


# interceptions


def test_a_capture_does_not_release_an_intercepted_order(ledger: Ledger) -> None:
    order_id = backordered_unpaid(ledger, qty=1)
    receive(ledger, "WH1", "TEE", 1)
    ledger.begin_block()
    pay(ledger, order_id)
    order = get_order(ledger, order_id)
    assert order["status"] == "intercepted"
    [fulfilment] = order["fulfilments"]
    refused(
        ledger.submit("store-1", "fulfilment.pick", {"fulfilment_id": fulfilment["fulfilment_id"]}), "order_intercepted"
    )
    ok(ledger.submit("operator-1", "order.release", {"order_id": order_id}))
    assert get_order(ledger, order_id)["status"] == "released"
    ok(ledger.submit("store-1", "fulfilment.pick", {"fulfilment_id": fulfilment["fulfilment_id"]}))


def test_the_resourcing_pass_does_not_release_an_intercepted_order(ledger: Ledger) -> None:
    order_id = backordered_unpaid(ledger, qty=2)
    receive(ledger, "WH1", "TEE", 1)
    ledger.begin_block()
    order = get_order(ledger, order_id)
    assert order["status"] == "intercepted"
    assert [f["status"] for f in order["fulfilments"]] == ["allocated"]


def test_a_paid_intercepted_order_stays_held_when_its_backorder_is_sourced(ledger: Ledger) -> None:
    ledger.set_config("allocation.unservable", "backorder")
    receive(ledger, "WH1", "TEE", 1)
    order_id = ok(create(ledger, "A", [{"sku": "TEE", "qty": 2}]))["order_id"]
    pay(ledger, order_id)
    ok(ledger.submit("channel-1", "order.intercept", {"order_id": order_id}))
    receive(ledger, "WH2", "TEE", 1)
    ledger.begin_block()
    order = get_order(ledger, order_id)
    assert order["status"] == "intercepted" and order["backorder"] == []
    for fulfilment in order["fulfilments"]:
        ship = {"fulfilment_id": fulfilment["fulfilment_id"], "carrier": "C"}
        refused(ledger.submit("store-1", "fulfilment.ship", ship), "order_intercepted")


# payment deadlines through an interception


def test_an_unpaid_intercepted_order_keeps_its_payment_deadline(ledger: Ledger) -> None:
    ledger.set_config("orders.unpaid_timeout_ms", 10_000)
    order_id = backordered_unpaid(ledger)
    ledger.begin_block(advance_ms=11_000)
    assert get_order(ledger, order_id)["status"] == "cancelled"


def test_releasing_an_unpaid_intercepted_order_hands_nothing_over_and_it_still_times_out(ledger: Ledger) -> None:
    ledger.set_config("orders.unpaid_timeout_ms", 10_000)
    order_id = backordered_unpaid(ledger)
    receive(ledger, "WH1", "TEE", 2)
    ledger.begin_block()
    released = ok(ledger.submit("operator-1", "order.release", {"order_id": order_id}))
    assert released["status"] == "allocated"
    order = get_order(ledger, order_id)
    assert not order["released"] and order["deadline_ms"] is not None
    ledger.begin_block(advance_ms=11_000)
    assert get_order(ledger, order_id)["status"] == "cancelled"


# no door around the payment provider


@pytest.fixture
def provider_ledger(ledger: Ledger) -> Ledger:
    receive(ledger, "WH1", "TEE", 5)
    ledger.set_config("payments.capture_requires_provider", True)
    return ledger


def test_on_account_terms_go_to_review_when_captures_belong_to_the_provider(provider_ledger: Ledger) -> None:
    order = ok(create(provider_ledger, "A", [{"sku": "TEE", "qty": 1}], payment_terms="on_account"))
    assert order["status"] == "on_hold" and "on_account" in order["hold_reasons"]
    assert stock(provider_ledger, "WH1", "TEE")["reserved"] == 0


def test_a_discount_that_makes_an_order_free_goes_to_review(provider_ledger: Ledger) -> None:
    order = ok(create(provider_ledger, "A", [{"sku": "TEE", "qty": 1, "discount": 1999}]))
    assert order["status"] == "on_hold" and "nothing_due" in order["hold_reasons"]
    approved = ok(provider_ledger.submit("operator-1", "order.approve", {"order_id": order["order_id"]}))
    assert approved["status"] == "released"


# stock counts


def test_two_counts_of_one_shelf_post_a_shortage_once(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    counts = [
        ok(ledger.submit("store-1", "stock.count", {"location": "WH1", "counts": [{"sku": "TEE", "qty": 4}]}))
        for _ in range(2)
    ]
    for count in counts:
        approval = {"location": "WH1", "count": count["count"], "reason": "shrinkage"}
        ok(ledger.submit("operator-1", "stock.count.approve", approval))
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 4


def test_a_count_is_compared_with_the_stock_when_it_is_approved(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    count = ok(ledger.submit("store-1", "stock.count", {"location": "WH1", "counts": [{"sku": "TEE", "qty": 5}]}))
    assert count["differences"] == []
    ok(ledger.submit("store-1", "stock.adjust", {"location": "WH1", "sku": "TEE", "delta": -1, "reason": "broken"}))
    approved = ok(
        ledger.submit(
            "operator-1", "stock.count.approve", {"location": "WH1", "count": count["count"], "reason": "found"}
        )
    )
    assert approved["adjusted"] == 1
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 5


# business keys


def test_an_external_reference_reused_with_other_content_is_refused(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    first = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    again = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    assert again["order_id"] == first["order_id"] and again["duplicate"]
    refused(create(ledger, "A", [{"sku": "TEE", "qty": 2}]), "duplicate_reference")
    assert stock(ledger, "WH1", "TEE")["reserved"] == 1


def test_a_receipt_document_reused_with_other_lines_is_a_duplicate_reference(ledger: Ledger) -> None:
    payload: dict[str, Any] = {"location": "WH1", "lines": [{"sku": "TEE", "qty": 3}], "document": "PO-1"}
    ok(ledger.submit("store-1", "stock.receive", payload))
    assert ok(ledger.submit("store-1", "stock.receive", payload))["duplicate"]
    refused(
        ledger.submit("store-1", "stock.receive", payload | {"lines": [{"sku": "TEE", "qty": 4}]}),
        "duplicate_reference",
    )


def test_a_partial_cancellation_sent_again_is_applied_once(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    order_id = ok(create(ledger, "A", [{"sku": "TEE", "qty": 3}]))["order_id"]
    cancel = {"order_id": order_id, "lines": [{"line": 0, "qty": 1}], "reference": "CX-1"}
    first = ok(ledger.submit("channel-1", "order.cancel", cancel))
    again = ok(ledger.submit("channel-1", "order.cancel", cancel))
    assert again == {**first, "duplicate": True}
    assert get_order(ledger, order_id)["lines"][0]["cancelled"] == 1
    refused(
        ledger.submit("channel-1", "order.cancel", cancel | {"lines": [{"line": 0, "qty": 2}]}), "duplicate_reference"
    )


def delivered_order(ledger: Ledger, qty: int = 2, **extra: Any) -> dict[str, Any]:
    receive(ledger, "WH1", "TEE", qty)
    order_id = ok(create(ledger, f"D{ledger.height}", [{"sku": "TEE", "qty": qty}], **extra))["order_id"]
    if extra.get("payment_terms") != "on_account":
        pay(ledger, order_id)
    [fulfilment] = get_order(ledger, order_id)["fulfilments"]
    ok(ledger.submit("store-1", "fulfilment.ship", {"fulfilment_id": fulfilment["fulfilment_id"], "carrier": "C"}))
    ok(ledger.submit("store-1", "fulfilment.deliver", {"fulfilment_id": fulfilment["fulfilment_id"]}))
    return get_order(ledger, order_id)


def test_a_partial_return_receipt_sent_again_is_applied_once(ledger: Ledger) -> None:
    order = delivered_order(ledger, qty=3)
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 3}]}
    return_id = ok(ledger.submit("channel-1", "return.request", request))["return_id"]
    part = {"return_id": return_id, "location": "WH1", "lines": [{"sku": "TEE", "qty": 1}], "reference": "RCV-1"}
    first = ok(ledger.submit("store-1", "return.receive", part))
    again = ok(ledger.submit("store-1", "return.receive", part))
    assert again == {**first, "duplicate": True}
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 1
    other = part | {"lines": [{"sku": "TEE", "qty": 2}]}
    refused(ledger.submit("store-1", "return.receive", other), "duplicate_reference")


def test_a_transfer_sent_again_is_applied_once(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    transfer = {"from": "WH1", "to": "WH2", "lines": [{"sku": "TEE", "qty": 2}], "document": "TO-1"}
    first = ok(ledger.submit("store-1", "stock.transfer", transfer))
    again = ok(ledger.submit("store-1", "stock.transfer", transfer))
    assert again == {**first, "duplicate": True}
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 3
    refused(ledger.submit("store-1", "stock.transfer", transfer | {"to": "ST1"}), "duplicate_reference")


# returns awaited


def test_paying_an_order_whose_return_is_awaited_keeps_the_return(ledger: Ledger) -> None:
    order = delivered_order(ledger, qty=2, payment_terms="on_account")
    order_id = order["order_id"]
    request = {"order_id": order_id, "lines": [{"sku": "TEE", "qty": 1}]}
    ok(ledger.submit("channel-1", "return.request", request))
    pay(ledger, order_id)
    assert get_order(ledger, order_id)["status"] == "return_requested"
    refused(ledger.submit("channel-1", "order.complete", {"order_id": order_id}), "invalid_transition")


# capacity


def limit_capacity(ledger: Ledger) -> None:
    """WH2, the warehouse nearest the delivery point, takes one fulfilment a day."""
    location = {"location": "WH2", "type": "warehouse", "region": "NL", "lat": 51_920_000, "lon": 4_900_000}
    ok(ledger.submit("operator-1", "location.upsert", location | {"priority": 10, "daily_capacity": 1}))


def test_a_declined_fulfilment_gives_its_capacity_back(ledger: Ledger) -> None:
    limit_capacity(ledger)
    receive(ledger, "WH1", "TEE", 5)
    receive(ledger, "WH2", "TEE", 5)
    first = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    [fulfilment] = first["fulfilments"]
    declined = ok(ledger.submit("store-1", "fulfilment.decline", {"fulfilment_id": fulfilment}))
    assert declined["reallocated_to"]
    second = ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))
    assert get_order(ledger, second["order_id"])["fulfilments"][0]["location"] == "WH2"


def test_a_cancelled_fulfilment_gives_its_capacity_back(ledger: Ledger) -> None:
    limit_capacity(ledger)
    receive(ledger, "WH1", "TEE", 5)
    receive(ledger, "WH2", "TEE", 5)
    first = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))
    ok(ledger.submit("channel-1", "order.cancel", {"order_id": first["order_id"]}))
    second = ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))
    assert get_order(ledger, second["order_id"])["fulfilments"][0]["location"] == "WH2"


# safety stock


def test_lowering_safety_stock_sources_waiting_backorders(ledger: Ledger) -> None:
    ledger.set_config("allocation.unservable", "backorder")
    receive(ledger, "WH1", "TEE", 2)
    ok(ledger.submit("store-1", "stock.safety", {"location": "WH1", "sku": "TEE", "qty": 2}))
    order_id = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))["order_id"]
    assert get_order(ledger, order_id)["status"] == "backordered"
    ok(ledger.submit("store-1", "stock.safety", {"location": "WH1", "sku": "TEE", "qty": 0}))
    ledger.begin_block()
    assert get_order(ledger, order_id)["status"] == "allocated"


# transfers to a deactivated location


def deactivated_destination(ledger: Ledger) -> str:
    receive(ledger, "WH1", "TEE", 5)
    transfer = {"from": "WH1", "to": "FOREIGN", "lines": [{"sku": "TEE", "qty": 2}]}
    transfer_id = str(ok(ledger.submit("store-1", "stock.transfer", transfer))["transfer_id"])
    location = {"location": "FOREIGN", "type": "store", "region": "NL", "lat": 50_850_000, "lon": 4_900_000}
    ok(ledger.submit("operator-1", "location.upsert", location | {"org": "org-1", "active": False}))
    return transfer_id


def test_goods_in_transit_to_a_deactivated_location_can_be_refused_by_an_operator(ledger: Ledger) -> None:
    transfer_id = deactivated_destination(ledger)
    refused(ledger.submit("store-2", "stock.transfer.accept", {"transfer_id": transfer_id}), "unknown_location")
    assert ok(ledger.submit("operator-1", "stock.transfer.refuse", {"transfer_id": transfer_id}))["status"] == "refused"
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 5


def test_goods_in_transit_to_a_deactivated_location_can_be_recalled_by_the_sender(ledger: Ledger) -> None:
    transfer_id = deactivated_destination(ledger)
    recalled = ok(ledger.submit("store-1", "stock.transfer.recall", {"transfer_id": transfer_id}))
    assert recalled["status"] == "recalled"
    assert stock(ledger, "WH1", "TEE")["on_hand"] == 5


def test_the_sender_cannot_recall_goods_an_active_location_awaits(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    transfer = {"from": "WH1", "to": "FOREIGN", "lines": [{"sku": "TEE", "qty": 2}]}
    transfer_id = ok(ledger.submit("store-1", "stock.transfer", transfer))["transfer_id"]
    refused(ledger.submit("store-1", "stock.transfer.recall", {"transfer_id": transfer_id}), "invalid_transition")


# metadata and tags


def test_an_order_carries_its_metadata_and_tags(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 5)
    metadata = {"campaign": "spring", "note": "gift wrap"}
    order_id = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}], metadata=metadata, tags=["vip", "b2c"]))["order_id"]
    order = get_order(ledger, order_id)
    assert (order["metadata"], order["tags"]) == (metadata, ["vip", "b2c"])
    plain = ok(create(ledger, "B", [{"sku": "TEE", "qty": 1}]))["order_id"]
    assert (get_order(ledger, plain)["metadata"], get_order(ledger, plain)["tags"]) == ({}, [])


@pytest.mark.parametrize(
    "extra",
    [
        {"metadata": {f"k{i}": "v" for i in range(33)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"k": "v" * 257}},
        {"metadata": {"k": 1}},
        {"tags": ["t"] * 17},
        {"tags": ["t" * 33]},
        {"tags": [""]},
    ],
)
def test_metadata_and_tags_are_bounded(ledger: Ledger, extra: dict[str, Any]) -> None:
    receive(ledger, "WH1", "TEE", 5)
    refused(create(ledger, "A", [{"sku": "TEE", "qty": 1}], **extra), "bad_payload")


# the step budget of an import


def import_orders(ledger: Ledger, orders: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Import one order per list of lines (refs `I0`, `I1`, ...); each order's answer."""
    payload = {
        "orders": [
            {"external_ref": f"I{i}", "customer_hash": CUSTOMER, "currency": "EUR", "lines": lines}
            | {"delivery": {"region": "NL", "lat": 51_930_000, "lon": 4_900_000}}
            for i, lines in enumerate(orders)
        ]
    }
    answers: list[dict[str, Any]] = ok(ledger.submit("channel-1", "order.import", payload))["orders"]
    return answers


def test_an_import_refuses_an_order_too_large_for_the_step_budget_alone(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 200)
    ledger.set_config("step_budget", 5_000)
    large = [{"sku": "TEE", "qty": 1}] * 100
    answers = import_orders(ledger, [[{"sku": "TEE", "qty": 1}], large, [{"sku": "TEE", "qty": 2}]])
    assert [answer.get("error") for answer in answers] == [None, "step_budget_exceeded", None]
    assert stock(ledger, "WH1", "TEE")["reserved"] == 3


def test_the_step_budget_of_an_import_grows_with_its_orders(ledger: Ledger) -> None:
    receive(ledger, "WH1", "TEE", 200)
    ledger.set_config("step_budget", 5_000)
    lines = [{"sku": "TEE", "qty": 1}] * 20
    answers = import_orders(ledger, [lines] * 4)
    assert all(answer["duplicate"] is False for answer in answers), answers
    assert stock(ledger, "WH1", "TEE")["reserved"] == 80


# the ledger's own passes over their indexes


def fill_index(ledger: Ledger, prefix: str, ids: list[str]) -> None:
    """Write index entries `<prefix><id>` -> the id's last part straight into the committed state: a backlog of
    records gone, which no test could place one tx at a time."""
    for entry in ids:
        ledger.base.entries[f"{prefix}{entry}".encode()] = encode(entry.split("/")[-1])


def test_the_resourcing_pass_costs_bounded_steps_per_block_over_a_large_backlog(ledger: Ledger) -> None:
    """A backlog of orders waiting for another SKU lies before the order that waits for TEE: each block visits a
    bounded part of it (the block step budget is at its least), and the pass reaches the order in the end."""
    ledger.set_config("allocation.unservable", "backorder")
    ledger.set_config("block_step_budget", 10_000)
    ledger.set_config("allocation.resource_scan", 500)
    fill_index(ledger, "backorder/", [f"SO{i:016d}" for i in range(20_000)])
    order_id = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))["order_id"]
    receive(ledger, "WH1", "TEE", 1)
    blocks = 0
    while get_order(ledger, order_id)["status"] == "backordered":
        ledger.begin_block()
        blocks += 1
        assert blocks <= 45, ledger.state.get("restock/pass")
    assert blocks >= 40, "each block visited at most 500 entries"


def test_the_timeout_pass_costs_bounded_steps_per_block_over_a_large_backlog(ledger: Ledger) -> None:
    ledger.set_config("block_step_budget", 10_000)
    fill_index(ledger, "unpaid/", [f"{1:016d}/SO{i:016d}" for i in range(5_000)])
    ledger.set_config("orders.unpaid_timeout_ms", 1_000)
    receive(ledger, "WH1", "TEE", 1)
    order_id = ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))["order_id"]
    for _ in range(110):
        ledger.begin_block()
    assert get_order(ledger, order_id)["status"] == "cancelled"
    assert list(ledger.state.scan("unpaid/")) == []


def test_the_return_expiry_pass_costs_bounded_steps_per_block_over_a_large_backlog(ledger: Ledger) -> None:
    ledger.set_config("block_step_budget", 10_000)
    ledger.set_config("returns.expiry_ms", 1_000)
    fill_index(ledger, "returndue/", [f"{1:016d}/SO{i:016d}-R1" for i in range(5_000)])
    order = delivered_order(ledger)
    request = {"order_id": order["order_id"], "lines": [{"sku": "TEE", "qty": 1}]}
    return_id = ok(ledger.submit("channel-1", "return.request", request))["return_id"]
    for _ in range(110):
        ledger.begin_block()
    assert ledger.state.get(f"return/{return_id}")["status"] == "expired"
    assert list(ledger.state.scan("returndue/")) == []
