"""Benchmark: pull throughput, orders per second from a test channel into committed orders on a 4-node devnet.

A channel serves `OMS_BENCH_CHANNEL_ORDERS` orders (default 500) in Shopify's
format, 250 a page, without faults; `omsnode channel run --once` pulls them
into the ledger. Two runs: unpaid orders (one import per page), and paid
ones (each also marked paid: a read of the order and a capture). The time is
the puller's own, from its `start` to its `done` log line. It reports
figures and asserts only that every order was committed once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from devnet.network import Devnet
from devnet.sample import SAMPLE_SKUS
from tests.helpers.channel_server import ChannelServer, shopify_order
from tests.helpers.channels import SHOP_TOKEN_ENV, PullerProcess, channel_network

pytestmark = [pytest.mark.bench, pytest.mark.timeout(3600)]

ORDERS = int(os.environ.get("OMS_BENCH_CHANNEL_ORDERS", "500"))

CONFIG = f"""
[[channels]]
name = "{{name}}"
adapter = "shopify"
base_url = "{{url}}"
access_token_env = "{SHOP_TOKEN_ENV}"
region = "LIS"
"""


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Devnet, str]]:
    with channel_network(tmp_path_factory.mktemp("bench") / "net") as (devnet, token):
        client = devnet.client(0, timeout=60)
        keyring = devnet.keyring(client)
        lines = [{"sku": sku, "qty": 100_000} for sku, *_ in SAMPLE_SKUS]
        locations = [f"STORE-{code}-{i}" for i, code in enumerate(("LIS", "MAD", "PAR", "BER"))]
        receipts = [
            keyring.sign("operator-1", "stock.receive", {"location": where, "lines": lines, "document": "PO-BENCH"})
            for where in locations
        ]
        for verdict in client.submit_many(receipts):
            assert client.wait_tx(verdict["tx_id"], timeout=120)["status"] == "committed"
        client.close()
        yield devnet, token


@pytest.mark.parametrize("paid", [False, True])
def test_pull_throughput(network: tuple[Devnet, str], tmp_path: Path, paid: bool) -> None:
    devnet, token = network
    name = "paid" if paid else "unpaid"
    with ChannelServer(page_size=250) as shop:
        for i in range(ORDERS):
            sku, _, cents, _ = SAMPLE_SKUS[i % len(SAMPLE_SKUS)]
            shop.add_shopify(shopify_order(900_000 + i, [(sku, 1, f"{cents // 100}.{cents % 100:02d}")], paid=paid))
        puller = PullerProcess(tmp_path, devnet.nodes[0].url, token, CONFIG.format(name=name, url=shop.url))
        puller.run_to_end()
    events = {line["event"]: line for line in puller.read_log()}
    seconds = datetime.fromisoformat(events["done"]["time"]) - datetime.fromisoformat(events["start"]["time"])
    (row,) = puller.json("status")
    assert row["committed"] == ORDERS and row["updated"] == (ORDERS if paid else 0)
    rate = ORDERS / seconds.total_seconds()
    print(f"\nchannel pull, {name}: {ORDERS} orders in {seconds.total_seconds():.1f} s = {rate:.1f} orders/s")
