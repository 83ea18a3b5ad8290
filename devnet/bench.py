"""The benchmark behind `omsnode devnet bench` and `omsnode devnet load`: orders driven through a running devnet.

It stocks the SKUs of its baskets (`devnet.load.prepare_stock`), signs every
order up front (so the figures are the network's, not the signer's), and then
`concurrency` client threads send them over the live nodes' public API with
`omsclient` (`POST /v1/txs`, msgpack, `per_request` txs a request), each
thread to its own node in turn. `batch` orders go in one signed tx: 1 is an `order.create`
each, more is an `order.import` (the bulk path). With `rate` the requests are
paced to that many orders per second; without it they go as fast as the
nodes take them.

A tx a node refuses for want of room (`mempool_full`, `signer_over_quota`)
is sent again after the node's `Retry-After` and counted in `refused`: never
dropped. One refused for any other reason, or committed with a failed
receipt, is counted in `rejected`.

Meanwhile the caller's thread reads every new block (from the nodes in turn)
and gives each of its orders its commit latency: block seen minus first
submit of its tx. At the end it reads each node process's CPU time (the
difference over the run) and peak resident memory from `/proc`. With
`sample_every` it also reads each node's resident memory (VmRSS) whenever the
orders committed pass another multiple of it (`rss_mb_samples`): how a node's
memory follows the size of its ledger.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

from tqdm import tqdm

from devnet.baskets import Basket, synthetic_baskets
from devnet.load import CHANNEL, make_order_payloads, prepare_stock
from devnet.network import Devnet, NodeInfo
from omsclient import Client, Keyring, NodeError, tx_id

Tx = dict[str, Any]
"""A signed tx in JSON form, as `omsclient` sends it."""

RETRYABLE = frozenset({"mempool_full", "signer_over_quota"})
"""Verdicts that refuse a tx for want of room: it is sent again after the node's `Retry-After`, never dropped."""

PER_REQUEST = 50
"""Txs a client thread sends in one HTTP request."""

CLOCK_TICKS = 100
"""Kernel clock ticks per second (`/proc/<pid>/stat` times are in these)."""


