"""Random valid and invalid tx sequences through the OMS rules keep the ledger's invariants."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.lifecycle import OPEN_FULFILMENT, is_allowed_transition
from tests.helpers.contracts import Ledger

SKUS = ("TEE", "MUG", "CAP", "GIFT")
LOCATIONS = ("ST1", "WH1", "WH2")
ACTIONS = (
    "create",
    "create",
    "create",
    "pay",
    "pay",
    "cancel",
    "pick",
    "ship",
    "ship",
    "deliver",
    "deliver",
    "decline",
    "approve",
    "reject",
    "allocate",
    "return",
    "receive_return",
    "refund",
    "receive",
    "adjust",
    "transfer",
    "reverse",
    "wait",
    "config",
)

action = st.tuples(st.sampled_from(ACTIONS), st.integers(0, 50), st.integers(0, 50), st.integers(-3, 8))


def setup(ledger: Ledger) -> None:
    for sku, price, tax_class in (("TEE", 1999, "standard"), ("MUG", 899, "reduced"), ("CAP", 1250, "standard")):
        ledger.submit(
            "operator-1", "sku.upsert", {"sku": sku, "price": price, "currency": "EUR", "tax_class": tax_class}
        )
    ledger.submit(
        "operator-1",
        "sku.upsert",
        {"sku": "GIFT", "price": 2500, "currency": "EUR", "tax_class": "zero", "virtual": True},
    )
    for i, location in enumerate(LOCATIONS):
        ledger.submit(
            "operator-1",
            "location.upsert",
            {
                "location": location,
                "type": "store" if i == 0 else "warehouse",
                "region": "NL",
                "lat": 52_000_000 + 100_000 * i,
                "lon": 4_800_000 + 150_000 * i,
                "pickup_allowed": i == 0,
                "daily_capacity": 6 if i == 2 else 0,
                "priority": 10 * i,
            },
        )
        ledger.submit(
            "operator-1",
            "stock.receive",
            {"location": location, "lines": [{"sku": s, "qty": 4 + i, "lot": f"L{i}"} for s in SKUS[:3]]},
        )


def pick(items: list[Any], n: int) -> Any:
    return items[n % len(items)] if items else None


def run_actions(actions: list[tuple[str, int, int, int]]) -> Ledger:
    ledger = Ledger()
    setup(ledger)
    for kind, a, b, c in actions:
        step(ledger, kind, a, b, c)
    return ledger


def step(ledger: Ledger, kind: str, a: int, b: int, c: int) -> None:
    state = ledger.state
    orders = [o for _, o in state.scan("order/")]
    fulfilments = [f for _, f in state.scan("fulfilment/") if not f["virtual"]]
    wanted_order = {"approve": ("on_hold",), "reject": ("on_hold",), "return": ("delivered", "completed", "refunded")}
    wanted_fulfilment = {"pick": ("released",), "ship": ("released", "picked"), "deliver": ("shipped",)}
    if c >= 0 and kind in wanted_order:
        orders = [o for o in orders if o["status"] in wanted_order[kind]]
    if c >= 0 and kind in wanted_fulfilment:
        fulfilments = [f for f in fulfilments if f["status"] in wanted_fulfilment[kind]]
    order = pick(orders, a)
    fulfilment = pick(fulfilments, a)
    actor = "operator-1"
    if kind == "create":
        lines = [{"sku": SKUS[(a + i) % 4], "qty": max(c, 1) + i} for i in range(1 + b % 3)]
        if b % 7 == 0:
            lines[0]["unit_price"] = 1
        payload: dict[str, Any] = {
            "external_ref": f"R{a}",
            "customer_hash": hashlib.sha256(str(b % 4).encode()).hexdigest(),
            "currency": "EUR",
            "lines": lines,
            "payment_terms": "on_account" if b % 5 == 0 else "prepaid",
            "shipping_charge": 395 * (b % 2),
        }
        if b % 3 == 0:
            payload["pickup"] = "ST1"
        elif b % 11 != 0:
            payload["delivery"] = {"region": "NL", "lat": 52_000_000 + 1000 * a, "lon": 4_900_000}
        ledger.submit("channel-1", "order.create", payload)
    elif kind == "pay" and order is not None:
        amount = order["total"] if c >= 0 else max(order["total"] // 2, 1)
        ledger.submit("channel-1", "payment.capture", {"order_id": order["order_id"], "amount": amount})
    elif kind in ("cancel", "approve", "reject", "allocate") and order is not None:
        tx_kind = {"cancel": "order.cancel", "approve": "order.approve", "reject": "order.reject"}.get(
            kind, "order.allocate"
        )
        ledger.submit(actor, tx_kind, {"order_id": order["order_id"]})
    elif kind in ("pick", "ship", "deliver", "decline") and fulfilment is not None:
        ledger.submit(actor, f"fulfilment.{kind}", {"fulfilment_id": fulfilment["fulfilment_id"], "carrier": "C"})
    elif kind == "return" and order is not None:
        sku = pick([line["sku"] for line in order["lines"] if not line["virtual"]] or ["TEE"], b)
        ledger.submit(
            "channel-1", "return.request", {"order_id": order["order_id"], "lines": [{"sku": sku, "qty": max(c, 1)}]}
        )
    elif kind == "receive_return":
        returns = [r for _, r in state.scan("return/")]
        record = pick(returns, a)
        if record is not None:
            payload = {
                "return_id": record["return_id"],
                "location": pick(list(LOCATIONS), b),
                "condition": "damaged" if c < 0 else "sellable",
            }
            ledger.submit(actor, "return.receive", payload)
    elif kind == "refund" and order is not None:
        ledger.submit(
            "channel-1",
            "payment.refund",
            {"order_id": order["order_id"], "amount": max(1, order["payment"]["captured"] // (1 + b % 3))},
        )
    elif kind == "receive":
        ledger.submit(
            actor,
            "stock.receive",
            {"location": pick(list(LOCATIONS), a), "lines": [{"sku": SKUS[b % 3], "qty": max(c, 1)}]},
        )
    elif kind == "adjust":
        payload = {"location": pick(list(LOCATIONS), a), "sku": SKUS[b % 3], "delta": c or 1, "reason": "count"}
        ledger.submit(actor, "stock.adjust", payload)
    elif kind == "transfer":
        payload = {
            "from": pick(list(LOCATIONS), a),
            "to": pick(list(LOCATIONS), b),
            "lines": [{"sku": SKUS[b % 3], "qty": max(c, 1)}],
        }
        ledger.submit(actor, "stock.transfer", payload)
    elif kind == "reverse":
        invoices = [i for _, i in state.scan("invoice/") if not i["credit_note"]]
        invoice = pick(invoices, a)
        if invoice is not None:
            ledger.submit(actor, "invoice.reverse", {"number": invoice["number"], "reason": "wrong rate"})
    elif kind == "wait":
        ledger.submit(
            actor,
            "stock.count",
            {"location": "ST1", "counts": [{"sku": "TEE", "qty": 1}]},
            advance_ms=600_000 * max(c, 1),
        )
    elif kind == "config":
        key, values = pick(
            [
                ("allocation.unservable", ["refuse", "backorder"]),
                ("tax.rounding", ["line", "invoice"]),
                ("invoicing.mode", ["shipment", "order"]),
                ("tax.prices_include_tax", [True, False]),
                ("allocation.max_splits", [1, 2, 3]),
                ("review.repeat_window_ms", [0, 5_000]),
            ],
            a,
        )
        ledger.submit(actor, "config.set", {"key": key, "value": pick(values, b)})


def check_invariants(ledger: Ledger) -> None:
    state = ledger.state
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for _, entry in state.scan("journal/"):
        totals = sums[(entry["location"], entry["sku"])]
        totals[2 if entry["bucket"] == "damaged" else 0] += entry["delta"]
        totals[1] += entry["reserved_delta"]
    open_reservations: dict[tuple[str, str], int] = defaultdict(int)
    for _, record in state.scan("fulfilment/"):
        if record["status"] in OPEN_FULFILMENT and not record["virtual"]:
            for item in record["lines"]:
                open_reservations[(record["location"], item["sku"])] += item["qty"]
    for _, stock in state.scan("stock/"):
        where = (stock["location"], stock["sku"])
        assert stock["on_hand"] - stock["reserved"] >= 0, where
        assert [stock["on_hand"], stock["reserved"], stock["damaged"]] == sums[where], where
        assert stock["reserved"] == open_reservations[where], where
        assert stock["on_hand"] == sum(qty for _, qty in stock["lots"]), where
    issued: dict[str, list[int]] = defaultdict(list)
    documents = {}
    for _, document in state.scan("invoice/"):
        documents[document["number"]] = document
        issued[document["issuer"]].append(document["seq"])
        assert document["total"] == sum(line["gross"] for line in document["lines"])
        assert document["tax_total"] == sum(line["tax"] for line in document["lines"])
        assert document["net_total"] == sum(line["net"] for line in document["lines"])
        assert all(line["net"] + line["tax"] == line["gross"] for line in document["lines"])
    for seqs in issued.values():
        assert seqs == list(range(1, len(seqs) + 1))
    credited: dict[str, int] = defaultdict(int)
    for document in documents.values():
        if document["credit_note"]:
            credited[document["refers_to"]] += document["total"]
    for number, total in credited.items():
        assert total <= documents[number]["total"], number
    for _, order in state.scan("order/"):
        history = order["history"]
        assert history[0]["from"] is None and history[0]["to"] == "created"
        for previous, entry in pairwise(history):
            assert entry["from"] == previous["to"]
            assert is_allowed_transition(entry["from"], entry["to"]), (entry["from"], entry["to"])
        assert history[-1]["to"] == order["status"]
        assert order["payment"]["refunded"] <= order["payment"]["captured"] <= order["total"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=5, max_size=40))
def test_random_sequences_keep_invariants_and_replay_identically(actions: list[tuple[str, int, int, int]]) -> None:
    first = run_actions(actions)
    check_invariants(first)
    second = run_actions(actions)
    assert first.commitment() == second.commitment()
