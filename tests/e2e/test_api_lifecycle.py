"""The order lifecycle, returns, stock and reconciliation routes of one real node process, success and refusal.

One node serves the whole module (`tests.e2e.integrator`): two organisations,
a store of each. Every write goes through a resource route the node signs for
the token's identity; refusals are checked at each layer that answers them:
the body's shape (422), the token (401), its scope or role (403), another
organisation's target (404), a reused idempotency key (409), the contract
(a committed tx with `status` rejected).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.integrator import Api, collect_pages, order_payload, post, start_api, stop_api

pytestmark = [pytest.mark.e2e]

PRICE = 1999
"""Of TEE-M, the one SKU of the catalogue."""


class Writers:
    """Tokens that write: the channel's (from `Api`), and the stores' of each organisation."""

    def __init__(self, api: Api) -> None:
        scopes = "orders:read,orders:write,inventory:read,inventory:write,invoices:read"
        self.lisbon = api.node.make_token("store-1", scopes)
        self.porto = api.node.make_token("store-2", scopes)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(tmp_path_factory.mktemp("lifecycle") / "home")
    yield api
    stop_api(api)


@pytest.fixture(scope="module")
def writers(api: Api) -> Writers:
    return Writers(api)


def done(response: httpx.Response, status: str = "committed") -> dict[str, Any]:
    """The body of a write answered after its commit, checked to have `status`."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    return body


def place(api: Api, ref: str, **fields: Any) -> dict[str, Any]:
    """A new order placed by the channel through `POST /v1/orders`, answered with the order once committed."""
    payload = {**order_payload(ref), **fields}
    order: dict[str, Any] = done(post(api, "/v1/orders", api.channel, payload, wait="commit"))["resource"]
    return order


def act(api: Api, token: str, path: str, body: Any = None, status: str = "committed") -> dict[str, Any]:
    """A write through a resource route, answered once committed."""
    return done(post(api, path, token, body, wait="commit"), status)


def deliver(api: Api, writers: Writers, ref: str, terms: str = "on_account") -> dict[str, Any]:
    """An order placed, paid if prepaid, picked, shipped and delivered; the order as it then is."""
    order = place(api, ref, payment_terms=terms)
    if terms == "prepaid":
        act(api, api.channel, f"/v1/orders/{order['order_id']}/pay", {"amount": order["total"], "reference": ref})
    fulfilment = order["fulfilments"][0]["fulfilment_id"]
    act(api, writers.lisbon, f"/v1/fulfilments/{fulfilment}/pick")
    act(api, writers.lisbon, f"/v1/fulfilments/{fulfilment}/ship", {"carrier": "CTT", "tracking": f"T-{ref}"})
    resource: dict[str, Any] = act(api, api.channel, f"/v1/fulfilments/{fulfilment}/deliver")["resource"]
    return resource


def test_the_openapi_declares_each_write_with_its_body_from_the_contracts_spec_and_answer(api: Api) -> None:
    spec = httpx.get(f"{api.node.url}/openapi.json").json()
    expected = {
        "/v1/orders/{order_id}/cancel": ("OrderCancelBody", "WriteResult_Order_"),
        "/v1/orders/{order_id}/edit": ("OrderEditBody", "WriteResult_Order_"),
        "/v1/orders/{order_id}/pay": ("PaymentCaptureBody", "WriteResult_Order_"),
        "/v1/fulfilments/{fulfilment_id}/ship": ("FulfilmentShipBody", "WriteResult_Order_"),
        "/v1/returns": ("ReturnRequest", "WriteResult_Return_"),
        "/v1/returns/{return_id}/receive": ("ReturnReceiveBody", "WriteResult_Return_"),
        "/v1/inventory/transfers/{transfer_id}/refuse": ("StockTransferRefuseBody", "WriteResult_Transfer_"),
        "/v1/inventory/counts/{count}/approve": ("StockCountApproveBody", "WriteResult_CountReport_"),
        "/v1/inventory/safety-stock": ("StockSafety", "WriteResult_StockRow_"),
    }
    for path, (body, answer) in expected.items():
        operation = spec["paths"][path]["post"]
        assert body in str(operation["requestBody"]), path
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(answer), path
        assert {"409", "404", "403", "401", "400"} <= set(operation["responses"]), path
    assert "/v1/orders/import" in spec["paths"] and "text/csv" in str(spec["paths"]["/v1/reconciliations/stock"])
    transfer = spec["components"]["schemas"]["StockTransfer"]
    assert transfer["required"] == ["from", "to", "lines"] and transfer["additionalProperties"] is False
    cancel_line = spec["components"]["schemas"]["OrderCancelBodyLinesItem"]["properties"]
    assert set(cancel_line) == {"line", "qty"} and cancel_line["qty"]["minimum"] == 1


