"""The checker: what must hold after any fault, read through every node's public API only.

After a scenario (the load stopped, every node back and at one height),
`check_invariants` asks every node and reports each violation it finds:

- **no fork**: every node holds the same block hash at every height of the
  run (and below it the blocks are hash-chained: `verify-chain` checks the
  links on every node's data);
- **nothing acknowledged is lost**: every tx a node reported committed is in
  the chain once, where that node said, and every node reports it the same;
- **stock adds up**: at every node no stock is negative, on hand and damaged
  equal the sums of their journal entries, reserved equals the sum of the
  journal's reserved deltas and, for the run's own SKUs, the units of the
  run's open fulfilments (allocated, released or picked);
- **one state**: every node has the same head and state commitment at the
  last height;
- **every chain verifies**: `omsnode verify-chain` passes on every node's
  data (each node is stopped for it in turn and started again, so the network
  stays live).

A node that joined by state sync holds no blocks below its base height (and
no receipts of its base block, the snapshot's): those heights are compared,
and those txs asked about, among the nodes that hold them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from devnet.chaos.load import OrderLoad
from devnet.network import Devnet
from omsclient import Client, NodeError

T = TypeVar("T")

OPEN_FULFILMENT = ("allocated", "released", "picked")
"""Fulfilment states that hold a stock reservation."""

PAGE = 500
"""Items per page of the lists the checker reads."""

VERIFY_TIMEOUT_S = 600.0
"""Longest `verify-chain` of one node's data."""


def check_invariants(devnet: Devnet, load: OrderLoad, since: int, verify: bool = True) -> list[str]:
    """Every violation found, checking blocks from height `since` on (empty when every invariant holds)."""
    problems: list[str] = []
    clients = [devnet.client(node.index, timeout=30.0) for node in devnet.nodes]
    try:
        statuses = each(clients, lambda client: client.status())
        problems += check_one_state(statuses)
        height = min(status["height"] for status in statuses)
        bases = [max(status["base_height"] or 1, 1) for status in statuses]
        chains = each(clients, lambda client: read_blocks(client, max(since, bases[clients.index(client)]), height))
        problems += check_no_fork(chains)
        problems += check_acknowledged(clients, chains, bases, load)
        holder = clients[bases.index(min(bases))]
        created_min = holder.get(f"/v1/blocks/{since}")["header"]["timestamp_ms"] if since > 0 else None
        stocks = each(clients, lambda client: check_stock(client, load, created_min))
        for index, found in enumerate(stocks):
            problems += [f"node {index}: {problem}" for problem in found]
    finally:
        for client in clients:
            client.close()
    if verify:
        problems += verify_every_chain(devnet)
    return problems


def each(clients: list[Client], read: Callable[[Client], T]) -> list[T]:
    """`read(client)` for every node's client at once, in node order."""
    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(read, clients))


def check_one_state(statuses: list[dict[str, Any]]) -> list[str]:
    heads = {(status["height"], status["head_hash"], status["state_root"]) for status in statuses}
    if len(heads) == 1:
        return []
    seen = [f"node {i}: height {s['height']} head {s['head_hash'][:12]}" for i, s in enumerate(statuses)]
    return [f"the nodes do not share one head and state commitment: {'; '.join(seen)}"]


Chain = dict[int, tuple[str, list[str]]]
"""Height -> (block hash, its tx ids in order)."""


def read_blocks(client: Client, low: int, high: int) -> Chain:
    chain: Chain = {}
    for height in range(low, high + 1):
        block = client.get(f"/v1/blocks/{height}")
        chain[height] = (block["hash"], [tx["id"] for tx in block["txs"]])
    return chain


def check_no_fork(chains: list[Chain]) -> list[str]:
    problems = []
    for height in sorted(set().union(*chains)):
        hashes = {chain[height][0] for chain in chains if height in chain}
        if len(hashes) > 1:
            problems.append(f"fork: {len(hashes)} different blocks at height {height}")
    return problems


