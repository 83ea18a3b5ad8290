"""The analytics routes agree with a recount of the raw orders of the demo, for an operator and for a store.

One node in its own process takes the demo scenario through its API; the
test then reads every order (`/v1/orders`, each `/v1/orders/{id}`), its
returns and the stock journal, counts sales, times, outcomes, allocation and
shipments itself, and compares with what `/v1/analytics/...` answers from
its kept totals, as JSON and as CSV. A store's token must get the recount of the orders its lists show.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from typing import Any

from node.analytics import BOUNDS_MS
from omsclient import Client
from tests.e2e.conftest import SingleNode

GONE = ("declined", "cancelled")


def bucket_bound(elapsed_ms: int) -> int:
    """The upper bound of the bucket of a time, counted afresh."""
    return next((bound for bound in BOUNDS_MS if bound >= elapsed_ms), BOUNDS_MS[-1])


def nearest_rank(values: list[int], share: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[-(-share * len(ordered) // 100) - 1]


def read_orders(client: Client) -> list[dict[str, Any]]:
    return [client.get(f"/v1/orders/{summary['order_id']}") for summary in client.pages("/v1/orders", limit=100)]


def recount(client: Client) -> dict[str, Any]:
    """What the analytics routes should answer, from the orders and returns the token reads."""
    sales: dict[str, Counter[tuple[str, ...]]] = {by: Counter() for by in ("channel", "day", "sku", "location")}
    times: dict[str, dict[str, list[int]]] = {"ship": {}, "deliver": {}}
    outcomes: Counter[tuple[str, str]] = Counter()
    allocation: Counter[str] = Counter()
    orders = read_orders(client)
    for order in orders:
        day = time.strftime("%Y-%m-%d", time.gmtime(order["created_ms"] // 1000))
        units = sum(line["qty"] for line in order["lines"])
        cancelled = sum(line["cancelled"] for line in order["lines"])
        for by, value in (("channel", order["channel"]), ("day", day)):
            key = (value, order["currency"])
            sales[by][(*key, "orders")] += 1
            sales[by][(*key, "units")] += units
            sales[by][(*key, "cancelled_units")] += cancelled
            sales[by][(*key, "amount")] += order["total"]
        for sku in {line["sku"] for line in order["lines"]}:
            sales["sku"][(sku, order["currency"], "orders")] += 1
        for line in order["lines"]:
            sales["sku"][(line["sku"], order["currency"], "units")] += line["qty"]
            sales["sku"][(line["sku"], order["currency"], "cancelled_units")] += line["cancelled"]
            sales["sku"][(line["sku"], order["currency"], "amount")] += line["gross"]
        locations = set()
        for fulfilment in order["fulfilments"]:
            if fulfilment["status"] in GONE:
                continue
            locations.add(fulfilment["location"])
            served = sum(line["qty"] for line in fulfilment["lines"])
            sales["location"][(fulfilment["location"], "fulfilments")] += 1
            sales["location"][(fulfilment["location"], "units")] += served
            allocation["filled_units"] += served
            for table, status in (("ship", "shipped"), ("deliver", "delivered")):
                when = [event["time_ms"] for event in fulfilment["events"] if event["status"] == status]
                if when:
                    times[table].setdefault(fulfilment["location"], []).append(when[0] - order["created_ms"])
        allocation["orders"] += 1
        allocation["units"] += units - cancelled
        allocation["fulfilled_orders"] += bool(locations)
        allocation["split_orders"] += len(locations) > 1
        if order["status"] == "cancelled":
            outcomes["cancelled", [s for s in order["history"] if s["to"] == "cancelled"][-1]["reason"]] += 1
        for reason in {s["reason"] for s in order["history"] if s["to"] == "intercepted"}:
            outcomes["intercepted", reason] += 1
        returns = [client.get(f"/v1/returns/{return_id}") for return_id in order["returns"]]
        for reason in {r["reason"] for r in returns if r["status"] != "cancelled"}:
            outcomes["returned", reason] += 1
    return {"orders": len(orders), "sales": sales, "times": times, "outcomes": outcomes, "allocation": allocation}


def check_against_recount(client: Client) -> dict[str, Any]:
    counted = recount(client)
    assert counted["orders"] > 0
    for by, expected in counted["sales"].items():
        rows = client.get("/v1/analytics/sales", by=by)["rows"]
        got: Counter[tuple[str, ...]] = Counter()
        for row in rows:
            key = (row["location"],) if by == "location" else (row[by], row["currency"])
            for field, value in row.items():
                if isinstance(value, int) and value:
                    got[(*key, field)] += value
        assert got == +expected, by
    rows = client.get("/v1/analytics/times")["rows"]
    for table, done in (("ship", "shipped"), ("deliver", "delivered")):
        expected_times = {
            location: (len(values), *(bucket_bound(nearest_rank(values, share) or 0) for share in (50, 95)))
            for location, values in counted["times"][table].items()
        }
        got_times = {
            row["location"]: (row[done], row[f"{table}_p50_ms"], row[f"{table}_p95_ms"]) for row in rows if row[done]
        }
        assert got_times == expected_times, table
    outcomes = client.get("/v1/analytics/outcomes")["rows"]
    assert {(row["outcome"], row["reason"]): row["orders"] for row in outcomes} == dict(counted["outcomes"])
    assert all(row["rate"] == round(row["orders"] / counted["orders"], 4) for row in outcomes)
    (allocation,) = client.get("/v1/analytics/allocation")["rows"]
    assert {field: allocation[field] for field in counted["allocation"]} == dict(counted["allocation"])
    assert allocation["fill_rate"] == round(allocation["filled_units"] / allocation["units"], 4)
    check_stock(client)
    return counted


def check_stock(client: Client) -> None:
    """Units shipped per location and SKU, from the stock journal, and their cover by what is on hand now."""
    shipped: Counter[tuple[str, str]] = Counter()
    for entry in client.pages("/v1/journal", limit=100):
        if entry["kind"] == "shipment":
            shipped[entry["location"], entry["sku"]] -= entry["delta"]
    on_hand = {(row["location"], row["sku"]): row["on_hand"] for row in client.pages("/v1/inventory", limit=100)}
    rows = client.get("/v1/analytics/stock", days=7)["rows"]
    assert shipped, "the demo ships from every organisation"
    assert {(row["location"], row["sku"]): row["shipped_units"] for row in rows} == +shipped
    for row in rows:
        assert row["on_hand"] == on_hand.get((row["location"], row["sku"]), 0)
        assert row["days_of_cover"] == round(row["on_hand"] * 7 / row["shipped_units"], 1)
    long_ago = client.get("/v1/analytics/stock", days=7, until="2000-01-01")["rows"]
    assert long_ago == []


def test_the_analytics_routes_agree_with_a_recount_of_the_demo(demo_node: SingleNode) -> None:
    counted = check_against_recount(demo_node.client)
    assert counted["outcomes"], "the demo cancels, intercepts or returns some order"
    assert counted["allocation"]["split_orders"] >= 1, "the demo splits an order across locations"
    assert counted["times"]["ship"], "the demo ships"

    store = Client(demo_node.url, demo_node.make_token("store-1", "orders:read,inventory:read"))
    try:
        seen = check_against_recount(store)
        assert 0 < seen["orders"] <= counted["orders"]
    finally:
        store.close()


def test_csv_export_carries_the_same_rows(demo_node: SingleNode) -> None:
    client = demo_node.client
    for path, params in (("/v1/analytics/sales", {"by": "sku"}), ("/v1/analytics/outcomes", {})):
        rows = client.get(path, **params)["rows"]
        answer = client.http.get(path, params={**params, "format": "csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        parsed = list(csv.DictReader(io.StringIO(answer.text)))
        assert parsed == [{field: "" if value is None else str(value) for field, value in row.items()} for row in rows]
    for path, params in (
        ("/v1/analytics/sales", {"by": "colour"}),
        ("/v1/analytics/sales", {"by": "sku", "format": "xml"}),
        ("/v1/analytics/stock", {"days": "0"}),
        ("/v1/analytics/stock", {"days": "100000"}),
        ("/v1/analytics/stock", {"until": "yesterday"}),
        ("/v1/analytics/times", {"scope": "*"}),
    ):
        refused = client.http.get(path, params=params)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", (path, params)
    anonymous = client.http.get("/v1/analytics/outcomes", headers={"authorization": ""})
    assert anonymous.status_code == 401