def test_captures_required_from_the_payment_provider_refuse_the_channels(api: Api, writers: Writers) -> None:
    provider = api.node.make_token("psp-1", "orders:read,orders:write")
    order = place(api, "psp-paid", payment_terms="prepaid")
    pay, capture = f"/v1/orders/{order['order_id']}/pay", {"amount": order["total"], "reference": "psp-paid"}
    api.send("operator-1", "config.set", {"key": "payments.capture_requires_provider", "value": True})
    try:
        refused = act(api, api.channel, pay, capture, status="rejected")
        assert refused["reason"].startswith("forbidden_role: channel-1 may not capture"), refused
        no_role = post(api, pay, writers.lisbon, capture)
        assert no_role.status_code == 403 and "payment.capture" in no_role.json()["message"]
        paid = act(api, provider, pay, capture)["resource"]
    finally:
        api.send("operator-1", "config.set", {"key": "payments.capture_requires_provider", "value": None})
    assert paid["status"] == "released" and paid["history"][-1]["by"] == "psp-1"


def test_an_order_held_in_review_is_edited_approved_or_rejected(api: Api) -> None:
    refs = [f"held-{n}" for n in range(3)]
    blocked = [order_payload(ref)["customer_hash"] for ref in refs]
    api.send("operator-1", "config.set", {"key": "review.blocked_customers", "value": blocked})
    try:
        edited, approved, rejected = (place(api, ref) for ref in refs)
    finally:
        api.send("operator-1", "config.set", {"key": "review.blocked_customers", "value": None})
    assert {edited["status"], approved["status"], rejected["status"]} == {"on_hold"}
    path = f"/v1/orders/{edited['order_id']}"
    after = act(api, api.channel, f"{path}/edit", {"lines": [{"sku": "TEE-M", "qty": 2}]})["resource"]
    assert after["status"] == "released" and after["total"] == 2 * PRICE
    refused = post(api, f"/v1/orders/{approved['order_id']}/approve", api.channel, {"note": "ok"})
    assert refused.status_code == 403 and "order.approve" in refused.json()["message"]
    assert act(api, api.operator, f"/v1/orders/{approved['order_id']}/approve", {"note": "ok"})["resource"]["status"]
    reject = act(api, api.operator, f"/v1/orders/{rejected['order_id']}/reject", {"reason": "fraud"})["resource"]
    assert reject["status"] == "cancelled"
    again = act(api, api.operator, f"/v1/orders/{rejected['order_id']}/approve", status="rejected")
    assert again["reason"].startswith("invalid_transition") and again["resource"] is None


def test_an_order_shows_the_channels_metadata_and_tags(api: Api) -> None:
    order = place(api, "meta-1", metadata={"campaign": "spring", "basket": "b-17"}, tags=["vip", "b2c"])
    shown = api.ok(f"/v1/orders/{order['order_id']}", api.channel)
    assert (shown["metadata"], shown["tags"]) == ({"campaign": "spring", "basket": "b-17"}, ["vip", "b2c"])
    assert "metadata" in api.ok("/openapi.json", api.channel)["components"]["schemas"]["Order"]["properties"]