def check_acknowledged(clients: list[Client], chains: list[Chain], bases: list[int], load: OrderLoad) -> list[str]:
    """Each acknowledged tx is in the chain once, where its node said, and every node that holds that height
    reports it the same."""
    placed: dict[str, list[tuple[int, int]]] = defaultdict(list)
    merged: Chain = {}
    for chain in chains:
        merged.update(chain)
    for height, (_, ids) in merged.items():
        for position, txid in enumerate(ids):
            placed[txid].append((height, position))
    problems = []
    for txid, ack in sorted(load.acks.items()):
        where = placed.get(txid, [])
        if where != [(ack.height, ack.index)]:
            problems.append(
                f"tx {txid[:12]}, acknowledged by node {ack.node} at {ack.height}:{ack.index}, is in the chain at"
                f" {where or 'no height'}"
            )

    def read(client: Client) -> list[str]:
        index = clients.index(client)
        wrong = []
        for txid, ack in sorted(load.acks.items()):
            if ack.height < bases[index] or (bases[index] > 1 and ack.height == bases[index]):
                continue  # a node that joined by state sync holds no receipts of its snapshot's block or below
            try:
                status = client.get(f"/v1/tx/{txid}")
            except NodeError as exc:
                wrong.append(f"node {index} does not know tx {txid[:12]} acknowledged by node {ack.node}: {exc}")
                continue
            if (status["status"], status.get("height"), status.get("index")) != (ack.status, ack.height, ack.index):
                wrong.append(
                    f"node {index} reports tx {txid[:12]} {status['status']} at {status.get('height')}:"
                    f"{status.get('index')}, node {ack.node} {ack.status} at {ack.height}:{ack.index}"
                )
        return wrong

    for wrong in each(clients, read):
        problems += wrong
    return problems


def check_stock(client: Client, load: OrderLoad, created_min: int | None) -> list[str]:
    """Stock never negative, each row the sum of its journal, and the run's SKUs reserved for its open orders."""
    problems = []
    rows = {(row["location"], row["sku"]): row for row in client.pages("/v1/inventory", limit=PAGE)}
    sums: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for entry in client.pages("/v1/journal", limit=PAGE):
        summed = sums[(entry["location"], entry["sku"])]
        summed[entry["bucket"]] += entry["delta"]
        summed["reserved"] += entry["reserved_delta"]
    for place, row in sorted(rows.items()):
        for what in ("on_hand", "reserved", "damaged", "available"):
            if row[what] < 0:
                problems.append(f"{what} of {place} is {row[what]}")
        journal = sums.pop(place, Counter())
        seen = (row["on_hand"], row["damaged"], row["reserved"])
        total = (journal["sellable"], journal["damaged"], journal["reserved"])
        if seen != total:
            problems.append(f"{place}: on hand, damaged, reserved {seen}, but the journal sums to {total}")
    problems += [f"journal entries for {place}, which has no stock row" for place, left in sums.items() if any(left)]
    held = open_reservations(client, load, created_min)
    for place, row in sorted(rows.items()):
        if place[1] in load.skus and row["reserved"] != held.get(place, 0):
            problems.append(f"{place}: reserved {row['reserved']}, open fulfilments hold {held.get(place, 0)}")
    return problems


def open_reservations(client: Client, load: OrderLoad, created_min: int | None) -> Counter[tuple[str, str]]:
    """Units the run's orders (created at `created_min` or later) hold per (location, SKU): lines of their open
    fulfilments."""
    held: Counter[tuple[str, str]] = Counter()
    for summary in client.pages("/v1/orders", limit=PAGE, channel="channel-1", created_min=created_min):
        if not summary["external_ref"].startswith(load.external_prefix):
            continue
        for fulfilment in client.get(f"/v1/orders/{summary['order_id']}")["fulfilments"]:
            if fulfilment["status"] in OPEN_FULFILMENT and not fulfilment["virtual"]:
                for line in fulfilment["lines"]:
                    held[(fulfilment["location"], line["sku"])] += line["qty"]
    return held


def verify_every_chain(devnet: Devnet) -> list[str]:
    """Stop each node in turn, run `omsnode verify-chain` on its data, and start it again."""
    problems = []
    for node in devnet.nodes:
        devnet.stop(node.index)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "cli.main", "verify-chain", "--home", str(node.home), "--json"],
                capture_output=True,
                text=True,
                timeout=VERIFY_TIMEOUT_S,
            )
        finally:
            devnet.start(node.index)
            devnet.wait_until_up([node.index], timeout=120)
        try:
            report = json.loads(done.stdout)
        except ValueError:
            problems.append(f"node {node.index}: verify-chain failed: {done.stderr[-500:]}")
            continue
        if not report["ok"]:
            problems.append(f"node {node.index}: verify-chain found {report['failures'][:3]}")
    return problems