@dataclass
class _Run:
    """What the client threads and the block watcher share."""

    sent_at: dict[str, float] = field(default_factory=dict)
    """Tx id -> first submit (perf_counter) of the txs not yet seen in a block."""
    orders_in: dict[str, int] = field(default_factory=dict)
    """Tx id -> orders it carries."""
    refused: int = 0
    rejected: int = 0
    """Orders refused at admission for a reason other than room."""
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_bench(
    devnet: Devnet,
    orders: int,
    concurrency: int = 4,
    batch: int = 1,
    rate: float | None = None,
    baskets: list[Basket] | None = None,
    per_request: int = PER_REQUEST,
    progress: bool = True,
    stall_timeout: float = 120.0,
    sample_every: int | None = None,
) -> dict[str, Any]:
    """Send `orders` orders over the live nodes; returns the figures (see `cli.devnet_commands` for the keys).

    The run ends when every order is settled, or when no block has settled any for `stall_timeout` seconds
    (then `committed` says how many made it). With `sample_every`, every node's resident memory is read each
    time the orders committed pass another multiple of it (`RssSampler`)."""
    live = [n for n in devnet.nodes if devnet.status(n.index)["up"]]
    if not live:
        raise RuntimeError("no node of the devnet is up")
    setup = devnet.client(live[0].index, timeout=60)
    keyring = devnet.keyring(setup)
    tag = f"{time.time_ns() % 10**9:09d}"
    chosen = list(baskets[:orders]) if baskets else list(synthetic_baskets(orders))
    while len(chosen) < orders:
        chosen.extend(chosen[: orders - len(chosen)])
    prepare_stock(setup, keyring, devnet, chosen)
    txs, sizes = _sign_orders(keyring, make_order_payloads(chosen, tag), batch)
    signed = [(tx_id(tx), tx) for tx in txs]
    run = _Run(orders_in={txid: size for (txid, _), size in zip(signed, sizes, strict=True)})
    requests: queue.Queue[tuple[int, list[tuple[str, Tx]]] | None] = queue.Queue()
    offset = 0
    for start in range(0, len(txs), per_request):
        requests.put((offset, signed[start : start + per_request]))
        offset += sum(sizes[start : start + per_request])
    for _ in range(concurrency):
        requests.put(None)
    start_height = setup.status()["height"]
    cpu_before = [_cpu_seconds(node) for node in devnet.nodes]
    started = time.perf_counter()
    pace: Callable[[int], float] = (lambda offset: started + offset / rate) if rate else (lambda offset: 0.0)
    threads = [
        threading.Thread(
            target=_send,
            args=(devnet.client(live[i % len(live)].index, timeout=60), requests, run, pace),
            daemon=True,
        )
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    watch = _BlockWatcher([devnet.client(n.index, timeout=60) for n in live], start_height, run, orders, stall_timeout)
    sampler = RssSampler(devnet.nodes, sample_every)
    bar = tqdm(total=orders, unit="order", desc="committed", disable=not progress, leave=False)
    for committed_now in watch.progress():
        bar.update(committed_now)
        sampler.observe(watch.committed)
    bar.close()
    for thread in threads:
        thread.join(timeout=5)
    seconds = (watch.last_commit or time.perf_counter()) - started
    cpu_after = [_cpu_seconds(node) for node in devnet.nodes]
    latencies = sorted(watch.latencies)
    result = {
        "orders": orders,
        "committed": watch.committed,
        "rejected": run.rejected + watch.rejected,
        "refused": run.refused,
        "seconds": round(seconds, 3),
        "orders_per_s": round(watch.committed / seconds, 1) if seconds > 0 else 0.0,
        "latency_ms": {f"p{pct}": round(_percentile(latencies, pct) * 1000, 1) for pct in (50, 95, 99)},
        "blocks": watch.height - start_height,
        "avg_block_txs": round(watch.txs / (watch.height - start_height), 1) if watch.height > start_height else 0.0,
        "cpu_s_per_node": [
            None if a is None or b is None else round(b - a, 2) for a, b in zip(cpu_before, cpu_after, strict=True)
        ],
        "rss_mb_per_node": [read_memory_mb(node, "VmHWM") for node in devnet.nodes],
        "rss_mb_samples": sampler.samples,
        "concurrency": concurrency,
        "batch": batch,
        "rate": rate,
        "errors": run.errors[:10],
        "nodes": _settled_heads(devnet),
    }
    setup.close()
    return result


def _sign_orders(keyring: Keyring, payloads: list[dict[str, Any]], batch: int) -> tuple[list[Tx], list[int]]:
    """The signed txs carrying `payloads`, `batch` to a tx, and how many orders each carries."""
    if batch <= 1:
        return [keyring.sign(CHANNEL, "order.create", payload) for payload in payloads], [1] * len(payloads)
    groups = [payloads[i : i + batch] for i in range(0, len(payloads), batch)]
    return [keyring.sign(CHANNEL, "order.import", {"orders": g}) for g in groups], [len(g) for g in groups]


def _send(
    client: Client,
    requests: queue.Queue[tuple[int, list[tuple[str, Tx]]] | None],
    run: _Run,
    pace: Callable[[int], float],
) -> None:
    """One client thread: send requests until the queue's end marker, again after `Retry-After` for room."""
    try:
        while (item := requests.get()) is not None:
            offset, chunk = item
            time.sleep(max(0.0, pace(offset) - time.perf_counter()))
            now = time.perf_counter()
            with run.lock:
                for txid, _ in chunk:
                    run.sent_at.setdefault(txid, now)
            while chunk:
                try:
                    verdicts, retry_after = client.post_txs([tx for _, tx in chunk])
                except (NodeError, OSError) as exc:
                    run.errors.append(str(exc))
                    time.sleep(1.0)
                    continue
                again = []
                for (txid, tx), verdict in zip(chunk, verdicts, strict=True):
                    error = verdict.get("error")
                    if error in RETRYABLE:
                        again.append((txid, tx))
                    elif error is not None:
                        with run.lock:
                            run.sent_at.pop(txid, None)
                            run.rejected += run.orders_in[txid]
                with run.lock:
                    run.refused += sum(run.orders_in[txid] for txid, _ in again)
                chunk = again
                if chunk:
                    time.sleep(retry_after or 1.0)
    finally:
        client.close()


class _BlockWatcher:
    """Reads the new blocks from the nodes in turn (each node the blocks it has) and settles the run's txs in them."""

    def __init__(self, clients: list[Client], height: int, run: _Run, orders: int, stall_timeout: float) -> None:
        self.clients = clients
        self.height = height
        self.run = run
        self.orders = orders
        self.stall_timeout = stall_timeout
        self.latencies: list[float] = []
        self.committed = 0
        self.rejected = 0
        self.txs = 0
        self.last_commit: float | None = None

    def progress(self) -> Iterator[int]:
        """Yields the orders committed by each new block, until every order is settled or none was for
        `stall_timeout` seconds."""
        readers = cycle(self.clients)
        settled_at = time.perf_counter()
        try:
            while self.committed + self.rejected + self.run.rejected < self.orders:
                if self.last_commit is not None:
                    settled_at = max(settled_at, self.last_commit)
                if time.perf_counter() - settled_at > self.stall_timeout:
                    return
                reader = next(readers)
                top = reader.status()["height"]
                if top <= self.height:
                    time.sleep(0.02)
                    continue
                while self.height < top:
                    self.height += 1
                    yield self._settle(reader.get(f"/v1/blocks/{self.height}"))
        finally:
            for client in self.clients:
                client.close()

    def _settle(self, block: dict[str, Any]) -> int:
        now = time.perf_counter()
        found = 0
        self.txs += len(block["txs"])
        for tx, receipt in zip(block["txs"], block["receipts"], strict=True):
            with self.run.lock:
                sent = self.run.sent_at.pop(tx["id"], None)
            if sent is None:
                continue
            count = self.run.orders_in[tx["id"]]
            if receipt is None or not receipt["ok"]:
                self.rejected += count
                continue
            refused = sum(1 for item in receipt["result"].get("orders", ()) if "error" in item)
            self.rejected += refused
            count -= refused
            self.latencies.extend([now - sent] * count)
            self.committed += count
            found += count
            self.last_commit = now
        return found


def _cpu_seconds(node: NodeInfo) -> float | None:
    """User + system CPU time of a node's process so far (None if it is not running)."""
    return None if node.pid is None else read_cpu_seconds(node.pid)


def read_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` so far, from `/proc` (None if it is not running)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def read_memory_mb(node: NodeInfo, field: str = "VmRSS") -> float | None:
    """A memory figure of a node's process from `/proc/<pid>/status` (VmRSS: resident now; VmHWM: its peak;
    RssFile: the resident pages of files it maps), in MB (None if it is not running)."""
    try:
        for line in Path(f"/proc/{node.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class RssSampler:
    """Every node's resident memory, read each time the run's committed orders pass another multiple of `every`
    (once per crossing: a block that passes two multiples gives one sample, at the orders committed then)."""

    def __init__(self, nodes: list[NodeInfo], every: int | None) -> None:
        if every is not None and every < 1:
            raise ValueError("sample_every must be at least 1")
        self.nodes = nodes
        self.every = every
        self.samples: list[dict[str, Any]] = []
        """`{"orders": committed, "rss_mb": [MB per node, None for one not running], "rss_file_mb": [...],
        "load_average": the machine's then}`, in the order taken; `rss_file_mb` is the part of `rss_mb` that is
        pages of files mapped into the node (LevelDB's tables as it reads them: `ledger.store.MAX_OPEN_FILES`
        bounds them), the rest its own memory."""
        self._next = every or 0
        """The orders committed at which the next sample is due."""

    def observe(self, committed: int) -> None:
        """Take a sample if `committed` reached the next multiple of `every`."""
        if self.every is None or committed < self._next:
            return
        self.samples.append(
            {
                "orders": committed,
                "rss_mb": [read_memory_mb(node) for node in self.nodes],
                "rss_file_mb": [read_memory_mb(node, "RssFile") for node in self.nodes],
                "load_average": round(os.getloadavg()[0], 2),
            }
        )
        self._next = (committed // self.every + 1) * self.every


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


def _percentile(ordered: list[float], pct: int) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