def test_an_intercepted_order_is_not_picked_until_released(api: Api, writers: Writers) -> None:
    order = place(api, "intercept-1")
    fulfilment = order["fulfilments"][0]["fulfilment_id"]
    held = act(api, api.channel, f"/v1/orders/{order['order_id']}/intercept", {"reason": "address check"})
    assert held["resource"]["status"] == "intercepted"
    blocked = act(api, writers.lisbon, f"/v1/fulfilments/{fulfilment}/pick", status="rejected")
    assert blocked["reason"].startswith("order_intercepted")
    assert post(api, f"/v1/orders/{order['order_id']}/release", api.channel, {}).status_code == 403
    released = act(api, api.operator, f"/v1/orders/{order['order_id']}/release", {"note": "checked"})
    assert released["resource"]["status"] == "released"
    assert act(api, writers.lisbon, f"/v1/fulfilments/{fulfilment}/pick")["resource"]["fulfilments"][0]["status"]


def test_a_partial_cancellation_then_payment_of_what_is_left(api: Api) -> None:
    order = place(api, "partial-1", payment_terms="prepaid", lines=[{"sku": "TEE-M", "qty": 3}])
    path = f"/v1/orders/{order['order_id']}"
    assert order["status"] == "allocated"
    for wrong in ({"lines": [{"line": "0", "qty": 1}]}, {"lines": [{"line": 0}]}, {"lines": []}, {"why": "x"}):
        refused = post(api, f"{path}/cancel", api.channel, wrong)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", wrong
    cancelled = act(api, api.channel, f"{path}/cancel", {"lines": [{"line": 0, "qty": 1}], "reason": "too many"})
    assert cancelled["receipt"]["result"]["cancelled"] == PRICE and cancelled["resource"]["lines"][0]["cancelled"] == 1
    too_much = act(api, api.channel, f"{path}/pay", {"amount": 3 * PRICE, "reference": "psp-1"}, status="rejected")
    assert too_much["reason"].startswith("over_payment")
    paid = act(api, api.channel, f"{path}/pay", {"amount": 2 * PRICE, "reference": "psp-2"})
    assert paid["resource"]["status"] == "released" and paid["resource"]["payment"]["captured"] == 2 * PRICE
    resent = act(api, api.channel, f"{path}/pay", {"amount": 2 * PRICE, "reference": "psp-2"})
    assert resent["receipt"]["result"]["duplicate"] is True
    refund = act(api, api.channel, f"{path}/refund", {"amount": 1, "reference": "rf-0"}, status="rejected")
    assert refund["reason"].startswith("over_refund")


def test_delivered_goods_returned_credited_refunded_and_the_order_completed(api: Api, writers: Writers) -> None:
    order = deliver(api, writers, "return-1", terms="prepaid")
    order_id = order["order_id"]
    assert order["status"] == "delivered" and order["fulfilments"][0]["tracking"] == "T-return-1"
    (invoice,) = order["invoices"]
    request = {"order_id": order_id, "lines": [{"sku": "TEE-M", "qty": 1}], "reason": "too small", "reference": "r1"}
    requested = act(api, api.channel, "/v1/returns", request)["resource"]
    return_id = requested["return_id"]
    assert requested["status"] == "requested" and api.ok(f"/v1/returns/{return_id}", api.store)["order_id"] == order_id
    assert api.get(f"/v1/returns/{return_id}", api.porto).status_code == 404
    assert post(api, f"/v1/returns/{return_id}/receive", writers.porto, {"location": "OPO-1"}).status_code == 404
    received = act(api, writers.lisbon, f"/v1/returns/{return_id}/receive", {"location": "LIS-1"})["resource"]
    (note,) = received["credit_notes"]
    assert received["status"] == "received"
    credit = api.ok(f"/v1/credit-notes/{note}", api.channel)
    assert credit["credit_note"] and credit["refers_to"] == invoice and credit["total"] == PRICE
    assert note in {doc["number"] for doc in collect_pages(api, api.operator, "/v1/credit-notes", 2)}
    assert api.get(f"/v1/credit-notes/{invoice}", api.channel).status_code == 404
    assert api.ok("/v1/returns", api.channel, order_id=order_id)["items"] == [
        api.ok(f"/v1/returns/{return_id}", api.channel)
    ]
    refunded = act(
        api, api.channel, f"/v1/orders/{order_id}/refund", {"amount": PRICE, "reference": "rf-1", "credit_note": note}
    )
    assert refunded["resource"]["status"] == "refunded"
    assert act(api, api.channel, f"/v1/orders/{order_id}/complete")["resource"]["status"] == "completed"
    history = api.ok(f"/v1/orders/{order_id}/history", api.channel)
    steps = [step["to"] for step in history["history"]]
    assert steps == [
        "created",
        "allocated",
        "paid",
        "released",
        "shipped",
        "delivered",
        "return_requested",
        "returned",
        "refunded",
        "completed",
    ]
    assert [e["kind"] for e in history["payments"]] == ["captured", "refunded"] and history["returns"] == [return_id]
    assert [e["status"] for e in history["fulfilments"][0]["events"]][-3:] == ["picked", "shipped", "delivered"]
    assert api.get(f"/v1/orders/{order_id}/history", api.porto).status_code == 404


