"""Benchmark (long): a node's memory stays flat as its ledger grows, over 1,000,000 orders on a 4-node devnet.

Run with `make bench-long` (it sets `OMS_BENCH_LONG=1`; `make bench` skips this one). The orders go as
`order.import` txs of `BATCH` orders (the bulk path: a million single-order txs would take hours here), in
runs of `SEGMENT` orders on one devnet (the client signs each run's orders up front, so a run bounds the
client's memory, not the nodes'); every node's resident memory (VmRSS) is read each `SAMPLE_EVERY` orders
committed (`devnet bench --sample-every`). The samples, orders committed on the ledger -> MB per node (and
the part of it that is LevelDB's mapped tables), with the load average of the machine at each, go to
`docs/bench/rss.json` and are printed.

It asserts every order committed on one chain, and that each node's memory at the end is within `FLAT`
times its memory after the first 100,000 orders. `OMS_BENCH_LONG_ORDERS` runs fewer orders (or more),
`OMS_BENCH_LONG_SAMPLE_EVERY` reads memory more or less often.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import pytest

from devnet.bench import run_bench
from devnet.network import Devnet
from tests.e2e.conftest import omsnode

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(os.environ.get("OMS_BENCH_LONG") != "1", reason="the long run: make bench-long"),
]

ORDERS = int(os.environ.get("OMS_BENCH_LONG_ORDERS", "1000000"))
"""Orders over the whole run."""

SAMPLE_EVERY = int(os.environ.get("OMS_BENCH_LONG_SAMPLE_EVERY", "50000"))
"""Orders committed between two readings of every node's memory."""

SEGMENT = 200_000
"""Orders signed and sent per `run_bench` call."""

BATCH = 100
"""Orders per `order.import` tx."""

BASELINE = 100_000
"""The orders after which memory is the reference the end is compared with."""

STALL_S = 600.0
"""How long a run waits for a block that settles some of its orders before it gives up (an hour-long run on a
busy machine rides out a slow patch)."""

FLAT = 1.5
"""How much above its memory after `BASELINE` orders a node may end."""

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "bench" / "rss.json"


@pytest.mark.timeout(6 * 3600)
def test_node_memory_stays_flat_over_a_million_orders(tmp_path: Path) -> None:
    root = tmp_path / "long-net"
    omsnode("devnet", "up", "--nodes", "4", "--dir", str(root))
    samples: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        devnet = Devnet(root)
        done = 0
        while done < ORDERS:
            size = min(SEGMENT, ORDERS - done)
            run = run_bench(
                devnet,
                size,
                concurrency=2,
                batch=BATCH,
                per_request=5,
                progress=False,
                stall_timeout=STALL_S,
                sample_every=SAMPLE_EVERY,
            )
            for sample in run["rss_mb_samples"]:
                samples.append({**sample, "orders": done + sample["orders"]})
                print(
                    f"\n{samples[-1]['orders']:>9,} orders: {sample['rss_mb']} MB per node"
                    f" (mapped files {sample['rss_file_mb']}), load {sample['load_average']}"
                )
            runs.append({k: run[k] for k in ("committed", "seconds", "orders_per_s", "cpu_s_per_node", "errors")})
            assert run["committed"] == size, run["errors"]
            assert all(n["up"] for n in run["nodes"]) and len({n["head_hash"] for n in run["nodes"]}) == 1
            done += size
    finally:
        omsnode("devnet", "down", "--dir", str(root), check=False)
    report = {
        "when": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "orders": ORDERS,
        "batch": BATCH,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "rss_mb_samples": samples,
        "runs": runs,
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    reference = next((s for s in samples if s["orders"] >= BASELINE), None)
    if reference is None or reference is samples[-1]:
        return
    for node, (before, after) in enumerate(zip(reference["rss_mb"], samples[-1]["rss_mb"], strict=True)):
        assert after <= FLAT * before, (
            f"node {node}: {after} MB after {samples[-1]['orders']:,} orders, {before} MB after {reference['orders']:,}"
        )
