"""A ledger of orders for the analytics, built through the node's own executor on a real LevelDB store.

A catalogue, a warehouse of `org-0` and a store of `org-1` each stocking
two thirds of the SKUs (so some orders split), then `count` orders of the
web shop in blocks of `BLOCK_TXS`, of which every thirteenth is cancelled,
every seventeenth intercepted and released, the others shipped an hour or
more later, half of their fulfilments delivered, and every eleventh order
delivered has a line returned. `check_recount` recounts the analytics from
every order and return in the state (`tests.helpers.analytics`) and checks
the routes, called in-process as the API calls them, for an operator and
for the store of `org-1`. The benchmark builds 20,000 orders; the unit test
a few hundred.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from contracts import keys, queries
from ledger.encoding import decode
from node.api import analytics
from node.tokens import Principal
from tests.helpers.analytics import Recount, check_routes, recount
from tests.helpers.executed import ExecutedLedger

BLOCK_TXS = 1000
"""Txs per block."""

SKUS = [f"SKU-{n:03d}" for n in range(60)]
LOCATIONS = {"WH-1": ("org-0", "operator-1", "warehouse"), "ST-2": ("org-1", "store-2", "store")}
"""Location -> (organisation, who ships from it, type)."""
HOUR_MS = 3_600_000

Txs = list[tuple[str, str, dict[str, Any]]]
"""Txs to sign, as (signer, kind, payload)."""


def stocks(location: str, index: int) -> bool:
    """Whether `location` stocks SKU number `index`: each of them two thirds, the one third in between both."""
    return index % 3 != (1 if location == "WH-1" else 0)


def in_blocks(items: Txs) -> Iterator[Txs]:
    for start in range(0, len(items), BLOCK_TXS):
        yield items[start : start + BLOCK_TXS]


def commit_all(ledger: ExecutedLedger, txs: Txs, step_ms: int) -> list[Any]:
    """Commit `txs` in blocks `step_ms` apart; every receipt must be ok."""
    receipts = []
    for block in in_blocks(txs):
        done = ledger.commit_block(block, step_ms)
        refused = [r.message for r in done if not r.ok]
        assert not refused, refused[:3]
        receipts.extend(done)
    return receipts


def setup_txs() -> Txs:
    txs: Txs = [
        ("operator-1", "sku.upsert", {"sku": sku, "price": 990 + 10 * n, "currency": "EUR", "tax_class": "standard"})
        for n, sku in enumerate(SKUS)
    ]
    for n, (location, (org, _, kind)) in enumerate(LOCATIONS.items()):
        place = {"location": location, "type": kind, "org": org, "region": "NL", "lat": 52_000_000 + n * 100_000}
        place |= {"lon": 4_900_000, "ships_online": True, "pickup_allowed": False, "priority": 100}
        txs.append(("operator-1", "location.upsert", place))
        lines = [{"sku": sku, "qty": 1_000_000} for i, sku in enumerate(SKUS) if stocks(location, i)]
        txs.append(("operator-1", "stock.receive", {"location": location, "document": f"PO-{n}", "lines": lines}))
    return txs


def order_tx(i: int) -> tuple[str, str, dict[str, Any]]:
    lines = [{"sku": SKUS[(i * 7 + k * 11) % len(SKUS)], "qty": 1 + (i + k) % 3} for k in range(1 + i % 3)]
    delivery = {"region": "NL", "lat": 52_000_000 + (i % 9) * 30_000, "lon": 4_900_000}
    payload = {"external_ref": f"web-{i}", "currency": "EUR", "customer_hash": f"{i:064x}", "delivery": delivery}
    payload |= {"payment_terms": "on_account", "lines": lines}
    return ("channel-1", "order.create", payload)


def fulfilments_of(ledger: ExecutedLedger, order_id: str) -> list[dict[str, Any]]:
    order = ledger.state.get(keys.order_key(order_id))
    assert order is not None
    found = [ledger.state.get(keys.fulfilment_key(f)) for f in order["fulfilments"]]
    return [fulfilment for fulfilment in found if fulfilment is not None]


def build(ledger: ExecutedLedger, count: int) -> None:
    """The catalogue and stock, then `count` orders and what happens to them, block by block."""
    commit_all(ledger, setup_txs(), HOUR_MS)
    placed = commit_all(ledger, [order_tx(i) for i in range(count)], HOUR_MS // 2)
    order_ids = [str(receipt.result["order_id"]) for receipt in placed]
    cancel: Txs = []
    intercept: Txs = []
    ship: Txs = []
    for i, order_id in enumerate(order_ids):
        if i % 13 == 0:
            cancel.append(("channel-1", "order.cancel", {"order_id": order_id, "reason": "changed mind"}))
            continue
        if i % 17 == 0:
            reason = "address" if i % 2 else "fraud check"
            intercept.append(("channel-1", "order.intercept", {"order_id": order_id, "reason": reason}))
            intercept.append(("operator-1", "order.release", {"order_id": order_id, "note": "checked"}))
        for fulfilment in fulfilments_of(ledger, order_id):
            _, shipper, _ = LOCATIONS[fulfilment["location"]]
            ship.append((shipper, "fulfilment.ship", {"fulfilment_id": fulfilment["fulfilment_id"], "carrier": "DHL"}))
    commit_all(ledger, cancel + intercept, HOUR_MS)
    commit_all(ledger, ship, HOUR_MS)
    deliver = [(signer, "fulfilment.deliver", {"fulfilment_id": p["fulfilment_id"]}) for signer, _, p in ship[::4]]
    deliver += [(signer, "fulfilment.deliver", {"fulfilment_id": p["fulfilment_id"]}) for signer, _, p in ship[1::4]]
    commit_all(ledger, deliver, 3 * HOUR_MS)
    returns = []
    for i, order_id in enumerate(order_ids):
        order = ledger.state.get(keys.order_key(order_id))
        if i % 11 == 0 and order is not None and order["status"] == "delivered":
            lines = [{"sku": order["lines"][0]["sku"], "qty": 1}]
            reason = "too small" if i % 2 else "damaged"
            returns.append(("channel-1", "return.request", {"order_id": order_id, "reason": reason, "lines": lines}))
    commit_all(ledger, returns, HOUR_MS)


def read_orders(ledger: ExecutedLedger, reader: Principal) -> list[dict[str, Any]]:
    """Every order in the state that `reader` sees, with its fulfilments, as the API shows it."""
    state = ledger.state
    seen = []
    for _, raw in ledger.store.scan_state(keys.order_key("").encode()):
        order = queries.get_order(state, decode(raw)["order_id"])
        assert order is not None
        if reader.sees_all or reader.org in {order["org"], *(f["org"] for f in order["fulfilments"])}:
            seen.append(order)
    return seen


ROUTES = {
    "sales": analytics.get_sales,
    "times": analytics.get_times,
    "outcomes": analytics.get_outcomes,
    "allocation": analytics.get_allocation,
}


def make_readers(ledger: ExecutedLedger) -> dict[str, Principal]:
    """An operator, who reads every order, and the store of `org-1`, who reads those its store serves."""
    genesis = ledger.network.genesis
    operator, store = genesis.identity("operator-1"), genesis.identity("store-2")
    assert operator is not None and store is not None
    return {"operator": Principal("t1", operator, frozenset()), "store": Principal("t2", store, frozenset())}


def check_recount(ledger: ExecutedLedger) -> dict[str, Recount]:
    """The routes agree with a recount of the raw orders, for each reader; the recounts."""
    node = SimpleNamespace(store=ledger.store)
    counts = {}
    for who, reader in make_readers(ledger).items():
        counted = recount(read_orders(ledger, reader), lambda id_: queries.get_return(ledger.state, id_) or {})

        def answer(route: str, params: dict[str, Any], reader: Principal = reader) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = asyncio.run(
                ROUTES[route](node=node, reader=reader, format="json", **params)  # type: ignore[operator]
            )["rows"]
            return rows

        check_routes(answer, counted)
        counts[who] = counted
    operator, store = counts["operator"], counts["store"]
    assert operator["orders"] > store["orders"] > 0
    assert {kind for kind, _ in operator["outcomes"]} == {"cancelled", "intercepted", "returned"}
    assert operator["allocation"]["split_orders"] > 0
    return counts
