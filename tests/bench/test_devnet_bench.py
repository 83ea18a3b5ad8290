"""Benchmark: the standard set of `omsnode devnet bench` runs on a 4-node devnet of real processes.

Run with `make bench`. Three runs on one fresh devnet, each reported with
the keys of `devnet bench --json`:

- `single`: single-order txs sent as fast as the nodes take them (saturation);
- `paced`: single-order txs offered at `OMS_BENCH_RATE` orders/s (latency below saturation);
- `bulk`: `order.import` txs of 100 orders, as fast as taken.

The figures are written to `docs/bench/devnet.json` (the README quotes them)
and printed. Only what must hold whatever the speed is asserted: every order
committed, and one chain. Set `OMS_BASKETS` to an Olist-style
`order_items.csv` to replay real baskets.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import pytest

from devnet.baskets import read_olist_baskets
from devnet.bench import run_bench
from devnet.network import Devnet
from tests.e2e.conftest import omsnode

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_BENCH_ORDERS", "6000"))
PACED_RATE = float(os.environ.get("OMS_BENCH_RATE", "300"))
"""Orders per second of the paced run."""

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "bench" / "devnet.json"

SHOWN = ("committed", "rejected", "refused", "seconds", "orders_per_s", "latency_ms", "blocks", "avg_block_txs")


def test_devnet_standard_set(tmp_path: Path) -> None:
    root = tmp_path / "bench-net"
    omsnode("devnet", "up", "--nodes", "4", "--dir", str(root))
    baskets_file = os.environ.get("OMS_BASKETS")
    baskets = read_olist_baskets(Path(baskets_file)) if baskets_file else None
    runs: dict[str, dict[str, Any]] = {}
    try:
        devnet = Devnet(root)
        runs["single"] = run_bench(devnet, ORDERS, concurrency=4, baskets=baskets, progress=False)
        runs["paced"] = run_bench(devnet, ORDERS // 2, concurrency=4, rate=PACED_RATE, baskets=baskets, progress=False)
        runs["bulk"] = run_bench(
            devnet, ORDERS * 2, concurrency=2, batch=100, per_request=5, baskets=baskets, progress=False
        )
    finally:
        omsnode("devnet", "down", "--dir", str(root), check=False)
    report = {
        "when": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "baskets": "olist" if baskets_file else "synthetic",
        "runs": {name: {k: v for k, v in run.items() if k != "nodes"} for name, run in runs.items()},
    }
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for name, run in runs.items():
        cpu = [c for c in run["cpu_s_per_node"] if c is not None]
        per_order = 1000 * sum(cpu) / len(cpu) / max(run["committed"], 1)
        print(f"\n{name}: {json.dumps({k: run[k] for k in SHOWN})}; {per_order:.2f} ms CPU per order per node")
    for run in runs.values():
        assert run["committed"] == run["orders"], run["errors"]
        assert len({n["head_hash"] for n in run["nodes"] if n["up"]}) == 1
