"""Long random runs of the OMS contracts, on the real runtime, keep the ledger's invariants.

A hypothesis state machine drives a shop (`tests.helpers.contracts.make_shop`)
through every tx kind that every role (channel, store of either
organisation, payment provider of either organisation, operator, validator)
can send, valid and invalid alike, with block time passing and locations
deactivated and reactivated. After every step it checks that:

- stock is the sum of its journal, never oversold, and every reservation
  belongs to an open fulfilment;
- invoices and credit notes are whole (lines sum to totals, numbers without
  gaps) and no invoice is credited beyond itself;
- every order's history is a path through the transition table;
- money adds up: refunds never exceed what was captured nor what credit notes
  and cancellations amount to; a completed order's invoices less its credit
  notes are what was captured less what was refunded; a cancelled order
  cancelled its whole total and invoiced nothing;
- stock never entered a location through a transfer that a signer of the
  receiving organisation (or an operator) did not accept;
- an interception is lifted only by an operator, and only a paid order is
  ever handed to its locations;
- an unpaid prepaid order waiting for its payment (intercepted or not) keeps
  its deadline in the timeout index;
- an order whose return is awaited stays `return_requested`;
- a location's daily capacity counts exactly its fulfilments of that day that
  were neither declined nor cancelled.

Rules that hypothesis also picks check that every order not in a final state
and every transfer in transit has a way forward (some role's tx the runtime
accepts for it); that every action sent under a business key again answers as
a duplicate and would write nothing, and with other content is refused with
`duplicate_reference`; that an intercepted order's fulfilments can be neither
picked nor shipped; that where captures belong to the payment provider an
on-account or discounted-to-free order is held; that two counts of a shelf
approved one after the other post the difference once; that lowering a
safety stock marks its SKU for re-sourcing; and that an import refuses its
orders one by one. At the end the same txs replayed on a fresh ledger reach
the same state commitment.

`make test` runs a few dozen short runs; `make fuzz` sets
`OMS_STATEFUL_EXAMPLES` (and optionally `OMS_STATEFUL_STEPS`) for long ones.
"""

from __future__ import annotations

import os
from collections import defaultdict
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from contracts.lifecycle import (
    DAY_MS,
    ENDED_FULFILMENT,
    FINAL_STATES,
    OPEN_FULFILMENT,
    SENT_FULFILMENT,
    is_allowed_transition,
    is_paid,
)
from contracts.returns import AWAITED
from tests.helpers.contracts import CUSTOMER, make_shop

SKUS = ("TEE", "MUG", "GIFT")
LOCATIONS = ("ST1", "WH1", "WH2", "FOREIGN")
STORE_OF = {"ST1": "store-1", "WH1": "store-1", "WH2": "store-1", "FOREIGN": "store-2"}
"""Which store identity acts for a location (operators act anywhere)."""

PAYERS = ("channel-1", "psp-1", "operator-1", "psp-2")
"""Who may record a payment: the channel, the provider of the orders' organisation, an operator, and the
provider of another organisation (refused)."""

SIGNERS = ("channel-1", "store-1", "store-2", "operator-1", "auditor-1", "psp-1", "psp-2", "node-0")
"""Every role of the network, for the txs any of them may try."""

HANDED_OVER = ("released", "picked", "shipped", "delivered")
"""Fulfilment states a location has been given."""

LIFTED = ("allocated", "released", "backordered", "partially_shipped")
"""States an intercepted order goes on to when it is let go rather than ended."""

index = st.integers(0, 1_000)
"""Picks one of the records a rule could act on (`pick`)."""
CONFIG_CHOICES = (
    ("allocation.unservable", ("refuse", "backorder")),
    ("tax.rounding", ("line", "invoice")),
    ("invoicing.mode", ("shipment", "order")),
    ("tax.prices_include_tax", (True, False)),
    ("allocation.max_splits", (1, 2, 3)),
    ("review.max_line_qty", (3, 100)),
    ("orders.timeout_batch", (1, 50)),
    ("allocation.resource_batch", (1, 20)),
    ("returns.window_ms", (0, 600_000)),
    ("payments.capture_requires_provider", (True, False)),
    ("orders.unpaid_timeout_ms", (60_000, 1_800_000)),
    ("allocation.resource_scan", (10, 1_000)),
)


def holding(prefix: str, *statuses: str) -> Any:
    """A precondition: the ledger holds a record under `prefix` (in one of `statuses`), so the rule has
    something to act on (hypothesis then spends its steps on rules that do something)."""
    return precondition(lambda self: any(True for _ in self.records(prefix, *statuses)))


