"""Channel pulling end to end: a test channel (Shopify's format and the generic one, with 429s, slow pages,
malformed orders, unknown SKUs and orders cancelled after being pulled) drives `omsnode channel run` against
a 4-node devnet; the puller is SIGKILLed at 20 seeded random points and loses and doubles nothing. And a
puller left running takes files as they are dropped, and serves its figures on `--metrics-port`.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devnet.network import Devnet, free_ports
from omsclient import Client
from tests.e2e.conftest import SingleNode
from tests.e2e.test_single_node import setup_catalogue
from tests.helpers.channel_server import ChannelServer, generic_order, shopify_order
from tests.helpers.channels import PullerProcess, channel_network
from tests.helpers.devnet import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

SEED = 1818
KILLS = 20
CATALOGUE = (("TSHIRT-M", "19.99"), ("JEANS-32", "49.99"), ("BOOK-OMS", "29.00"))
"""The devnet's sample SKUs at their catalogue prices."""

CONFIG = """
[[channels]]
name = "shop"
adapter = "shopify"
base_url = "{url}"
access_token_env = "TEST_SHOP_TOKEN"
poll_seconds = 0.2
timeout_seconds = 10
region = "LIS"
sku_map = {{ "TS-M" = "TSHIRT-M"{extra_map} }}

[[channels]]
name = "market"
adapter = "rest"
url = "{url}/orders"
page_size = 3
poll_seconds = 0.2
region = "MAD"
"""

BAD_SHOPIFY = {
    "5101": ({"currency": None}, "missing_currency"),
    "5102": ({"line": {"price": "19.999"}}, "bad_price"),
    "5103": ({"line": {"quantity": "1"}}, "bad_quantity"),
    "5104": ({"line": {"sku": "GHOST-1"}}, "unknown_sku"),
    "5105": ({"line": {"sku": "OLD-SHIRT", "price": "19.99"}}, "unknown_sku"),
}
"""Shopify orders that must end in the dead letters, and why."""

BAD_GENERIC = {"G-101": ({"currency": "XYZ"}, "unknown_currency"), "G-102": ({"lines": []}, "no_lines")}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devnet, str]]:
    with channel_network(tmp_path_factory.mktemp("channels") / "net") as made:
        yield made


def fill_channel(shop: ChannelServer) -> tuple[set[str], set[str]]:
    """Good and bad orders in both formats; the external references of the good ones, and the paid ones."""
    good, paid = set(), set()
    for i in range(16):
        sku, price = CATALOGUE[i % 3]
        order_id = 5001 + i
        paid_now = i % 2 == 0
        shop.add_shopify(shopify_order(order_id, [("TS-M" if i % 5 == 0 else sku, 1 + i % 2, price)], paid=paid_now))
        good.add(f"shop:{order_id}")
        if paid_now:
            paid.add(f"shop:{order_id}")
        if i % 2:
            shop.tick()
    for order_id, (change, _) in BAD_SHOPIFY.items():
        raw = shopify_order(int(order_id), [("BOOK-OMS", 1, "29.00")])
        raw["line_items"][0].update(change.get("line", {}))
        raw.update({key: value for key, value in change.items() if key != "line"})
        shop.add_shopify(raw)
        shop.tick()
    for i in range(8):
        sku, price = CATALOGUE[i % 3]
        shop.add_generic(generic_order(f"G-{i + 1}", [(sku, 1, price)], paid=i % 3 == 0))
        good.add(f"market:G-{i + 1}")
        if i % 3 == 0:
            paid.add(f"market:G-{i + 1}")
        shop.tick()
    for order_id, (change, _) in BAD_GENERIC.items():
        raw = generic_order(order_id, [("BOOK-OMS", 1, "29.00")])
        raw.update(change)
        shop.add_generic(raw)
    return good, paid


def channel_orders(devnet: Devnet, index: int) -> Counter[str]:
    """The external references of every order channel-1 placed, as node `index` lists them."""
    client = devnet.client(index, timeout=30)
    refs = Counter(item["external_ref"] for item in client.pages("/v1/orders", channel="channel-1", limit=200))
    client.close()
    return refs