def test_an_invoice_reads_as_a_printable_document(api: Api, writers: Writers) -> None:
    order = deliver(api, writers, "print-1")
    (number,) = order["invoices"]
    document = api.ok(f"/v1/invoices/{number}/document", api.channel)
    assert document["type"] == "invoice" and document["seller"] == {"org": "org-0", "name": document["seller"]["name"]}
    assert document["issue_date"] == datetime.fromtimestamp(document["issued_ms"] / 1000, UTC).strftime("%Y-%m-%d")
    assert document["order"]["external_ref"] == "print-1" and len(document["buyer"]["customer_hash"]) == 64
    (line,) = document["lines"]
    assert line["position"] == 1 and line["qty"] == 1 and line["gross"] == PRICE and line["tax_percent"] == "21.00"
    (rate,) = document["tax_summary"]
    assert rate["net"] + rate["tax"] == rate["gross"] == document["total"] == PRICE
    assert document["shipments"][0]["location"] == "LIS-1" and document["shipments"][0]["tracking"] == "T-print-1"
    assert api.get(f"/v1/invoices/{number}/document", api.porto).status_code == 404
    assert api.get("/v1/invoices/org-0-99999999/document", api.operator).status_code == 404


def test_a_return_cancelled_and_a_fulfilment_declined(api: Api, writers: Writers) -> None:
    order = deliver(api, writers, "return-2")
    requested = act(
        api, api.channel, f"/v1/orders/{order['order_id']}/request-return", {"lines": [{"sku": "TEE-M", "qty": 1}]}
    )
    return_id = requested["receipt"]["result"]["return_id"]
    cancelled = act(api, api.channel, f"/v1/returns/{return_id}/cancel")["resource"]
    assert cancelled["status"] == "cancelled"
    assert act(api, api.channel, f"/v1/returns/{return_id}/cancel", status="rejected")["reason"].startswith("invalid_")
    assert act(api, api.channel, "/v1/returns/SO-none-R1/cancel", status="rejected")["reason"].startswith("unknown_")
    second = place(api, "decline-1")
    fulfilment = second["fulfilments"][0]["fulfilment_id"]
    declined = act(api, writers.lisbon, f"/v1/fulfilments/{fulfilment}/decline", {"reason": "no staff"})["resource"]
    assert [f["location"] for f in declined["fulfilments"]] == ["LIS-1", "OPO-1"]
    assert [f["status"] for f in declined["fulfilments"]] == ["declined", "released"] and declined[
        "status"
    ] == "released"