def pick(items: list[Any], n: int) -> Any:
    return items[n % len(items)] if items else None


class Shop(RuleBasedStateMachine):
    """One shop ledger, the txs sent to it, and the referenced txs it accepted (to send again)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = make_shop()
        self.sent: list[tuple[str, str, dict[str, Any], int]] = []
        self.referenced: list[tuple[str, str, dict[str, Any]]] = []
        self.serial = 0

    def send(self, signer: str, kind: str, payload: dict[str, Any], advance_ms: int = 1_000) -> dict[str, Any]:
        self.sent.append((signer, kind, payload, advance_ms))
        receipt = self.ledger.submit(signer, kind, payload, advance_ms)
        keyed = any(payload.get(key) for key in ("reference", "document", "external_ref"))
        if receipt["ok"] and keyed and kind != "stock.count":
            self.referenced.append((signer, kind, payload))
        return receipt

    def next_ref(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    def records(self, prefix: str, *statuses: str) -> list[dict[str, Any]]:
        found = [record for _, record in self.ledger.state.scan(prefix)]
        return [r for r in found if not statuses or r["status"] in statuses]

    def allocatable(self, location: str, sku: str) -> int:
        """What allocation may take of `sku` at `location`: available less the safety stock."""
        stock = self.ledger.state.get(f"stock/{location}/{sku}")
        return 0 if stock is None else max(stock["on_hand"] - stock["reserved"] - stock["safety"], 0)

    @initialize(stocked=st.integers(0, 3), backorders=st.sampled_from([True, True, False]), provider_only=st.booleans())
    def stock_up(self, stocked: int, backorders: bool, provider_only: bool) -> None:
        """Some stock at the three locations of `org-0` (little, in some runs); most runs keep orders the stock
        cannot serve waiting for it, and half take captures from the payment provider only."""
        for i, location in enumerate(LOCATIONS[:3]):
            lines = [{"sku": sku, "qty": stocked + i + 1, "lot": f"L{i}"} for sku in SKUS[:2]]
            self.send("store-1", "stock.receive", {"location": location, "lines": lines, "document": f"INIT-{i}"})
        if backorders:
            self.ledger.set_config("allocation.unservable", "backorder", submit=self.send)
        if provider_only:
            self.ledger.set_config("payments.capture_requires_provider", True, submit=self.send)

    # Orders

    @rule(a=index, b=index, qty=st.integers(1, 4), discount=st.sampled_from([0, 1, 100, -1]), count=st.integers(1, 3))
    def create(self, a: int, b: int, qty: int, discount: int, count: int) -> None:
        """`count` orders by the channel, of various lines, terms, discounts and destinations."""
        for i in range(count):
            self.create_one(a + 7 * i, b + i, qty, discount)

    def create_one(self, a: int, b: int, qty: int, discount: int) -> None:
        lines: list[dict[str, Any]] = [{"sku": SKUS[(a + i) % 3], "qty": qty + i} for i in range(1 + b % 2)]
        if discount:
            price = {"TEE": 1999, "MUG": 899, "GIFT": 2500}[lines[0]["sku"]]
            lines[0]["discount"] = price * lines[0]["qty"] if discount < 0 else discount
        payload: dict[str, Any] = {
            "external_ref": f"R{a % 40}",
            "customer_hash": CUSTOMER,
            "currency": "EUR",
            "lines": lines,
            "payment_terms": "on_account" if b % 5 == 0 else "prepaid",
            "shipping_charge": 395 * (b % 2),
        }
        if b % 3 == 0:
            payload["pickup"] = "ST1"
        elif b % 7 != 0:
            payload["delivery"] = {"region": "NL", "lat": 52_000_000 + 1000 * a, "lon": 4_900_000}
        if a % 4 == 0:
            payload |= {"metadata": {"campaign": f"c{b % 3}"}, "tags": ["vip"]}
        provider_only = self.ledger.config["payments.capture_requires_provider"]
        receipt = self.send("channel-1", "order.create", payload)
        if receipt["ok"] and not receipt["result"]["duplicate"] and provider_only:
            order = self.ledger.state.get(f"order/{receipt['result']['order_id']}")
            free = order["total"] == 0 and any(line["discount"] for line in order["lines"])
            if payload["payment_terms"] == "on_account" or free:
                assert order["status"] == "on_hold", "no door around the payment provider"

    @rule(a=index, n=st.integers(1, 3))
    def import_orders(self, a: int, n: int) -> None:
        """An import whose orders are placed one by one: an unknown SKU refuses that order alone."""
        orders = [
            {
                "external_ref": f"I{(a + i) % 40}",
                "customer_hash": CUSTOMER,
                "currency": "EUR",
                "lines": [{"sku": "NOPE" if (a + i) % 5 == 0 else SKUS[(a + i) % 2], "qty": 1}],
                "delivery": {"region": "NL"},
            }
            for i in range(n)
        ]
        receipt = self.send("channel-1", "order.import", {"orders": orders})
        assert receipt["ok"], receipt
        for answer, sent in zip(receipt["result"]["orders"], orders, strict=True):
            if sent["lines"][0]["sku"] == "NOPE":
                assert answer["error"] == "unknown_sku", answer

    def get_payer(self) -> str:
        """Who captures on the usual path: the payment provider where captures are its own, else the channel."""
        return "psp-1" if self.ledger.config["payments.capture_requires_provider"] else "channel-1"

    def get_due(self, order: dict[str, Any]) -> int:
        return int(order["total"] - order["payment"]["cancelled"] - order["payment"]["captured"])

    @holding("order/")
    @rule(n=index, partial=st.booleans(), payer=st.sampled_from(PAYERS), authorize=st.booleans())
    def pay(self, n: int, partial: bool, payer: str, authorize: bool) -> None:
        order = pick([o for o in self.records("order/") if o["status"] != "cancelled" and self.get_due(o) > 0], n)
        if order is not None:
            due = self.get_due(order)
            amount = max(due // 2 if partial else due, 1)
            payload = {"order_id": order["order_id"], "amount": amount, "reference": self.next_ref("PSP")}
            self.send(payer, "payment.authorize" if authorize else "payment.capture", payload)

    @holding("order/")
    @rule(n=index, line=st.integers(0, 1), qty=st.integers(0, 3), referenced=st.booleans())
    def cancel(self, n: int, line: int, qty: int, referenced: bool) -> None:
        order = pick(self.records("order/"), n)
        if order is not None:
            payload: dict[str, Any] = {"order_id": order["order_id"]}
            if qty:
                payload["lines"] = [{"line": line, "qty": qty}]
            if referenced:
                payload["reference"] = self.next_ref("CX")
            self.send("channel-1", "order.cancel", payload)

    @holding("order/", "backordered", "intercepted")
    @rule(n=index)
    def allocate(self, n: int) -> None:
        order = pick(self.records("order/", "backordered", "intercepted"), n)
        if order is not None:
            self.send("channel-1", "order.allocate", {"order_id": order["order_id"]})

    @holding("order/", "on_hold")
    @rule(n=index, kind=st.sampled_from(["order.approve", "order.reject", "order.edit"]))
    def review(self, n: int, kind: str) -> None:
        order = pick(self.records("order/", "on_hold"), n)
        if order is not None:
            payload: dict[str, Any] = {"order_id": order["order_id"]}
            if kind == "order.edit":
                payload |= {"delivery": {"region": "NL"}, "lines": [{"sku": "MUG", "qty": 1}]}
            self.send("channel-1" if kind == "order.edit" else "operator-1", kind, payload)

    @holding("order/", "intercepted", "released", "backordered", "partially_shipped")
    @rule(n=index, release=st.booleans(), signer=st.sampled_from(["channel-1", "operator-1", "store-1"]))
    def intercept(self, n: int, release: bool, signer: str) -> None:
        wanted = ("intercepted",) if release else ("released", "backordered", "partially_shipped")
        order = pick(self.records("order/", *wanted), n)
        if order is not None:
            self.send(signer, "order.release" if release else "order.intercept", {"order_id": order["order_id"]})

    @rule(n=index, unpaid=st.booleans(), then=st.sampled_from(["pay", "restock", "release", "wait", "cancel"]))
    def intercept_then(self, n: int, unpaid: bool, then: str) -> None:
        """The channel holds an order (a new one waiting for stock and unpaid, or one released), then something
        that must not lift the hold happens (a payment, new stock, time), or an operator lifts it, or the rest
        is cancelled; the invariants check what follows."""
        if unpaid:
            lines = [{"sku": "TEE", "qty": 9}]
            payload = {"external_ref": self.next_ref("W"), "customer_hash": CUSTOMER, "currency": "EUR"}
            receipt = self.send("channel-1", "order.create", payload | {"lines": lines, "delivery": {"region": "NL"}})
            if not receipt["ok"]:
                return
            order = self.ledger.state.get(f"order/{receipt['result']['order_id']}")
        else:
            order = pick(self.records("order/", "released", "backordered", "partially_shipped"), n)
        if order is None or not self.send("channel-1", "order.intercept", {"order_id": order["order_id"]})["ok"]:
            return
        order_id = order["order_id"]
        if then == "pay" and self.get_due(order) > 0:
            payload = {"order_id": order_id, "amount": self.get_due(order), "reference": self.next_ref("PSP")}
            self.send(self.get_payer(), "payment.capture", payload)
        elif then == "restock":
            lines = [{"sku": sku, "qty": 5} for sku in SKUS[:2]]
            self.send("store-1", "stock.receive", {"location": "WH1", "lines": lines, "document": self.next_ref("DN")})
            self.wait(1)
        elif then == "release":
            self.send("operator-1", "order.release", {"order_id": order_id})
        elif then == "wait":
            self.wait(40)
        elif then == "cancel":
            self.send("channel-1", "order.cancel", {"order_id": order_id})

    @holding("order/", "intercepted")
    @rule(n=index)
    def intercepted_orders_are_neither_picked_nor_shipped(self, n: int) -> None:
        order = pick(self.records("order/", "intercepted"), n)
        if order is None:
            return
        for fulfilment_id in order["fulfilments"]:
            record = self.ledger.state.get(f"fulfilment/{fulfilment_id}")
            if record["virtual"]:
                continue
            for step in ("pick", "ship"):
                payload = fulfilment_payload(record, step)
                receipt, _ = self.ledger.try_tx(STORE_OF[record["location"]], f"fulfilment.{step}", payload)
                assert receipt["code"] in ("order_intercepted", "unknown_location"), (order["order_id"], step, receipt)

    @holding("order/")
    @rule(n=index, times=st.integers(1, 6))
    def advance(self, n: int, times: int) -> None:
        """The next steps of the usual path of an open order (so that runs reach deliveries and returns)."""
        for _ in range(times):
            self.advance_once(n)

    def advance_once(self, n: int) -> None:
        """The next step of the usual path of an open order: pay it, ship, deliver, receive its return, refund."""
        order = pick([o for o in self.records("order/") if o["status"] not in FINAL_STATES], n)
        if order is None:
            return
        order_id = order["order_id"]
        fulfilments = {f["fulfilment_id"]: f for f in self.records("fulfilment/") if f["order_id"] == order_id}
        awaited = [r for r in self.records("return/", "requested", "partially_received") if r["order_id"] == order_id]
        payment = order["payment"]
        refundable = payment["cancelled"] + sum(payment["credits"].values())
        refund_due = min(payment["captured"], refundable) - payment["refunded"]
        if order["status"] == "on_hold":
            self.send("operator-1", "order.approve", {"order_id": order_id})
        elif self.get_due(order) > 0:
            payload = {"order_id": order_id, "amount": self.get_due(order), "reference": self.next_ref("PSP")}
            self.send(self.get_payer(), "payment.capture", payload)
        elif awaited:
            self.send("store-1", "return.receive", {"return_id": awaited[0]["return_id"], "location": "WH1"})
        elif refund_due > 0:
            payload = {"order_id": order_id, "amount": refund_due, "reference": self.next_ref("REF")}
            self.send("channel-1", "payment.refund", payload)
        else:
            for record in fulfilments.values():
                if record["status"] in ("released", "picked", "shipped") and not record["virtual"]:
                    step = "deliver" if record["status"] == "shipped" else "ship"
                    self.send(STORE_OF[record["location"]], f"fulfilment.{step}", fulfilment_payload(record, step))
                    return
            self.send("channel-1", "order.complete", {"order_id": order_id})

    @holding("order/", "delivered", "returned", "refunded")
    @rule(n=index)
    def complete(self, n: int) -> None:
        order = pick(self.records("order/", "delivered", "returned", "refunded"), n)
        if order is not None:
            self.send("channel-1", "order.complete", {"order_id": order["order_id"]})

    # Fulfilment

    @holding("fulfilment/")
    @rule(n=index, step=st.sampled_from(["pick", "ship", "ship", "deliver", "deliver", "decline"]))
    def fulfil(self, n: int, step: str) -> None:
        wanted = {"pick": ("released",), "ship": ("released", "picked"), "deliver": ("shipped",)}
        fulfilments = [f for f in self.records("fulfilment/", *wanted.get(step, ())) if not f["virtual"]]
        record = pick(fulfilments, n)
        if record is not None:
            self.send(STORE_OF[record["location"]], f"fulfilment.{step}", fulfilment_payload(record, step))

    # Returns and money back

    @holding("order/", "delivered", "completed", "returned", "refunded", "return_requested")
    @rule(n=index, qty=st.integers(1, 3), exchange=st.booleans(), referenced=st.booleans())
    def request_return(self, n: int, qty: int, exchange: bool, referenced: bool) -> None:
        order = pick(self.records("order/", "delivered", "completed", "returned", "refunded", "return_requested"), n)
        if order is not None:
            sku = pick([line["sku"] for line in order["lines"]], n)
            payload: dict[str, Any] = {"order_id": order["order_id"], "lines": [{"sku": sku, "qty": qty}]}
            if exchange:
                payload["exchange"] = [{"sku": "MUG", "qty": 1}]
            if referenced:
                payload["reference"] = self.next_ref("RMA")
            self.send("channel-1", "return.request", payload)

    @holding("return/", *AWAITED)
    @rule(n=index, partial=st.booleans(), damaged=st.booleans(), foreign=st.booleans(), referenced=st.booleans())
    def receive_return(self, n: int, partial: bool, damaged: bool, foreign: bool, referenced: bool) -> None:
        record = pick(self.records("return/", "requested", "partially_received"), n)
        if record is not None:
            location = "FOREIGN" if foreign else "WH1"
            payload: dict[str, Any] = {"return_id": record["return_id"], "location": location}
            payload["condition"] = "damaged" if damaged else "sellable"
            if partial:
                payload["lines"] = [{"sku": record["lines"][0]["sku"], "qty": 1}]
            if referenced:
                payload["reference"] = self.next_ref("RCV")
            self.send(STORE_OF[location], "return.receive", payload)

    @holding("return/", *AWAITED)
    @rule(n=index)
    def cancel_return(self, n: int) -> None:
        record = pick(self.records("return/", "requested", "partially_received"), n)
        if record is not None:
            self.send("channel-1", "return.cancel", {"return_id": record["return_id"]})

    @holding("order/")
    @rule(n=index, share=st.integers(1, 3), name_note=st.booleans())
    def refund(self, n: int, share: int, name_note: bool) -> None:
        order = pick(self.records("order/"), n)
        if order is not None:
            payment = order["payment"]
            payload: dict[str, Any] = {
                "order_id": order["order_id"],
                "amount": max(1, (payment["captured"] - payment["refunded"]) // share),
                "reference": self.next_ref("REF"),
            }
            note = pick(sorted(payment["credits"]), n)
            if name_note and note is not None:
                payload["credit_note"] = note
            self.send("channel-1", "payment.refund", payload)

    @holding("invoice/")
    @rule(n=index)
    def reverse(self, n: int) -> None:
        invoice = pick([i for i in self.records("invoice/") if not i["credit_note"]], n)
        if invoice is not None:
            self.send("operator-1", "invoice.reverse", {"number": invoice["number"], "reason": "wrong rate"})

    # Stock

    @rule(location=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS[:2]), qty=st.integers(1, 4), doc=index)
    def receive(self, location: str, sku: str, qty: int, doc: int) -> None:
        payload = {"location": location, "lines": [{"sku": sku, "qty": qty}], "document": f"DN-{doc % 8}"}
        self.send(STORE_OF[location], "stock.receive", payload)

    @rule(location=st.sampled_from(LOCATIONS), sku=st.sampled_from(SKUS[:2]), delta=st.integers(-3, 3))
    def adjust(self, location: str, sku: str, delta: int) -> None:
        payload = {"location": location, "sku": sku, "delta": delta or 1, "reason": "found"}
        self.send(STORE_OF[location], "stock.adjust", payload)

    @rule(
        source=st.sampled_from(LOCATIONS),
        destination=st.sampled_from(LOCATIONS),
        qty=st.integers(1, 3),
        documented=st.booleans(),
    )
    def transfer(self, source: str, destination: str, qty: int, documented: bool) -> None:
        payload = {"from": source, "to": destination, "lines": [{"sku": "TEE", "qty": qty}]}
        if documented:
            payload["document"] = self.next_ref("TO")
        self.send(STORE_OF[source], "stock.transfer", payload)

    @holding("transfer/", "in_transit")
    @rule(
        n=index,
        kind=st.sampled_from(["stock.transfer.accept", "stock.transfer.refuse", "stock.transfer.recall"]),
        signer=st.sampled_from(["store-1", "store-2", "operator-1"]),
    )
    def settle_transfer(self, n: int, kind: str, signer: str) -> None:
        record = pick(self.records("transfer/", "in_transit"), n)
        if record is not None:
            self.send(signer, kind, {"transfer_id": record["transfer_id"]})

    @rule(location=st.sampled_from(["WH2", "FOREIGN"]), active=st.booleans(), capacity=st.integers(0, 2))
    def change_location(self, location: str, active: bool, capacity: int) -> None:
        """An operator deactivates or reactivates a location, or changes its daily capacity."""
        record = self.ledger.state.get(f"location/{location}")
        self.send("operator-1", "location.upsert", record | {"active": active, "daily_capacity": capacity})

    @rule(location=st.sampled_from(LOCATIONS[:3]), counted=st.integers(0, 6), approve=st.booleans())
    def count(self, location: str, counted: int, approve: bool) -> None:
        payload = {"location": location, "counts": [{"sku": "MUG", "qty": counted}]}
        receipt = self.send("store-1", "stock.count", payload)
        if approve and receipt["ok"]:
            approval = {"location": location, "count": receipt["result"]["count"], "reason": "miscount"}
            self.send("operator-1", "stock.count.approve", approval)

    @rule(location=st.sampled_from(LOCATIONS[:3]), counted=st.integers(0, 6))
    def count_twice(self, location: str, counted: int) -> None:
        """Two counts of one shelf, approved one after the other: the difference is posted once."""
        payload = {"location": location, "counts": [{"sku": "MUG", "qty": counted}]}
        receipts = [self.send("store-1", "stock.count", payload) for _ in range(2)]
        if not all(receipt["ok"] for receipt in receipts):
            return
        counts = [receipt["result"]["count"] for receipt in receipts]
        approvals = [
            self.send("operator-1", "stock.count.approve", {"location": location, "count": count, "reason": "theft"})
            for count in counts
        ]
        if all(approval["ok"] for approval in approvals):
            assert approvals[1]["result"]["posted"] == [], approvals

    @rule(location=st.sampled_from(LOCATIONS[:3]), qty=st.integers(0, 2))
    def safety(self, location: str, qty: int) -> None:
        before = self.allocatable(location, "TEE")
        receipt = self.send("store-1", "stock.safety", {"location": location, "sku": "TEE", "qty": qty})
        if receipt["ok"] and self.allocatable(location, "TEE") > before:
            assert "TEE" in (self.ledger.state.get("restock/new") or []), "lowering safety stock re-sources"

    # Time and configuration

    @rule(minutes=st.integers(1, 40))
    def wait(self, minutes: int) -> None:
        payload = {"location": "ST1", "counts": [{"sku": "TEE", "qty": 1}]}
        self.send("store-1", "stock.count", payload, advance_ms=60_000 * minutes)

    @rule(n=index, m=index)
    def configure(self, n: int, m: int) -> None:
        key, values = pick(list(CONFIG_CHOICES), n)
        self.ledger.set_config(key, pick(list(values), m), submit=self.send)

    # Checks that try txs

    @precondition(lambda self: bool(self.referenced))
    @rule(n=index)
    def send_again(self, n: int) -> None:
        """An action taken under a business key, sent again, answers as a duplicate and writes nothing; sent
        with other content under the same key, it is refused with `duplicate_reference`."""
        signer, kind, payload = pick(self.referenced, n)
        receipt, writes = self.ledger.try_tx(signer, kind, payload)
        assert receipt["ok"] and receipt["result"]["duplicate"], (kind, payload, receipt)
        assert writes == {}, (kind, payload)
        receipt, writes = self.ledger.try_tx(signer, kind, change_content(kind, payload))
        assert receipt["code"] == "duplicate_reference", (kind, payload, receipt)

    @rule()
    def every_open_order_has_a_way_forward(self) -> None:
        for order in self.records("order/"):
            if order["status"] not in FINAL_STATES:
                tried = [self.ledger.try_tx(*move)[0] for move in self.get_moves(order)]
                assert any(receipt["ok"] for receipt in tried), (order, [receipt["message"] for receipt in tried])
        for record in self.records("transfer/", "in_transit"):
            receipt, _ = self.ledger.try_tx(
                "operator-1", "stock.transfer.refuse", {"transfer_id": record["transfer_id"]}
            )
            assert receipt["ok"], (record, receipt)

    def get_moves(self, order: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """Txs some role could send to move `order` on (which the runtime may still refuse)."""
        order_id = order["order_id"]
        payment = order["payment"]
        due = order["total"] - payment["cancelled"] - payment["captured"]
        moves = [
            ("operator-1", "order.approve", {"order_id": order_id}),
            ("operator-1", "order.release", {"order_id": order_id}),
            ("channel-1", "order.cancel", {"order_id": order_id}),
            ("channel-1", "order.complete", {"order_id": order_id}),
            (self.get_payer(), "payment.capture", {"order_id": order_id, "amount": max(due, 1), "reference": "TRY"}),
            ("channel-1", "payment.refund", {"order_id": order_id, "amount": 1, "reference": "TRY"}),
        ]
        for fulfilment_id in order["fulfilments"]:
            moves.append(("operator-1", "fulfilment.ship", {"fulfilment_id": fulfilment_id, "carrier": "C"}))
            moves.append(("operator-1", "fulfilment.deliver", {"fulfilment_id": fulfilment_id}))
        for return_id in order["returns"]:
            moves.append(("channel-1", "return.cancel", {"return_id": return_id}))
        return moves

    # Invariants

    @invariant()
    def stock_is_its_journal_and_reservations_belong_to_open_fulfilments(self) -> None:
        state = self.ledger.state
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for _, entry in state.scan("journal/"):
            totals = sums[(entry["location"], entry["sku"])]
            totals[2 if entry["bucket"] == "damaged" else 0] += entry["delta"]
            totals[1] += entry["reserved_delta"]
        open_reservations: dict[tuple[str, str], int] = defaultdict(int)
        for record in self.records("fulfilment/", *OPEN_FULFILMENT):
            if not record["virtual"]:
                for item in record["lines"]:
                    open_reservations[(record["location"], item["sku"])] += item["qty"]
        allocatable: dict[str, list[str]] = defaultdict(list)
        for _, stock in state.scan("stock/"):
            if stock["on_hand"] - stock["reserved"] > stock["safety"]:
                allocatable[f"allocatable/{stock['sku']}"].append(stock["location"])
        listed = {key: sorted(locations) for key, locations in allocatable.items()}
        assert dict(state.scan("allocatable/")) == listed, "the index allocation reads is exact"
        for _, stock in state.scan("stock/"):
            where = (stock["location"], stock["sku"])
            assert stock["on_hand"] - stock["reserved"] >= 0, where
            assert [stock["on_hand"], stock["reserved"], stock["damaged"]] == sums[where], where
            assert stock["reserved"] == open_reservations[where], where
            assert stock["on_hand"] == sum(qty for _, qty in stock["lots"]), where

    @invariant()
    def documents_are_whole_and_never_over_credited(self) -> None:
        issued: dict[str, list[int]] = defaultdict(list)
        documents = {}
        for document in self.records("invoice/"):
            documents[document["number"]] = document
            issued[document["issuer"]].append(document["seq"])
            assert document["total"] == sum(line["gross"] for line in document["lines"])
            assert document["tax_total"] == sum(line["tax"] for line in document["lines"])
            assert all(line["net"] + line["tax"] == line["gross"] for line in document["lines"])
        for seqs in issued.values():
            assert seqs == list(range(1, len(seqs) + 1))
        credited: dict[str, int] = defaultdict(int)
        for document in documents.values():
            if document["credit_note"]:
                credited[document["refers_to"]] += document["total"]
        for number, total in credited.items():
            assert total <= documents[number]["total"], number

    @invariant()
    def histories_follow_the_transition_table(self) -> None:
        for order in self.records("order/"):
            history = order["history"]
            assert history[0]["from"] is None and history[0]["to"] == "created"
            for previous, entry in pairwise(history):
                assert entry["from"] == previous["to"]
                assert is_allowed_transition(entry["from"], entry["to"]), (entry["from"], entry["to"])
            assert history[-1]["to"] == order["status"]

    @invariant()
    def money_adds_up(self) -> None:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for document in self.records("invoice/"):
            totals[document["order_id"]][1 if document["credit_note"] else 0] += document["total"]
        for order in self.records("order/"):
            payment = order["payment"]
            invoiced, credited = totals[order["order_id"]]
            refundable = payment["cancelled"] + sum(payment["credits"].values())
            assert payment["refunded"] <= payment["captured"] <= order["total"]
            assert payment["refunded"] <= refundable, order["order_id"]
            assert all(payment["refunded_by"].get(s, 0) <= a for s, a in payment["credits"].items())
            assert invoiced + payment["cancelled"] <= order["total"] + credited, order["order_id"]
            if order["status"] == "completed":
                assert payment["captured"] - payment["refunded"] == invoiced - credited, order["order_id"]
            if order["status"] == "cancelled":
                assert (invoiced, payment["cancelled"]) == (0, order["total"]), order["order_id"]
            sent = any(
                f["status"] in SENT_FULFILMENT
                for f in self.records("fulfilment/")
                if f["order_id"] == order["order_id"]
            )
            if order["status"] in ("delivered", "completed") and not sent:
                raise AssertionError(f"{order['order_id']} is {order['status']} without goods sent")

    @invariant()
    def transfers_enter_only_with_the_receivers_acceptance(self) -> None:
        genesis = self.ledger.network.genesis
        accepted = {}
        for record in self.records("transfer/"):
            for event in record["events"]:
                if event["status"] == "received":
                    accepted[event["tx_id"]] = (record["to"], genesis.identity(event["by"]))
        locations = {r["location"]: r["org"] for r in self.records("location/")}
        for _, entry in self.ledger.state.scan("journal/"):
            if entry["kind"] == "transfer_in":
                location, signer = accepted[entry["tx_id"]]
                assert location == entry["location"]
                assert signer is not None and ("operator" in signer.roles or signer.org == locations[location])

    @invariant()
    def interceptions_are_lifted_by_operators_and_only_paid_orders_are_handed_over(self) -> None:
        genesis = self.ledger.network.genesis
        fulfilments = {f["fulfilment_id"]: f for f in self.records("fulfilment/")}
        for order in self.records("order/"):
            for entry in order["history"]:
                if entry["from"] == "intercepted" and entry["to"] in LIFTED:
                    signer = genesis.identity(entry["by"])
                    assert signer is not None and "operator" in signer.roles, (order["order_id"], entry)
            handed = [fid for fid in order["fulfilments"] if fulfilments[fid]["status"] in HANDED_OVER]
            if order["status"] in ("released", "partially_shipped", "shipped") or handed:
                assert order["released"], order["order_id"]
            if order["released"]:
                assert is_paid(order), order["order_id"]

    @invariant()
    def unpaid_orders_keep_their_deadline(self) -> None:
        unpaid = {order_id for _, order_id in self.ledger.state.scan("unpaid/")}
        for order in self.records("order/", "allocated", "backordered", "intercepted"):
            if order["payment_terms"] == "prepaid" and not is_paid(order) and not order["awaiting_return"]:
                assert order["deadline_ms"] is not None and order["order_id"] in unpaid, order["order_id"]

    @invariant()
    def orders_await_their_returns(self) -> None:
        orders = {order["order_id"]: order for order in self.records("order/")}
        for record in self.records("return/", *AWAITED):
            assert orders[record["order_id"]]["status"] == "return_requested", record["return_id"]

    @invariant()
    def capacity_counts_the_fulfilments_that_serve(self) -> None:
        used: dict[str, int] = defaultdict(int)
        for record in self.records("fulfilment/"):
            if not record["virtual"] and record["status"] not in ENDED_FULFILMENT:
                used[f"capacity/{record['location']}/{record['events'][0]['time_ms'] // DAY_MS}"] += 1
        assert dict(self.ledger.state.scan("capacity/")) == dict(used)

    def teardown(self) -> None:
        self.every_open_order_has_a_way_forward()
        replay = make_shop()
        for signer, kind, payload, advance_ms in self.sent:
            replay.submit(signer, kind, payload, advance_ms)
        assert replay.commitment() == self.ledger.commitment(), "the same txs reach the same state"


def fulfilment_payload(record: dict[str, Any], step: str) -> dict[str, Any]:
    """The payload of `fulfilment.<step>` for the fulfilment `record`."""
    return {"fulfilment_id": record["fulfilment_id"]} | ({"carrier": "C"} if step == "ship" else {})


def change_content(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` asking for something else under the same business key."""
    if kind == "order.create":
        return payload | {"shipping_charge": payload.get("shipping_charge", 0) + 1}
    if kind in ("stock.receive", "stock.transfer"):
        return payload | {"lines": [line | {"qty": line["qty"] + 1} for line in payload["lines"]]}
    if kind.startswith("payment."):
        return payload | {"amount": payload["amount"] + 1}
    return payload | {"reason": "something else"} if kind != "return.receive" else payload | {"lot": "OTHER"}


Shop.TestCase.settings = settings(
    max_examples=int(os.environ.get("OMS_STATEFUL_EXAMPLES", "30")),
    stateful_step_count=int(os.environ.get("OMS_STATEFUL_STEPS", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
"""A few seconds of runs by default (`OMS_STATEFUL_EXAMPLES`, `OMS_STATEFUL_STEPS` for long ones); the explain
phase is left out (tracing every line of the contracts takes minutes)."""
test_random_runs_keep_the_ledger_invariants = Shop.TestCase
