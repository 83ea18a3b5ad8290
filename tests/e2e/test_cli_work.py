"""A store's and an operator's day with `omsnode`, against one real node process.

Goods in, an order picked, shipped, delivered and partly returned (and a
return cancelled), a transfer between two stores accepted and one refused, a
count reported and approved, a fulfilment declined and allocated elsewhere,
an order held in review approved: each a command run as a user runs it (`cli.work_commands`,
`omsnode order approve`), judged by its output and exit code and checked
against the node's API. And `omsnode tx --wait`: the tx id before the wait,
and no token, nothing sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cli.output import ExitCode
from tests.e2e.conftest import SingleNode
from tests.e2e.integrator import order_payload
from tests.e2e.test_cli import Cli

pytestmark = [pytest.mark.e2e]


class Day(Cli):
    """The node, with a store's token beside the operator's and the channel's."""

    def __init__(self, node: SingleNode, config_home: Any) -> None:
        super().__init__(node, config_home)
        self.store = node.make_token("store-1", "orders:read,orders:write,inventory:read,inventory:write")

    def on_hand(self, location: str) -> int:
        on_hand: int = self.api(f"/v1/inventory/{location}/TEE-M")["on_hand"]
        return on_hand


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    root = tmp_path_factory.mktemp("work")
    node = SingleNode(root / "home")
    node.start()
    tee = {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}
    assert node.send("operator-1", "sku.upsert", tee)["status"] == "committed"
    for location in ("LIS-1", "LIS-2"):
        place = {"location": location, "type": "store", "org": "org-0", "region": "PT", "lat": 38_700_000, "lon": 1}
        assert node.send("operator-1", "location.upsert", place)["status"] == "committed"
    yield Day(node, root / "config")
    node.stop()
    node.client.close()


def test_goods_in_then_an_order_picked_shipped_delivered_and_returned(day: Day) -> None:
    received = day.json("receive", "LIS-1", "TEE-M=200@LOT-A", "--document", "PO-CLI-1", token=day.store)
    assert received["status"] == "committed", received
    assert day.on_hand("LIS-1") == 200
    (entry,) = day.api("/v1/journal", location="LIS-1")["items"]
    assert (entry["document"], entry["lot"], entry["delta"]) == ("PO-CLI-1", "LOT-A", 200)

    placed = day.json("order", "create", "--payload", json.dumps(order_payload("work-1", qty=2)), token=day.channel)
    order_id, fulfilment = placed["resource"]["order_id"], placed["resource"]["fulfilments"][0]["fulfilment_id"]
    assert day.json("pick", fulfilment, token=day.store)["resource"]["fulfilments"][0]["status"] == "picked"
    shipped = day.ok("ship", fulfilment, "--carrier", "CTT", "--tracking", "RR1", token=day.store)
    assert f"order {order_id}: shipped" in shipped
    assert day.api(f"/v1/orders/{order_id}")["fulfilments"][0]["tracking"] == "RR1"
    assert f"order {order_id}: delivered" in day.ok("deliver", fulfilment, token=day.store)
    again = day.run("pick", fulfilment, "--node", day.node.url, "--token", day.store)
    assert again.returncode == ExitCode.FAILED and "invalid_transition" in again.stdout

    asked = day.json("return", "request", order_id, "TEE-M=1", "--reason", "too small", token=day.channel)
    return_id = asked["resource"]["return_id"]
    assert asked["resource"]["status"] == "requested"
    back = day.ok("return", "receive", return_id, "--location", "LIS-1", token=day.store)
    assert f"return {return_id}: received" in back
    assert day.on_hand("LIS-1") == 200 - 2 + 1
    again = day.json("return", "request", order_id, "TEE-M=1", token=day.channel)["resource"]["return_id"]
    assert day.json("return", "cancel", again, token=day.channel)["resource"]["status"] == "cancelled"


