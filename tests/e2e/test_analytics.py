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
from collections import Counter
from typing import Any

from omsclient import Client
from tests.e2e.conftest import SingleNode
from tests.helpers.analytics import Recount, check_routes, recount


def read_orders(client: Client) -> list[dict[str, Any]]:
    return [client.get(f"/v1/orders/{summary['order_id']}") for summary in client.pages("/v1/orders", limit=100)]


def check_against_recount(client: Client) -> Recount:
    """The routes agree with a recount of every order and return the client's token reads."""
    counted = recount(read_orders(client), lambda return_id: dict(client.get(f"/v1/returns/{return_id}")))
    check_routes(lambda route, params: list(client.get(f"/v1/analytics/{route}", **params)["rows"]), counted)
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
