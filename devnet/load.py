"""The load generator behind `omsnode devnet load` and the benchmark.

It stocks the SKUs of its baskets at a warehouse per node, then sends N
client-signed `order.create` txs spread round-robin over the running nodes
in batches (`POST /v1/txs`, msgpack), and watches the chain: each new block
is read from one node and every tx in it gets its commit latency (block seen
minus the moment its batch was sent). Signing happens before the clock
starts, so the figures are the network's, not the client's.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterable
from itertools import cycle
from typing import Any

from devnet.baskets import Basket, synthetic_baskets
from devnet.client import NodeClient, Signer
from devnet.network import Devnet
from ledger.tx import Tx

CHANNEL = "channel-1"
OPERATOR = "operator-1"


def _skus(baskets: Iterable[Basket]) -> dict[str, int]:
    prices: dict[str, int] = {}
    for basket in baskets:
        for line in basket:
            prices.setdefault(line.sku, line.price)
    return prices


def prepare_stock(client: NodeClient, signer: Signer, devnet: Devnet, baskets: list[Basket], tag: str) -> None:
    """Register the baskets' SKUs and a warehouse per node holding plenty of each."""
    prices = _skus(baskets)
    setup: list[Tx] = [
        signer.tx(OPERATOR, "sku.upsert", {"sku": sku, "price": price, "currency": "EUR", "tax_class": "standard"})
        for sku, price in prices.items()
    ]
    locations = [f"LOAD-{tag}-{i}" for i in range(len(devnet.nodes))]
    for i, location in enumerate(locations):
        setup.append(
            signer.tx(
                OPERATOR,
                "location.upsert",
                {
                    "location": location,
                    "type": "warehouse",
                    "org": f"org-{i}",
                    "region": "BR",
                    "lat": -23_550_000 + i * 100_000,
                    "lon": -46_633_000,
                    "priority": 100,
                },
            )
        )
    need = len(baskets) * 4
    sku_list = sorted(prices)
    for location in locations:
        for start in range(0, len(sku_list), 100):
            lines = [{"sku": sku, "qty": need} for sku in sku_list[start : start + 100]]
            setup.append(signer.tx(OPERATOR, "stock.receive", {"location": location, "lines": lines}))
    for start in range(0, len(setup), 500):
        client.submit_many(setup[start : start + 500])
    client.wait(setup[-1].id.hex(), timeout=120)


def make_orders(signer: Signer, baskets: list[Basket], tag: str) -> list[Tx]:
    return [
        signer.tx(
            CHANNEL,
            "order.create",
            {
                "external_ref": f"load-{tag}-{i}",
                "currency": "EUR",
                "customer_hash": f"{i:064x}",
                "payment_terms": "on_account",
                "lines": [{"sku": line.sku, "qty": line.qty} for line in basket],
                "delivery": {"region": "BR", "lat": -23_500_000, "lon": -46_600_000},
            },
        )
        for i, basket in enumerate(baskets)
    ]


def run_load(
    devnet: Devnet,
    orders: int,
    batch: int = 200,
    baskets: list[Basket] | None = None,
    progress: bool = True,
    timeout: float = 300.0,
    rate: float | None = None,
) -> dict[str, Any]:
    """Send `orders` orders over the live nodes and measure throughput and commit latency.

    A tx a node refuses for want of room is sent again after its `Retry-After`, and counted in `refused`.
    Without `rate` everything is sent as fast as the nodes take it (throughput at saturation, where
    latency is mostly queueing); with `rate` (orders/s) batches are paced, for latency at that load.
    """
    live = [n for n in devnet.nodes if devnet.status(n.index)["up"]]
    if not live:
        raise RuntimeError("no node of the devnet is up")
    clients = [devnet.client(n.index, timeout=60) for n in live]
    signer = Signer(devnet.genesis.chain_id, devnet.clients_dir, clients[0].tx_valid_until)
    tag = f"{time.time_ns() % 10**9:09d}"
    chosen = list(baskets[:orders]) if baskets else list(synthetic_baskets(orders))
    while len(chosen) < orders:
        chosen.extend(chosen[: orders - len(chosen)])
    prepare_stock(clients[0], signer, devnet, chosen, tag)
    txs = make_orders(signer, chosen, tag)
    watcher = clients[0]
    start_height = watcher.status()["height"]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    committed = 0
    refused = 0
    seen_height = start_height
    started = time.perf_counter()
    targets = cycle(clients)
    for start in range(0, len(txs), batch):
        if rate:
            time.sleep(max(0.0, started + start / rate - time.perf_counter()))
        chunk = txs[start : start + batch]
        now = time.perf_counter()
        for tx in chunk:
            sent_at[tx.id.hex()] = now
        while chunk:
            verdicts, retry_after = next(targets).submit_batch(chunk)
            chunk = [tx for tx, verdict in zip(chunk, verdicts, strict=True) if verdict.get("error") in RETRYABLE]
            refused += len(chunk)
            seen_height, found = _collect(watcher, seen_height, sent_at, latencies)
            committed += found
            if chunk:
                time.sleep(retry_after or 1.0)
    deadline = time.perf_counter() + timeout
    last = -1
    while committed < len(txs) and time.perf_counter() < deadline:
        seen_height, found = _collect(watcher, seen_height, sent_at, latencies)
        committed += found
        if progress and committed != last:
            print(f"\r  committed {committed}/{len(txs)}", end="", file=sys.stderr, flush=True)
            last = committed
        if not found:
            time.sleep(0.02)
    if progress:
        print(file=sys.stderr)
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    result = {
        "sent": len(txs),
        "committed": committed,
        "refused": refused,
        "seconds": round(seconds, 3),
        "tx_per_s": round(committed / seconds, 1) if seconds else 0.0,
        "latency_ms": {
            "p50": round(_percentile(ordered, 50) * 1000, 1),
            "p99": round(_percentile(ordered, 99) * 1000, 1),
            "mean": round(statistics.fmean(ordered) * 1000, 1) if ordered else 0.0,
        },
        "blocks": seen_height - start_height,
        "nodes": _settled_heads(devnet),
    }
    for client in clients:
        client.close()
    return result


RETRYABLE = frozenset({"mempool_full", "signer_over_quota"})
"""Verdicts that refuse a tx for want of room: it is sent again after the node's `Retry-After`, never dropped."""


def _settled_heads(devnet: Devnet, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every node's height and head hash, once the live ones agree (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [
            {k: devnet.status(n.index).get(k) for k in ("index", "url", "up", "height", "head_hash")}
            for n in devnet.nodes
        ]
        if len({r["head_hash"] for r in rows if r["up"]}) <= 1 or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def _collect(client: NodeClient, height: int, sent_at: dict[str, float], latencies: list[float]) -> tuple[int, int]:
    """Read blocks after `height`; record latencies of our txs in them. Returns (new height, txs found)."""
    found = 0
    top = client.status()["height"]
    while height < top:
        height += 1
        block = client.get(f"/v1/blocks/{height}")
        now = time.perf_counter()
        for tx in block["txs"]:
            sent = sent_at.pop(tx["id"], None)
            if sent is not None:
                latencies.append(now - sent)
                found += 1
    return height, found


def _percentile(ordered: list[float], pct: int) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