def find_order(client: Client, ref: str) -> dict[str, Any] | None:
    items = client.get("/v1/orders", external_ref=ref, channel="channel-1")["items"]
    return None if not items else dict(client.get(f"/v1/orders/{items[0]['order_id']}"))


def wait_for_start(puller: PullerProcess, process: subprocess.Popen[bytes], starts: int) -> None:
    """Wait until the puller's log says it started (its imports done), or it ended."""
    deadline = time.monotonic() + 120
    while puller.log.read_text().count('"event":"start"') <= starts and process.poll() is None:
        assert time.monotonic() < deadline, "the puller did not start"
        time.sleep(0.05)


def kill_at_random_points(puller: PullerProcess, shop: ChannelServer, devnet: Devnet, good: set[str]) -> set[str]:
    """Run the puller and SIGKILL it at seeded random times after its start, while new orders keep arriving in
    the channel (added to `good`); halfway, cancel in the channel some orders the ledger has. Their references."""
    rng = random.Random(SEED)
    cancelled: set[str] = set()
    client = devnet.client(0, timeout=30)
    killed_mid_page = 0
    for round_ in range(KILLS):
        sku, price = CATALOGUE[round_ % 3]
        shop.add_shopify(shopify_order(6001 + round_, [(sku, 1, price)], paid=round_ % 2 == 0))
        shop.add_generic(generic_order(f"N-{round_}", [(sku, 1, price)]))
        shop.tick()
        good |= {f"shop:{6001 + round_}", f"market:N-{round_}"}
        starts, pages = puller.log.read_text().count('"event":"start"'), puller.count_pages()
        process = puller.start()
        wait_for_start(puller, process, starts)
        try:
            process.wait(timeout=rng.uniform(0.0, 2.5))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            killed_mid_page += puller.count_pages() > pages
        if round_ == KILLS // 2:
            for kind, order_id, ref in (("shopify", "5002", "shop:5002"), ("generic", "G-2", "market:G-2")):
                if find_order(client, ref) is not None:
                    shop.cancel(kind, order_id)
                    cancelled.add(ref)
    client.close()
    print(f"seed {SEED}: {killed_mid_page} of {KILLS} runs killed after saving a page and before the end, ")
    print(f"{shop.throttled} throttled answers, cancelled {sorted(cancelled)}; log in {puller.log}")
    assert killed_mid_page >= 2, "some kills must land while the puller is working (after a page, before the end)"
    return cancelled


