"""The demo walk-through: a realistic day of an omnichannel retailer on the ledger.

Besides the usual path of an order it shows a partial cancellation, an order
intercepted before it ships, a backorder the ledger fills when stock arrives
and a transfer between stores that waits for the receiving store.

`run_demo` drives any ledger through the public tx kinds and queries only, so
the same scenario runs against a live devnet (`omsnode devnet demo`) and
in-process in the tests. Signers: `channel-1` (the web shop), `store-1` (the
Amsterdam store), `operator-1` (operations, who also acts for the
warehouses) and `psp-1` (the payment provider, whose word alone counts for a
capture once operations require it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omsclient.customers import hash_customer

Submit = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""Send a signed tx and return its receipt (`ok`, `code`, `message`, `result`) once committed."""

Query = Callable[[str, "dict[str, Any] | None"], Any]
"""GET a node API path (`/v1/orders/<id>`, `/v1/inventory`, `/v1/journal`, `/v1/invoices`)."""

Say = Callable[[str], None]
"""Print one step."""

Send = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""Send a tx that must be accepted; its result."""

Read = Callable[[str], dict[str, Any]]
"""An order as the API shows it."""

CHANNEL = "channel-1"
STORE = "store-1"
OPERATOR = "operator-1"
PROVIDER = "psp-1"
STORE_LOCATION = "AMS-STORE"
"""The store run by `store-1`; every other location but `SECOND_STORE` is a warehouse run by operations."""

SECOND_STORE = "HLM-STORE"
"""A second store of the same retailer (no online orders), which receives a transfer."""

SHORT_TIMEOUT_MS = 3_000
"""Unpaid-order timeout used to show automatic cancellation."""

MAX_WAIT_TXS = 60
"""Most filler txs sent while waiting for block time to pass a deadline."""


class DemoFailed(RuntimeError):
    """A step of the demo did not have the expected outcome."""


CUSTOMER_KEY = b"the demo retailer's customer key"
"""The web shop's organisation's secret that customer references are hashed with (`omsclient.customers`)."""

CUSTOMERS: dict[str, dict[str, Any]] = {
    "anna": {
        "name": "Anna Verbeek",
        "address_lines": ["Coolsingel 40", "3e verdieping"],
        "city": "Rotterdam",
        "postcode": "3011 AD",
        "region": "ZH",
        "country": "NL",
        "phone": "+31 10 555 0140",
        "email": "anna.verbeek@example.nl",
    },
    "ben": {
        "name": "Ben Okafor",
        "address_lines": ["Oudegracht 158"],
        "city": "Utrecht",
        "postcode": "3511 AZ",
        "region": "UT",
        "country": "NL",
        "phone": "+31 30 555 0158",
        "email": "ben.okafor@example.nl",
    },
    "carl": {
        "name": "Carl Lindqvist",
        "address_lines": ["Industrieweg 12", "Magazijn B"],
        "city": "Tilburg",
        "postcode": "5048 AB",
        "region": "NB",
        "country": "NL",
        "phone": "+31 13 555 0112",
        "email": "inkoop@lindqvist-bv.example",
    },
    "dana": {
        "name": "Dana Moreau",
        "address_lines": ["Keizersgracht 609"],
        "city": "Amsterdam",
        "postcode": "1017 DS",
        "region": "NH",
        "country": "NL",
        "phone": "+31 20 555 0609",
        "email": "dana.moreau@example.fr",
    },
    "eve": {
        "name": "Eve Janssens",
        "address_lines": ["Grote Markt 7"],
        "city": "Haarlem",
        "postcode": "2011 RD",
        "region": "NH",
        "country": "NL",
        "phone": "+31 23 555 0007",
        "email": "eve.janssens@example.be",
    },
    "finn": {
        "name": "Finn de Groot",
        "address_lines": ["Vismarkt 23"],
        "city": "Groningen",
        "postcode": "9711 KT",
        "region": "GR",
        "country": "NL",
        "phone": "+31 50 555 0023",
        "email": "finn.degroot@example.nl",
    },
    "gus": {
        "name": "Gus Petrakis",
        "address_lines": ["Markt 52"],
        "city": "Eindhoven",
        "postcode": "5611 EC",
        "region": "NB",
        "country": "NL",
        "phone": "+31 40 555 0052",
        "email": "gus.petrakis@example.gr",
    },
    "hana": {
        "name": "Hana Suzuki",
        "address_lines": ["Lange Voorhout 34"],
        "city": "Den Haag",
        "postcode": "2514 EE",
        "region": "ZH",
        "country": "NL",
        "phone": "+31 70 555 0034",
        "email": "hana.suzuki@example.jp",
    },
}
"""The demo's customers: where their orders go and whom to reach. Every order carries its customer's ship-to,
which the signer seals: none of it is on the ledger in clear."""


NOTES = "Please ring twice: the bell of Coolsingel 40 is broken"
"""The notes Anna's order carries (sealed with its ship-to)."""