def test_a_transfer_accepted_or_refused_by_the_receiving_store_and_its_lot_traced(api: Api, writers: Writers) -> None:
    act(
        api,
        writers.lisbon,
        "/v1/inventory/receipts",
        {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 4, "lot": "L-77"}]},
    )
    move = {"from": "LIS-1", "to": "OPO-1", "lines": [{"sku": "TEE-M", "qty": 3, "lot": "L-77"}]}
    sent = act(api, writers.lisbon, "/v1/inventory/transfers", move)["resource"]
    assert sent["status"] == "in_transit" and sent["from"] == "LIS-1" and sent["lines"][0]["lot"] == "L-77"
    transfer = sent["transfer_id"]
    not_theirs = act(api, writers.lisbon, f"/v1/inventory/transfers/{transfer}/accept", status="rejected")
    assert not_theirs["reason"].startswith("forbidden")
    accepted = act(api, writers.porto, f"/v1/inventory/transfers/{transfer}/accept")["resource"]
    assert accepted["status"] == "received" and api.ok(f"/v1/transfers/{transfer}", api.porto)["status"] == "received"
    back = act(api, writers.lisbon, "/v1/inventory/transfers", {**move, "lines": [{"sku": "TEE-M", "qty": 1}]})
    refused = act(
        api, writers.porto, f"/v1/inventory/transfers/{back['resource']['transfer_id']}/refuse", {"reason": "damaged"}
    )
    assert refused["resource"]["status"] == "refused"
    kinds = [(e["location"], e["kind"]) for e in collect_pages(api, api.operator, "/v1/lots/L-77", 2)]
    assert ("LIS-1", "receipt") in kinds and ("LIS-1", "transfer_out") in kinds and ("OPO-1", "transfer_in") in kinds
    assert {e["location"] for e in collect_pages(api, api.porto, "/v1/lots/L-77", 10)} == {"OPO-1"}
    assert api.get("/v1/transfers/TR-none", api.operator).status_code == 404
    assert api.ok("/v1/lots/NO-SUCH-LOT", api.operator)["items"] == []


def test_a_count_approved_by_an_operator_and_safety_stock(api: Api, writers: Writers) -> None:
    on_hand = api.ok("/v1/inventory", api.store, location="LIS-1", sku="TEE-M")["items"][0]
    counted = act(
        api,
        writers.lisbon,
        "/v1/inventory/counts",
        {"location": "LIS-1", "counts": [{"sku": "TEE-M", "qty": on_hand["on_hand"] + 2}]},
    )
    report = counted["resource"]
    assert report["status"] == "reported" and report["differences"][0]["difference"] == 2
    count = report["tx_id"]
    approval = {"location": "LIS-1", "reason": "found"}
    assert post(api, f"/v1/inventory/counts/{count}/approve", writers.lisbon, approval).status_code == 403
    assert (
        post(api, f"/v1/inventory/counts/{count}/approve", api.operator, {**approval, "reason": "lost"}).status_code
        == 422
    )
    approved = act(api, api.operator, f"/v1/inventory/counts/{count}/approve", approval)["resource"]
    assert approved["status"] == "approved"
    row = api.ok("/v1/inventory", api.store, location="LIS-1", sku="TEE-M")["items"][0]
    assert row["on_hand"] == on_hand["on_hand"] + 2
    safety = act(api, writers.lisbon, "/v1/inventory/safety-stock", {"location": "LIS-1", "sku": "TEE-M", "qty": 3})
    assert safety["resource"]["safety"] == 3
    act(api, writers.lisbon, "/v1/inventory/safety-stock", {"location": "LIS-1", "sku": "TEE-M", "qty": 0})
    other = act(
        api,
        writers.porto,
        "/v1/inventory/safety-stock",
        {"location": "LIS-1", "sku": "TEE-M", "qty": 1},
        status="rejected",
    )
    assert other["reason"].startswith("forbidden")