def test_channel_orders_arrive_exactly_once_through_kills(network: tuple[Devnet, str], tmp_path: Path) -> None:
    devnet, token = network
    with ChannelServer(seed=SEED, page_size=4, throttle=0.15, slow=0.1) as shop:
        good, paid = fill_channel(shop)
        puller = PullerProcess(tmp_path, devnet.nodes[0].url, token, CONFIG.format(url=shop.url, extra_map=""))
        puller.log.write_text("")
        cancelled = kill_at_random_points(puller, shop, devnet, good)
        puller.run_to_end()

        for node in devnet.nodes:
            refs = channel_orders(devnet, node.index)
            assert set(refs) == good and max(refs.values()) == 1, f"node {node.index}: {refs}"

        letters = {(d["channel"], d["channel_order_id"]): d for d in puller.json("deadletters")}
        expected = {("shop", k): r for k, (_, r) in BAD_SHOPIFY.items()} | {
            ("market", k): r for k, (_, r) in BAD_GENERIC.items()
        }
        assert {key: letter["reason"] for key, letter in letters.items()} == expected
        assert letters[("shop", "5104")]["raw"]["line_items"][0]["sku"] == "GHOST-1"

        client = devnet.client(0, timeout=30)
        late = {"shop:5003", "market:G-3"}
        shop.cancel("shopify", "5003")
        shop.cancel("generic", "G-3")
        puller.run_to_end()
        for ref in cancelled | late:
            assert find_order(client, ref)["status"] == "cancelled", ref
        for ref in sorted(paid - cancelled - late):
            order = find_order(client, ref)
            assert order["payment"]["captured"] == order["total"], ref

        status = {row["channel"]: row for row in puller.json("status")}
        assert status["shop"]["committed"] == 16 + KILLS and status["market"]["committed"] == 8 + KILLS
        shop.tick()
        shop.add_shopify(shopify_order(5106, [("BOOK-OMS", 1, "29.00")], currency=None))
        puller.run_to_end()
        status = {row["channel"]: row for row in puller.json("status")}
        puller.run_to_end()
        again = {row["channel"]: row for row in puller.json("status")}
        counts = ("pulled", "committed", "updated", "dead_lettered", "open_dead_letters")
        assert [[again[c][k] for k in counts] for c in again] == [[status[c][k] for k in counts] for c in again], (
            "the last instant of a walk (a bad order) is read again and skipped"
        )
        assert status["shop"]["open_dead_letters"] == 6 and status["market"]["open_dead_letters"] == 2
        assert "dead_letters_growing" in status["shop"]["alerts"]
        logged = [(line["event"], line.get("channel"), line.get("reason")) for line in puller.read_log()]
        assert ("alert", "shop", None) in logged and ("dead_letter", "shop", "unknown_sku") in logged

        puller.config.write_text(CONFIG.format(url=shop.url, extra_map=', "OLD-SHIRT" = "TSHIRT-M"'))
        replay = puller.cli("deadletters", "--replay", str(letters[("shop", "5105")]["id"]), "--token", token)
        assert "went through" in replay.stdout
        for node in devnet.nodes:
            assert channel_orders(devnet, node.index)["shop:5105"] == 1
        assert ("shop", "5105") not in {(d["channel"], d["channel_order_id"]) for d in puller.json("deadletters")}
        client.close()


FILES_CONFIG = """
[[channels]]
name = "pos"
adapter = "files"
path = "{path}"
poll_seconds = 0.2
region = "PT"
"""

POS_CSV = """id,currency,updated_at,customer_ref,sku,qty,price
F-1,EUR,2026-12-01T10:00:00Z,c-1,TEE-M,1,19.99
F-2,EUR,2026-12-01T10:00:00Z,c-2,TEE-M,two,19.99
"""


def scrape(url: str) -> dict[str, float]:
    """The puller's figures of channel `pos` by name (0 while it does not answer yet)."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return {}
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("channel") == "pos" and "alert" not in sample.labels
    }


def test_a_running_puller_takes_files_as_they_come_and_serves_its_figures(
    single_node: SingleNode, tmp_path: Path
) -> None:
    setup_catalogue(single_node)
    token = single_node.make_token("channel-1", "orders:read,orders:write")
    drops = tmp_path / "drops"
    drops.mkdir()
    puller = PullerProcess(tmp_path, single_node.url, token, FILES_CONFIG.format(path=drops))
    (port,) = free_ports(1)
    metrics = f"http://127.0.0.1:{port}/metrics"
    (drops / "day-1.csv").write_text(POS_CSV)
    process = puller.start(once=False, metrics_port=port)
    try:
        wait_for(lambda: scrape(metrics).get("oms_channel_committed_total") == 1, 120, "the first file's order")
        assert scrape(metrics)["oms_channel_dead_letters_open"] == 1
        assert (drops / "done" / "day-1.csv").exists()
        order = {"id": "F-3", "currency": "EUR", "updated_at": "2026-12-01T11:00:00Z", "lines": []}
        order["lines"] = [{"sku": "TEE-M", "qty": 1, "price": "19.99"}]
        (drops / "day-2.json").write_text(json.dumps([order]))
        wait_for(lambda: scrape(metrics).get("oms_channel_committed_total") == 2, 120, "a file dropped later")
    finally:
        process.terminate()
        process.wait(timeout=30)
    refs = {item["external_ref"] for item in single_node.client.pages("/v1/orders", channel="channel-1")}
    assert refs == {"pos:F-1", "pos:F-3"}
    (letter,) = puller.json("deadletters")
    assert (letter["channel_order_id"], letter["reason"]) == ("F-2", "bad_quantity")