def customer(name: str) -> str:
    """The channel hashes customer references, keyed, before they reach the ledger."""
    return hash_customer(CUSTOMER_KEY, f"customer:{name}")


def run_demo(submit: Submit, query: Query, say: Say) -> None:
    """Walk the ledger through catalogue, stock, orders, allocation, payment, shipping, invoices and returns."""

    def send(signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        receipt = submit(signer, kind, payload)
        if not receipt["ok"]:
            raise DemoFailed(f"{kind} by {signer} refused: {receipt['code']}: {receipt['message']}")
        return dict(receipt["result"])

    def actor(fulfilment: dict[str, Any]) -> str:
        return STORE if fulfilment["location"] == STORE_LOCATION else OPERATOR

    def order(order_id: str) -> dict[str, Any]:
        return dict(query(f"/v1/orders/{order_id}", None))

    def ship_and_deliver(order_id: str) -> None:
        for f in order(order_id)["fulfilments"]:
            if f["status"] == "released":
                send(actor(f), "fulfilment.pick", {"fulfilment_id": f["fulfilment_id"]})
            if f["status"] in ("released", "picked"):
                tracking = f"3S{f['fulfilment_id']}"
                payload = {"fulfilment_id": f["fulfilment_id"], "carrier": "PostNL", "tracking": tracking}
                shipped = send(actor(f), "fulfilment.ship", payload)
                say(f"  {f['fulfilment_id']} shipped from {f['location']}; invoices {shipped['invoices']}")
        for f in order(order_id)["fulfilments"]:
            if f["status"] == "shipped":
                send(actor(f), "fulfilment.deliver", {"fulfilment_id": f["fulfilment_id"]})
        say(f"  order {order_id} is {order(order_id)['status']}")

    say("1. Catalogue and locations")
    for sku, price, tax_class, virtual in (
        ("TEE-BLK-M", 1999, "standard", False),
        ("MUG-WHT", 899, "reduced", False),
        ("GIFT-25", 2500, "zero", True),
    ):
        send(
            OPERATOR,
            "sku.upsert",
            {"sku": sku, "price": price, "currency": "EUR", "tax_class": tax_class, "virtual": virtual},
        )
    say("  SKUs TEE-BLK-M (19.99), MUG-WHT (8.99, reduced tax), GIFT-25 (virtual gift card)")
    send(
        STORE,
        "location.upsert",
        {
            "location": STORE_LOCATION,
            "type": "store",
            "region": "NL",
            "lat": 52_373_000,
            "lon": 4_892_000,
            "ships_online": True,
            "pickup_allowed": True,
            "priority": 50,
        },
    )
    send(
        OPERATOR,
        "location.upsert",
        {
            "location": "UTR-DC",
            "type": "warehouse",
            "region": "NL",
            "lat": 52_090_000,
            "lon": 5_121_000,
            "priority": 10,
            "daily_capacity": 500,
        },
    )
    send(
        OPERATOR,
        "location.upsert",
        {
            "location": "RTM-DC",
            "type": "warehouse",
            "region": "NL",
            "lat": 51_924_000,
            "lon": 4_478_000,
            "priority": 10,
        },
    )
    say(f"  locations {STORE_LOCATION} (store, pickup), UTR-DC and RTM-DC (warehouses)")

    say("2. Stock receipts")
    send(
        OPERATOR,
        "stock.receive",
        {
            "location": "UTR-DC",
            "document": "PO-1001",
            "lines": [{"sku": "TEE-BLK-M", "qty": 6, "lot": "LOT-2024-07"}, {"sku": "MUG-WHT", "qty": 2}],
        },
    )
    send(
        OPERATOR,
        "stock.receive",
        {"location": "RTM-DC", "document": "PO-1002", "lines": [{"sku": "MUG-WHT", "qty": 10}]},
    )
    send(
        STORE,
        "stock.receive",
        {
            "location": STORE_LOCATION,
            "document": "DN-77",
            "lines": [{"sku": "TEE-BLK-M", "qty": 4}, {"sku": "MUG-WHT", "qty": 3}],
        },
    )
    for row in query("/v1/inventory", None):
        say(f"  {row['location']:>10} {row['sku']:<10} on hand {row['on_hand']:>3} available {row['available']:>3}")

    say("3. An order split across locations (with a virtual gift card)")
    split_order = {
        "external_ref": "WEB-5001",
        "customer_hash": customer("anna"),
        "ship_to": CUSTOMERS["anna"],
        "notes": NOTES,
        "currency": "EUR",
        "delivery": {"region": "NL", "lat": 51_922_000, "lon": 4_479_000},
        "shipping_charge": 495,
        "lines": [{"sku": "TEE-BLK-M", "qty": 5}, {"sku": "MUG-WHT", "qty": 5}, {"sku": "GIFT-25", "qty": 1}],
    }
    split = send(CHANNEL, "order.create", split_order)
    split_id = split["order_id"]
    again = send(CHANNEL, "order.create", split_order)
    if again["order_id"] != split_id or not again["duplicate"]:
        raise DemoFailed("a re-sent external reference created a second order")
    say(f"  order {split_id} total {split['total']} cents, re-sent WEB-5001 answered with the same order")
    for f in order(split_id)["fulfilments"]:
        say(
            f"  fulfilment {f['fulfilment_id']} at {f['location']}: "
            + ", ".join(f"{i['qty']} x {i['sku']}" for i in f["lines"])
        )

    say("4. Payment, shipping and invoices")
    send(OPERATOR, "config.set", {"key": "payments.capture_requires_provider", "value": True})
    send(PROVIDER, "payment.authorize", {"order_id": split_id, "amount": split["total"], "reference": "PSP-AUTH-1"})
    capture = {"order_id": split_id, "amount": split["total"], "reference": "PSP-CAP-1"}
    refused = submit(CHANNEL, "payment.capture", capture)
    if refused["ok"]:
        raise DemoFailed("the web shop captured a payment though captures must come from the payment provider")
    say(f"  captures must come from the payment provider: the web shop's is refused ({refused['code']})")
    paid = send(PROVIDER, "payment.capture", capture)
    say(f"  {PROVIDER} captured {paid['captured']}: order {paid['status']}, gift card delivered at once")
    ship_and_deliver(split_id)
    for invoice in query("/v1/invoices", {"order_id": split_id}):
        say(
            f"  invoice {invoice['number']} by {invoice['issuer']}: "
            f"total {invoice['total']} (tax {invoice['tax_total']})"
        )

    say("5. Click-and-collect")
    pickup = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5002",
            "customer_hash": customer("ben"),
            "ship_to": CUSTOMERS["ben"],
            "currency": "EUR",
            "pickup": STORE_LOCATION,
            "lines": [{"sku": "TEE-BLK-M", "qty": 2}],
        },
    )
    send(
        PROVIDER,
        "payment.capture",
        {"order_id": pickup["order_id"], "amount": pickup["total"], "reference": "PSP-CAP-2"},
    )
    say(f"  order {pickup['order_id']} served by {[f['location'] for f in order(pickup['order_id'])['fulfilments']]}")
    ship_and_deliver(pickup["order_id"])

    say("6. An order put on hold and approved")
    held = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5003",
            "customer_hash": customer("carl"),
            "ship_to": CUSTOMERS["carl"],
            "currency": "EUR",
            "delivery": {"region": "NL", "lat": 52_100_000, "lon": 5_100_000},
            "lines": [{"sku": "MUG-WHT", "qty": 120, "unit_price": 899}],
        },
    )
    say(f"  order {held['order_id']} is {held['status']} because {held['hold_reasons']}")
    send(
        OPERATOR,
        "stock.receive",
        {"location": "RTM-DC", "document": "PO-1003", "lines": [{"sku": "MUG-WHT", "qty": 120}]},
    )
    approved = send(OPERATOR, "order.approve", {"order_id": held["order_id"], "note": "B2B customer, checked"})
    say(f"  approved by operations: {approved['status']}, fulfilments {approved['fulfilments']}")
    send(
        PROVIDER,
        "payment.capture",
        {"order_id": held["order_id"], "amount": order(held["order_id"])["total"], "reference": "PSP-CAP-3"},
    )

    say("7. A store declines its fulfilment and it is re-allocated")
    collect = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5004",
            "customer_hash": customer("dana"),
            "ship_to": CUSTOMERS["dana"],
            "currency": "EUR",
            "pickup": STORE_LOCATION,
            "lines": [{"sku": "MUG-WHT", "qty": 1}],
        },
    )
    first = collect["fulfilments"][0]
    declined = send(STORE, "fulfilment.decline", {"fulfilment_id": first, "reason": "last mug broken on the shelf"})
    new_location = order(collect["order_id"])["fulfilments"][-1]["location"]
    say(f"  {first} declined by the store; re-allocated as {declined['reallocated_to']} at {new_location}")

    say("8. A return with a credit note, and the refund")
    returned = send(
        CHANNEL,
        "return.request",
        {"order_id": split_id, "reason": "too small", "lines": [{"sku": "TEE-BLK-M", "qty": 1}]},
    )
    received = send(
        OPERATOR, "return.receive", {"return_id": returned["return_id"], "location": "UTR-DC", "condition": "sellable"}
    )
    note = next(i for i in query("/v1/invoices", {"order_id": split_id}) if i["credit_note"])
    send(PROVIDER, "payment.refund", {"order_id": split_id, "amount": note["total"], "reference": "PSP-REF-1"})
    say(
        f"  return {returned['return_id']} received; credit note {received['credit_notes']} "
        f"for {note['total']} refers to {note['refers_to']}"
    )
    say(f"  order {split_id} is {order(split_id)['status']}")

    say("9. An unpaid order is cancelled by timeout")
    send(OPERATOR, "config.set", {"key": "orders.unpaid_timeout_ms", "value": SHORT_TIMEOUT_MS})
    unpaid = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5005",
            "customer_hash": customer("eve"),
            "ship_to": CUSTOMERS["eve"],
            "currency": "EUR",
            "delivery": {"region": "NL"},
            "lines": [{"sku": "TEE-BLK-M", "qty": 1}],
        },
    )
    say(f"  order {unpaid['order_id']} reserved stock and awaits payment for {SHORT_TIMEOUT_MS} ms of block time")
    for _ in range(MAX_WAIT_TXS):
        if order(unpaid["order_id"])["status"] == "cancelled":
            break
        send(
            STORE,
            "stock.count",
            {"location": STORE_LOCATION, "reference": "cycle-count", "counts": [{"sku": "MUG-WHT", "qty": 3}]},
        )
    last = order(unpaid["order_id"])["history"][-1]
    say(f"  order {unpaid['order_id']} is {order(unpaid['order_id'])['status']} ({last['reason']}, by {last['by']})")
    send(OPERATOR, "config.set", {"key": "orders.unpaid_timeout_ms", "value": 1_800_000})

    cancel_part_of_an_order(send, order, say)
    intercept_an_order(submit, send, order, say)
    fill_a_backorder(send, order, say)
    transfer_between_stores(send, query, say)

    say("14. Stock journal of the traced lot")
    for entry in query("/v1/journal", {"location": "UTR-DC", "sku": "TEE-BLK-M"}):
        say(
            f"  h{entry['height']:>4} {entry['kind']:<12} {entry['delta']:>+4} "
            f"lot {entry['lot'] or '-':<12} {entry['document']}"
        )