def test_an_import_answers_each_order(api: Api) -> None:
    place(api, "import-dup")
    orders = [
        order_payload("import-1"),
        order_payload("import-dup"),
        {**order_payload("import-2"), "lines": [{"sku": "NOPE", "qty": 1}]},
    ]
    answer = post(api, "/v1/orders/import", api.channel, orders, key="imp-1", wait="commit")
    assert answer.status_code == 200, answer.text
    first, dup, unknown = answer.json()["items"]
    assert first["status"] == "committed" and first["order_status"] == "released" and first["duplicate"] is False
    assert dup["status"] == "committed" and dup["duplicate"] is True
    assert unknown["status"] == "rejected" and unknown["reason"].startswith("unknown_sku") and unknown["index"] == 2
    again = post(api, "/v1/orders/import", api.channel, orders, key="imp-1").json()["items"]
    assert [item["tx_id"] for item in again] == [item["tx_id"] for item in answer.json()["items"]]
    assert post(api, "/v1/orders/import", api.channel, orders[:1], key="imp-1").status_code == 409
    queued = post(api, "/v1/orders/import", api.channel, [order_payload("import-3")])
    assert queued.status_code == 202 and queued.json()["items"][0]["status"] == "pending"
    too_many = post(api, "/v1/orders/import", api.channel, [order_payload(f"many-{i}") for i in range(501)])
    assert too_many.status_code == 422
    bad = post(
        api, "/v1/orders/import", api.channel, [order_payload("import-4"), {**order_payload("x"), "lines": "no"}]
    )
    assert bad.status_code == 422 and "1" in bad.json()["message"]
    assert api.ok("/v1/orders", api.channel, external_ref="import-4")["items"] == []
    assert post(api, "/v1/orders/import", api.store, orders).status_code == 403


def test_catalogue_locations_and_configuration_reads(api: Api) -> None:
    (sku,) = [row for row in api.ok("/v1/skus", api.operator)["items"] if row["sku"] == "TEE-M"]
    assert sku["price"] == PRICE and sku["virtual"] is False and api.ok("/v1/skus/TEE-M", api.operator) == sku
    assert api.get("/v1/skus/NOPE", api.operator).status_code == 404
    porto = api.ok("/v1/locations", api.operator, org="org-1")["items"]
    assert [row["location"] for row in porto] == ["OPO-1"]
    assert {row["location"] for row in collect_pages(api, api.operator, "/v1/locations", 1)} >= {"LIS-1", "OPO-1"}
    assert {row["type"] for row in api.ok("/v1/locations", api.operator, type="warehouse")["items"]} <= {"warehouse"}
    assert [row["location"] for row in api.ok("/v1/locations", api.operator, type="store", org="org-0")["items"]] == [
        "LIS-1"
    ]
    config = api.ok("/v1/config", api.operator)
    assert config["effective"]["orders.unpaid_timeout_ms"] == config["defaults"]["orders.unpaid_timeout_ms"]
    assert "step_budget" in config["protected"] and config["contracts"]
    for path in ("/v1/skus", "/v1/locations", "/v1/config"):
        assert api.get(path, api.channel).status_code == 403, path
        assert api.get(path, None).status_code == 401, path


