"""The integrator's API of one real node process: tokens, scopes, organisations, lists, the change feed, writes.

One node serves the whole module (`tests.e2e.integrator`): two organisations,
so that reads private by organisation can be seen from both sides.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import omsnode
from tests.e2e.integrator import Api, collect_pages, follow, order_payload, post, start_api, stop_api

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(tmp_path_factory.mktemp("api") / "home")
    yield api
    stop_api(api)


def test_business_routes_need_a_known_token(api: Api) -> None:
    order_id = api.send("channel-1", "order.create", order_payload("auth-1"))["order_id"]
    for path in (f"/v1/orders/{order_id}", "/v1/inventory", "/v1/journal", "/v1/invoices", "/v1/blocks/1"):
        missing = api.get(path, None)
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized", path
        assert missing.headers["www-authenticate"] == "Bearer"
        assert api.get(path, "oms_00000000_guess").status_code == 401
        assert api.get(path, api.operator).status_code == 200, path
    for path in ("/health", "/v1/status", "/v1/peers", "/metrics", "/openapi.json", "/docs"):
        assert api.get(path, None).status_code == 200, path


def test_a_token_lacking_the_scope_or_the_role_is_403(api: Api) -> None:
    for path in ("/v1/inventory", "/v1/journal", "/v1/blocks/1"):
        refused = api.get(path, api.channel)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", path
    auditor = api.node.make_token("auditor-1", "chain:read")
    assert api.get("/v1/blocks/1", auditor).status_code == 200
    store_chain = api.node.make_token("store-1", "chain:read")
    assert api.get("/v1/blocks/1", store_chain).status_code == 403


def test_tokens_created_and_revoked_count_at_once_on_a_running_node(api: Api) -> None:
    token = api.node.make_token("auditor-1", "inventory:read")
    assert api.get("/v1/inventory", token).status_code == 200
    listed = json.loads(omsnode("token", "list", "--home", str(api.node.home), "--json").stdout)
    (entry,) = [row for row in listed if token.split("_")[1] == row["id"]]
    assert entry["identity"] == "auditor-1" and "hash" not in entry
    assert token not in (api.node.home / "api_tokens.json").read_text()
    omsnode("token", "revoke", "--home", str(api.node.home), "--id", entry["id"])
    assert api.get("/v1/inventory", token).status_code == 401


def test_token_create_refuses_unknown_identities_and_scopes(api: Api) -> None:
    home = str(api.node.home)
    for identity, scopes in (("node-0", "orders:read"), ("mallory", "orders:read"), ("store-1", "orders:delete")):
        result = omsnode("token", "create", "--home", home, "--identity", identity, "--scopes", scopes, check=False)
        assert result.returncode == 1 and result.stdout == "" and "error" in result.stderr


def test_reads_are_private_by_organisation(api: Api) -> None:
    lisbon = api.send("channel-1", "order.create", order_payload("org-lis"))
    fulfilment = lisbon["fulfilments"][0]
    assert fulfilment.startswith(lisbon["order_id"])
    order = api.ok(f"/v1/orders/{lisbon['order_id']}", api.operator)
    assert {f["location"] for f in order["fulfilments"]} == {"LIS-1"}
    assert api.ok(f"/v1/orders/{lisbon['order_id']}", api.store)["order_id"] == lisbon["order_id"]
    hidden = api.get(f"/v1/orders/{lisbon['order_id']}", api.porto)
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    porto_rows = api.ok("/v1/inventory", api.porto)["items"]
    assert {row["location"] for row in porto_rows} == {"OPO-1"}
    assert {row["location"] for row in api.ok("/v1/journal", api.porto)["items"]} == {"OPO-1"}
    assert {row["location"] for row in api.ok("/v1/inventory", api.operator)["items"]} >= {"LIS-1", "OPO-1"}


def test_a_token_over_its_rate_gets_429_with_retry_after(api: Api) -> None:
    token = api.node.make_token("auditor-1", "inventory:read", "--rate", "1")
    codes = [api.get("/v1/inventory", token, location="none").status_code for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    limited = api.get("/v1/inventory", token, location="none")
    assert limited.status_code == 429 and limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert api.get("/v1/inventory", api.operator, location="none").status_code == 200


def test_orders_list_by_status_channel_location_and_time_a_page_at_a_time(api: Api) -> None:
    made = [api.send("channel-1", "order.create", order_payload(f"list-{i}"))["order_id"] for i in range(5)]
    porto = api.send("channel-1", "order.create", order_payload("list-porto", region="PO"))["order_id"]
    api.send("channel-1", "order.cancel", {"order_id": made[0], "reason": "changed mind"})
    every = collect_pages(api, api.operator, "/v1/orders", 2)
    ids = [row["order_id"] for row in every]
    assert len(ids) == len(set(ids)) and {*made, porto} <= set(ids)
    assert [row["created_ms"] for row in every] == sorted(row["created_ms"] for row in every)
    cancelled = collect_pages(api, api.operator, "/v1/orders", 1, status="cancelled")
    assert made[0] in {row["order_id"] for row in cancelled} and {row["status"] for row in cancelled} == {"cancelled"}
    by_channel = collect_pages(api, api.operator, "/v1/orders", 3, channel="channel-1")
    assert {row["order_id"] for row in by_channel} == set(ids)
    at_porto = collect_pages(api, api.operator, "/v1/orders", 3, location="OPO-1")
    assert [row["order_id"] for row in at_porto] == [porto]
    assert {row["order_id"] for row in collect_pages(api, api.porto, "/v1/orders", 2)} == {porto}
    first = api.ok(f"/v1/orders/{made[1]}", api.operator)
    created = first["created_ms"]
    since = collect_pages(api, api.operator, "/v1/orders", 2, created_min=created, created_max=created)
    assert made[1] in {row["order_id"] for row in since} and {row["created_ms"] for row in since} == {created}
    recent = collect_pages(api, api.operator, "/v1/orders", 2, updated_min=every[-1]["updated_ms"])
    assert all(row["updated_ms"] >= every[-1]["updated_ms"] for row in recent) and recent
    (by_ref,) = api.ok("/v1/orders", api.channel, external_ref="list-3")["items"]
    assert by_ref["order_id"] == made[3]
    assert api.ok("/v1/orders", api.porto, external_ref="list-3", channel="channel-1")["items"] == []


def test_list_parameters_are_checked(api: Api) -> None:
    for params in ({"limit": 0}, {"limit": 10_000}, {"limit": "x"}, {"created_min": -1}, {"cursor": "%%%"}):
        refused = api.get("/v1/orders", api.operator, **params)
        assert refused.status_code == 422 and refused.json()["error"] == "invalid_request", params
    assert api.get("/v1/orders/SO-nothing", api.operator).status_code == 404
    assert api.get("/v1/events", api.operator, after="x").status_code == 422
    assert api.get("/v1/events", api.operator, types="order.status,nope").status_code == 422
    assert api.get("/v1/events", api.operator, wait=600).status_code == 422


def test_the_feed_long_polls_until_a_block_commits(api: Api) -> None:
    _, cursor = follow(api, api.operator, "0")
    started = httpx.get(f"{api.node.url}/v1/status").json()["height"]
    empty = api.ok("/v1/events", api.operator, after=cursor, wait=1)
    assert empty == {"items": [], "next_cursor": cursor}
    with httpx.Client(base_url=api.node.url, timeout=40) as waiting:
        answer: dict[str, Any] = {}

        def poll() -> None:
            headers = {"authorization": f"Bearer {api.operator}"}
            answer.update(waiting.get("/v1/events", params={"after": cursor, "wait": 30}, headers=headers).json())

        poller = threading.Thread(target=poll)
        poller.start()
        api.send("operator-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 1}]})
        poller.join(timeout=35)
    (moved,) = answer["items"]
    assert moved["type"] == "stock.movement" and moved["height"] > started and moved["data"]["delta"] == 1


def test_the_feed_from_zero_across_a_restart_and_a_timeout_ends_with_the_node_state(api: Api) -> None:
    api.send("channel-1", "order.create", order_payload("feed-porto", region="PO"))
    events, cursor = follow(api, api.operator, "0")
    api.send("operator-1", "config.set", {"key": "orders.unpaid_timeout_ms", "value": 500})
    unpaid = api.send("channel-1", "order.create", order_payload("feed-unpaid", terms="prepaid"))["order_id"]
    api.node.stop()
    api.node.start()
    more, cursor = follow(api, api.operator, cursor)
    events += more
    time.sleep(0.6)
    api.send("operator-1", "config.set", {"key": "orders.unpaid_timeout_ms", "value": 1_800_000})
    assert api.ok(f"/v1/orders/{unpaid}", api.operator)["status"] == "cancelled"
    more, cursor = follow(api, api.operator, cursor)
    events += more
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(set(cursors)), "events missed or repeated"
    (timeout,) = [e for e in events if e["type"] == "order.status" and e["data"]["order_id"] == unpaid][-1:]
    assert timeout["data"]["to"] == "cancelled" and timeout["tx_id"] is None and timeout["data"]["by"] == "ledger"
    assert timeout["block"] and timeout["data"]["reason"] == "payment timeout"
    statuses: dict[str, str] = {}
    stock: dict[tuple[str, str], list[int]] = {}
    for event in events:
        data = event["data"]
        if event["type"] == "order.status":
            statuses[data["order_id"]] = data["to"]
        elif event["type"] == "stock.movement":
            held = stock.setdefault((data["location"], data["sku"]), [0, 0])
            held[0] += data["delta"] if data["bucket"] == "sellable" else 0
            held[1] += data["reserved_delta"]
    for order_id, status in statuses.items():
        assert api.ok(f"/v1/orders/{order_id}", api.operator)["status"] == status, order_id
    reported = {
        (r["location"], r["sku"]): [r["on_hand"], r["reserved"]] for r in api.ok("/v1/inventory", api.operator)["items"]
    }
    assert stock == reported
    porto_events, _ = follow(api, api.porto, "0")
    porto_orders = {row["order_id"] for row in collect_pages(api, api.porto, "/v1/orders", 50)}
    assert porto_orders and {e["data"]["order_id"] for e in porto_events if "order_id" in e["data"]} == porto_orders
    assert {e["data"]["location"] for e in porto_events if e["type"] == "stock.movement"} == {"OPO-1"}
    porto_moves, _ = follow(api, api.porto, "0", types="stock.movement", limit=3)
    assert porto_moves == [e for e in porto_events if e["type"] == "stock.movement"], "filtered by type, paged"


def test_writes_through_resource_routes_signed_by_the_node(api: Api) -> None:
    placed = post(api, "/v1/orders", api.channel, order_payload("rest-1"), wait="commit")
    assert placed.status_code == 200, placed.text
    result = placed.json()
    assert result["status"] == "committed" and result["resource"]["status"] == "released"
    order_id = result["resource"]["order_id"]
    assert api.ok(f"/v1/tx/{result['tx_id']}", api.channel)["status"] == "committed"
    fulfilment = result["resource"]["fulfilments"][0]["fulfilment_id"]
    for action, body in (("pick", {}), ("ship", {"carrier": "CTT", "tracking": "RR1PT"})):
        done = post(api, f"/v1/fulfilments/{fulfilment}/{action}", api.operator, body, wait="commit").json()
        assert done["status"] == "committed", done
    assert done["resource"]["fulfilments"][0]["tracking"] == "RR1PT"
    late = post(api, f"/v1/orders/{order_id}/cancel", api.channel, {"reason": "too late"}, wait="commit").json()
    assert late["status"] == "rejected" and late["reason"].startswith("already_shipped")
    queued = post(
        api, "/v1/inventory/receipts", api.operator, {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 2}]}
    )
    assert queued.status_code == 202 and queued.headers["location"] == f"/v1/tx/{queued.json()['tx_id']}"
    assert api.node.client.wait_tx(queued.json()["tx_id"])["status"] == "committed"


def test_an_idempotency_key_answers_the_first_result_and_refuses_another_body(api: Api) -> None:
    first = post(api, "/v1/orders", api.channel, order_payload("idem-1"), key="k-1", wait="commit").json()
    again = post(api, "/v1/orders", api.channel, order_payload("idem-1"), key="k-1")
    assert again.status_code == 200 and again.json()["tx_id"] == first["tx_id"]
    assert again.json()["receipt"] == first["receipt"]
    other = post(api, "/v1/orders", api.channel, order_payload("idem-2"), key="k-1")
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    assert api.ok("/v1/orders", api.channel, external_ref="idem-2")["items"] == []


def test_writes_refuse_bad_bodies_missing_tokens_scopes_and_roles(api: Api) -> None:
    bad_json = api.http.post(
        "/v1/orders",
        content=b"{not json",
        headers={"authorization": f"Bearer {api.channel}", "content-type": "application/json"},
    )
    assert bad_json.status_code == 422 and bad_json.json()["error"] == "invalid_request"
    assert post(api, "/v1/orders", api.channel, [1, 2]).status_code == 422
    assert post(api, "/v1/orders", api.channel, order_payload("x"), wait="soon").status_code == 422
    assert post(api, "/v1/orders/SO1/explode", api.channel, {}).status_code in (404, 422)
    assert api.http.post("/v1/orders", json=order_payload("x")).status_code == 401
    assert post(api, "/v1/orders", api.store, order_payload("x")).status_code == 403
    store_writer = api.node.make_token("store-1", "orders:write")
    refused = post(api, "/v1/orders", store_writer, order_payload("x"))
    assert refused.status_code == 403 and "order.create" in refused.json()["message"]
    unknown = post(api, "/v1/orders/SO-none/cancel", api.channel, {}, wait="commit").json()
    assert unknown["status"] == "rejected" and unknown["reason"].startswith("unknown_order")