def cancel_part_of_an_order(send: Send, order: Read, say: Say) -> None:
    say("10. Part of an order cancelled before it ships")
    send(
        OPERATOR,
        "stock.receive",
        {"location": "UTR-DC", "document": "PO-1004", "lines": [{"sku": "MUG-WHT", "qty": 5}]},
    )
    created = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5006",
            "customer_hash": customer("finn"),
            "ship_to": CUSTOMERS["finn"],
            "currency": "EUR",
            "delivery": {"region": "NL", "lat": 52_090_000, "lon": 5_121_000},
            "lines": [{"sku": "MUG-WHT", "qty": 3}],
        },
    )
    cancel = {"order_id": created["order_id"], "lines": [{"line": 0, "qty": 2}], "reason": "customer changed mind"}
    cancelled = send(CHANNEL, "order.cancel", cancel)
    due = created["total"] - cancelled["cancelled"]
    paid = send(PROVIDER, "payment.capture", {"order_id": created["order_id"], "amount": due, "reference": "PSP-CAP-6"})
    say(f"  2 of 3 mugs cancelled ({cancelled['cancelled']} cents); {due} captured; order {paid['status']}")


def intercept_an_order(submit: Submit, send: Send, order: Read, say: Say) -> None:
    say("11. An order intercepted before it ships, then released")
    created = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5007",
            "customer_hash": customer("gus"),
            "ship_to": CUSTOMERS["gus"],
            "currency": "EUR",
            "delivery": {"region": "NL", "lat": 52_090_000, "lon": 5_121_000},
            "lines": [{"sku": "MUG-WHT", "qty": 1}],
        },
    )
    order_id = created["order_id"]
    send(PROVIDER, "payment.capture", {"order_id": order_id, "amount": created["total"], "reference": "PSP-CAP-7"})
    send(CHANNEL, "order.intercept", {"order_id": order_id, "reason": "customer asked to change the address"})
    fulfilment_id = created["fulfilments"][0]
    refused = submit(OPERATOR, "fulfilment.ship", {"fulfilment_id": fulfilment_id, "carrier": "PostNL"})
    if refused["ok"]:
        raise DemoFailed("an intercepted order shipped")
    say(f"  order {order_id} intercepted; shipping it is refused: {refused['code']}")
    send(OPERATOR, "order.release", {"order_id": order_id, "note": "address confirmed"})
    send(OPERATOR, "fulfilment.ship", {"fulfilment_id": fulfilment_id, "carrier": "PostNL"})
    say(f"  released by operations and shipped: order {order(order_id)['status']}")