def test_writes_refuse_bad_bodies_tokens_scopes_other_organisations_and_reused_keys(api: Api, writers: Writers) -> None:
    order = place(api, "refusals-1", payment_terms="prepaid")
    path = f"/v1/orders/{order['order_id']}/pay"
    headers = {"authorization": f"Bearer {api.channel}", "content-type": "application/json"}
    bad_json = api.http.post(path, content=b"{oops", headers=headers)
    assert bad_json.status_code == 422 and bad_json.json()["error"] == "invalid_request"
    for wrong in (
        {"amount": "5", "reference": "x"},
        {"amount": 5.0, "reference": "x"},
        {"amount": 0, "reference": "x"},
        {"amount": 5},
        [5],
        None,
    ):
        assert post(api, path, api.channel, wrong).status_code == 422, wrong
    assert api.http.post(path, json={"amount": 1, "reference": "x"}).status_code == 401
    assert post(api, path, writers.lisbon, {"amount": 1, "reference": "x"}).status_code == 403
    inventory_only = api.node.make_token("channel-1", "inventory:read")
    assert post(api, path, inventory_only, {"amount": 1, "reference": "x"}).status_code == 403
    hidden = post(api, f"/v1/fulfilments/{order['fulfilments'][0]['fulfilment_id']}/pick", writers.porto, {})
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    assert post(api, f"/v1/orders/{order['order_id']}/cancel", writers.porto, {}).status_code == 404
    unknown = act(api, api.channel, "/v1/orders/SO-none/pay", {"amount": 1, "reference": "x"}, status="rejected")
    assert unknown["reason"].startswith("unknown_order")
    body = {"amount": order["total"], "reference": "psp-refusals"}
    first = post(api, path, api.channel, body, key="pay-1")
    assert first.status_code == 202 and first.headers["location"] == f"/v1/tx/{first.json()['tx_id']}"
    assert api.node.client.wait_tx(first.json()["tx_id"])["status"] == "committed"
    same = post(api, path, api.channel, body, key="pay-1", wait="commit")
    assert same.status_code == 200 and same.json()["tx_id"] == first.json()["tx_id"]
    assert same.json()["resource"]["status"] == "released"
    other = post(api, path, api.channel, {**body, "reference": "psp-other"}, key="pay-1")
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    assert post(api, path, api.channel, body, wait="later").status_code == 422


def journal_times(api: Api, location: str) -> list[int]:
    return [entry["time_ms"] for entry in collect_pages(api, api.operator, "/v1/journal", 100, location=location)]


def test_a_stock_snapshot_reconciled_against_the_ledger_as_of_its_time(api: Api) -> None:
    place_rec = {"location": "REC-1", "type": "warehouse", "org": "org-0", "region": "PT", "lat": 1, "lon": 1}
    api.send("operator-1", "location.upsert", {**place_rec, "ships_online": False})
    api.send("operator-1", "sku.upsert", {"sku": "CAP", "price": 500, "currency": "EUR", "tax_class": "standard"})
    api.send(
        "operator-1",
        "stock.receive",
        {"location": "REC-1", "lines": [{"sku": "TEE-M", "qty": 10}, {"sku": "CAP", "qty": 3}]},
    )
    (as_of,) = set(journal_times(api, "REC-1"))
    time.sleep(0.01)
    api.send("operator-1", "stock.receive", {"location": "REC-1", "lines": [{"sku": "TEE-M", "qty": 5}]})
    snapshot = {"location": "REC-1", "as_of": as_of, "lines": [{"sku": "TEE-M", "qty": 8}]}
    answer = post(api, "/v1/reconciliations/stock", api.store, snapshot)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["compared"] == 2 and report["matched"] == 0
    cap, tee = report["differences"]
    assert (cap["sku"], cap["snapshot"], cap["ledger"], cap["difference"], cap["since"]) == ("CAP", 0, 3, -3, [])
    assert (tee["ledger"], tee["difference"], tee["now"]["on_hand"]) == (10, -2, 15)
    assert [(e["kind"], e["delta"]) for e in tee["since"]] == [("receipt", 5)]
    partial = post(api, "/v1/reconciliations/stock", api.store, {**snapshot, "full": False}).json()
    assert [d["sku"] for d in partial["differences"]] == ["TEE-M"]
    iso = datetime.fromtimestamp(as_of / 1000, UTC).isoformat()
    csv = api.http.post(
        "/v1/reconciliations/stock",
        content=b"SKU,Quantity\nTEE-M,10\nCAP,3\n",
        params={"location": "REC-1", "as_of": iso},
        headers={"authorization": f"Bearer {api.store}", "content-type": "text/csv"},
    )
    assert csv.status_code == 200, csv.text
    assert csv.json()["differences"] == [] and csv.json()["matched"] == 2
    now = post(
        api,
        "/v1/reconciliations/stock",
        api.store,
        {**snapshot, "as_of": as_of + 10**9, "lines": [{"sku": "TEE-M", "qty": 15}, {"sku": "CAP", "qty": 3}]},
    )
    assert now.json()["differences"] == []
    refused = [
        post(api, "/v1/reconciliations/stock", api.store, {**snapshot, "lines": [{"sku": "TEE-M", "qty": "8"}]}),
        post(api, "/v1/reconciliations/stock", api.store, {**snapshot, "lines": [{"sku": "X", "qty": 1}] * 2}),
        post(api, "/v1/reconciliations/stock", api.store, {**snapshot, "lines": [{"sku": "X", "qty": 1}] * 1001}),
        post(api, "/v1/reconciliations/stock", api.store, {"location": "REC-1", "lines": []}),
        api.http.post(
            "/v1/reconciliations/stock",
            content=b"sku;qty\n",
            params={"location": "REC-1", "as_of": "1"},
            headers={"authorization": f"Bearer {api.store}", "content-type": "text/csv"},
        ),
        api.http.post(
            "/v1/reconciliations/stock",
            content=b"sku,qty\nTEE-M,-1\n",
            params={"location": "REC-1", "as_of": "1"},
            headers={"authorization": f"Bearer {api.store}", "content-type": "text/csv"},
        ),
    ]
    assert [r.status_code for r in refused] == [422] * len(refused), [r.text for r in refused]
    assert post(api, "/v1/reconciliations/stock", api.porto, snapshot).status_code == 404
    assert post(api, "/v1/reconciliations/stock", api.channel, snapshot).status_code == 403


