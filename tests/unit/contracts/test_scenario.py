"""The devnet demo walk-through, run in-process against the rules."""

from __future__ import annotations

from typing import Any

from contracts import queries
from devnet.scenario import run_demo
from tests.helpers.contracts import Ledger


def make_query(ledger: Ledger) -> Any:
    def query(path: str, params: dict[str, Any] | None) -> Any:
        params = params or {}
        if path.startswith("/v1/orders/"):
            return queries.get_order(ledger.state, path.rsplit("/", 1)[1])
        if path == "/v1/inventory":
            return queries.list_inventory(ledger.state, params.get("location"), params.get("sku"))
        if path == "/v1/journal":
            return queries.list_journal(ledger.state, params.get("location"), params.get("sku"))
        if path == "/v1/invoices":
            return queries.list_invoices(ledger.state, params.get("order_id"))
        raise KeyError(path)

    return query


def test_demo_runs_and_reaches_its_outcomes() -> None:
    ledger = Ledger()
    lines: list[str] = []
    run_demo(ledger.submit, make_query(ledger), lines.append)
    orders = [record for _, record in ledger.state.scan("order/")]
    by_ref = {order["external_ref"]: order for order in orders}
    split = by_ref["WEB-5001"]
    assert len([f for f in split["fulfilments"]]) == 3
    assert split["status"] == "returned", "one unit of eleven came back and was refunded: not all that was paid"
    assert ("paid", "psp-1") in [(step["to"], step["by"]) for step in split["history"]]
    assert any("the web shop's is refused (forbidden_role)" in line for line in lines)
    assert by_ref["WEB-5003"]["history"][1]["to"] == "on_hold"
    assert by_ref["WEB-5003"]["status"] == "released"
    assert by_ref["WEB-5005"]["status"] == "cancelled"
    assert by_ref["WEB-5005"]["history"][-1]["by"] == "ledger"
    declined = by_ref["WEB-5004"]
    assert declined["declined_at"] == ["AMS-STORE"]
    assert len(declined["fulfilments"]) == 2
    invoices = queries.list_invoices(ledger.state, split["order_id"])
    notes = [i for i in invoices if i["credit_note"]]
    assert len(notes) == 1 and notes[0]["refers_to"] in [i["number"] for i in invoices if not i["credit_note"]]
    assert all(row["available"] >= 0 for row in queries.list_inventory(ledger.state))
    assert any("cancelled" in line for line in lines)
    partly = by_ref["WEB-5006"]
    assert partly["cancellations"][0]["lines"] == [{"line": 0, "qty": 2}] and partly["status"] == "released"
    intercepted = by_ref["WEB-5007"]
    assert "intercepted" in [step["to"] for step in intercepted["history"]] and intercepted["status"] == "shipped"
    backordered = by_ref["WEB-5008"]
    assert [step["to"] for step in backordered["history"]][-2:] == ["backordered", "released"]
    assert backordered["history"][-1]["by"] == "ledger" and backordered["backorder"] == []
    [transfer] = [record for _, record in ledger.state.scan("transfer/")]
    assert (transfer["to"], transfer["status"]) == ("HLM-STORE", "received")