def fill_a_backorder(send: Send, order: Read, say: Say) -> None:
    say("12. A backorder filled by the ledger when stock arrives")
    send(OPERATOR, "config.set", {"key": "allocation.unservable", "value": "backorder"})
    send(OPERATOR, "sku.upsert", {"sku": "CAP-RED", "price": 1499, "currency": "EUR", "tax_class": "standard"})
    created = send(
        CHANNEL,
        "order.create",
        {
            "external_ref": "WEB-5008",
            "customer_hash": customer("hana"),
            "ship_to": CUSTOMERS["hana"],
            "currency": "EUR",
            "delivery": {"region": "NL", "lat": 51_924_000, "lon": 4_478_000},
            "lines": [{"sku": "CAP-RED", "qty": 2}],
        },
    )
    order_id = created["order_id"]
    send(PROVIDER, "payment.capture", {"order_id": order_id, "amount": created["total"], "reference": "PSP-CAP-8"})
    say(f"  order {order_id} is {order(order_id)['status']}: no CAP-RED anywhere")
    send(
        OPERATOR,
        "stock.receive",
        {"location": "RTM-DC", "document": "PO-1005", "lines": [{"sku": "CAP-RED", "qty": 10}]},
    )
    for _ in range(MAX_WAIT_TXS):
        if not order(order_id)["backorder"]:
            break
        send(OPERATOR, "stock.count", {"location": "RTM-DC", "counts": [{"sku": "CAP-RED", "qty": 10}]})
    placed = order(order_id)["fulfilments"]
    say(f"  PO-1005 received at RTM-DC; the ledger allocated it: {[(f['location'], f['status']) for f in placed]}")
    send(OPERATOR, "config.set", {"key": "allocation.unservable", "value": "refuse"})


def transfer_between_stores(send: Send, query: Query, say: Say) -> None:
    say("13. A transfer between stores, accepted by the receiving store")
    send(
        STORE,
        "location.upsert",
        {
            "location": SECOND_STORE,
            "type": "store",
            "region": "NL",
            "lat": 52_381_000,
            "lon": 4_637_000,
            "ships_online": False,
        },
    )
    sent = send(
        STORE,
        "stock.transfer",
        {"from": STORE_LOCATION, "to": SECOND_STORE, "lines": [{"sku": "MUG-WHT", "qty": 1}], "document": "TO-31"},
    )
    say(f"  transfer {sent['transfer_id']} from {STORE_LOCATION} is {sent['status']}")
    accepted = send(STORE, "stock.transfer.accept", {"transfer_id": sent["transfer_id"]})
    [row] = query("/v1/inventory", {"location": SECOND_STORE, "sku": "MUG-WHT"})
    say(f"  {SECOND_STORE} accepted it ({accepted['status']}): on hand {row['on_hand']}")