def day_of(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d")


def flagged(api: Api, token: str, day: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        page = api.ok("/v1/reconciliations/finance", token, day=day, limit=2, **({"cursor": cursor} if cursor else {}))
        rows.update({row["order_id"]: row for row in page["flagged"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


def test_a_days_money_reconciled_per_organisation_with_the_orders_that_disagree(api: Api, writers: Writers) -> None:
    unshipped = place(api, "money-1", payment_terms="prepaid")
    paid = act(api, api.channel, f"/v1/orders/{unshipped['order_id']}/pay", {"amount": PRICE, "reference": "m-1"})
    on_account = deliver(api, writers, "money-2")
    settled = deliver(api, writers, "money-3", terms="prepaid")
    day = day_of(paid["resource"]["payment"]["events"][-1]["time_ms"])
    rows = flagged(api, api.operator, day_of(on_account["history"][-1]["time_ms"]))
    assert rows[on_account["order_id"]]["reason"] == "awaiting_payment"
    assert rows[on_account["order_id"]]["difference"] == -PRICE
    assert settled["order_id"] not in flagged(api, api.operator, day_of(settled["history"][-1]["time_ms"]))
    today = flagged(api, api.operator, day)
    assert (
        today[unshipped["order_id"]]["reason"] == "awaiting_invoice"
        and today[unshipped["order_id"]]["captured"] == PRICE
    )
    answer = api.ok("/v1/reconciliations/finance", api.operator, day=day)
    (lisbon,) = [row for row in answer["organisations"] if (row["org"], row["currency"]) == ("org-0", "EUR")]
    assert lisbon["captured"] >= 2 * PRICE and lisbon["invoiced"] >= 2 * PRICE
    porto = api.ok("/v1/reconciliations/finance", api.porto, day=day)
    assert {row["org"] for row in porto["organisations"]} <= {"org-1"} and unshipped["order_id"] not in flagged(
        api, api.porto, day
    )
    assert api.ok("/v1/reconciliations/finance", api.operator, day="2001-01-01") == {
        "day": "2001-01-01",
        "organisations": [],
        "flagged": [],
        "next_cursor": None,
    }
    for wrong in ("2026-13-01", "yesterday", ""):
        assert api.get("/v1/reconciliations/finance", api.operator, day=wrong).status_code == 422, wrong
    assert (
        api.get("/v1/reconciliations/finance", api.node.make_token("store-1", "orders:read"), day=day).status_code
        == 403
    )