def test_a_store_declines_a_fulfilment_and_it_is_allocated_elsewhere(day: Day) -> None:
    day.json("receive", "LIS-2", "TEE-M=5", "--document", "PO-CLI-4", token=day.store)
    placed = day.json("order", "create", "--payload", json.dumps(order_payload("work-decline")), token=day.channel)
    first = placed["resource"]["fulfilments"][0]
    declined = day.json("decline", first["fulfilment_id"], "--reason", "shelf empty", token=day.store)
    statuses = {f["location"]: f["status"] for f in declined["resource"]["fulfilments"]}
    assert statuses[first["location"]] == "declined" and "released" in statuses.values(), statuses


def test_a_transfer_between_stores_and_a_count_approved(day: Day) -> None:
    day.json("receive", "LIS-1", "TEE-M=10", "--document", "PO-CLI-2", token=day.store)
    before, there = day.on_hand("LIS-1"), day.on_hand("LIS-2")
    sent = day.json("transfer", "send", "LIS-1", "LIS-2", "TEE-M=3", token=day.store)
    transfer_id = sent["resource"]["transfer_id"]
    assert sent["resource"]["status"] == "in_transit" and day.on_hand("LIS-1") == before - 3
    assert f"transfer {transfer_id}: received" in day.ok("transfer", "accept", transfer_id, token=day.store)
    assert day.on_hand("LIS-2") == there + 3
    back = day.json("transfer", "send", "LIS-1", "LIS-2", "TEE-M=1", token=day.store)["resource"]["transfer_id"]
    refused = day.json("transfer", "refuse", back, "--reason", "no room", token=day.store)
    assert refused["resource"]["status"] == "refused" and day.on_hand("LIS-1") == before - 3

    counted = f"TEE-M={there + 3 - 1}"
    reported = day.json("count", "report", "LIS-2", counted, "--reference", "SHEET-7", token=day.store)
    count_id = reported["resource"]["tx_id"]
    assert reported["resource"]["status"] == "reported" and day.on_hand("LIS-2") == there + 3
    by_store = ("count", "approve", "LIS-2", count_id, "--reason", "theft", "--node", day.node.url)
    refused = day.run(*by_store, "--token", day.store)
    assert refused.returncode == ExitCode.AUTH and "may not stock.count.approve" in refused.stderr
    approved = day.json("count", "approve", "LIS-2", count_id, "--reason", "shrinkage")
    assert approved["resource"]["status"] == "approved" and day.on_hand("LIS-2") == there + 2


def test_an_order_held_in_review_approved_by_an_operator(day: Day) -> None:
    day.json("receive", "LIS-1", "TEE-M=150", "--document", "PO-CLI-3", token=day.store)
    held = day.json("order", "create", "--payload", json.dumps(order_payload("work-big", qty=101)), token=day.channel)
    order_id = held["resource"]["order_id"]
    assert held["resource"]["status"] == "on_hold", held
    approved = day.json("order", "approve", order_id, "--reason", "known customer")
    assert approved["status"] == "committed" and approved["resource"]["status"] == "released", approved


def test_tx_wait_prints_the_id_first_and_needs_a_token_before_it_sends(day: Day) -> None:
    home = str(day.node.home)
    payload = json.dumps({"sku": "CLI-TX", "price": 5, "currency": "EUR", "tax_class": "standard"})
    send = ("tx", "sku.upsert", "--home", home, "--as", "operator-1", "--payload", payload, "--wait")
    tokenless = day.run(*send)
    assert tokenless.returncode == ExitCode.USAGE and "--wait" in tokenless.stderr and "token" in tokenless.stderr
    assert day.node.client.status()["mempool"] == 0
    assert day.api("/v1/skus", limit=100)["items"] == [day.api("/v1/skus/TEE-M")], "nothing was sent"

    sent = day.run(*send, "--json", env=day.env(OMSNODE_TOKEN=day.operator))
    assert sent.returncode == 0, sent.stderr
    status = json.loads(sent.stdout)
    assert status["status"] == "committed"
    assert f"tx {status['tx_id']} sent" in sent.stderr.splitlines()[0]
    assert day.api("/v1/skus/CLI-TX")["price"] == 5
