"""Benchmark: the per-order CPU budget by stage (`omsnode devnet bench --profile DIR`), single orders and bulk.

Run with `make bench`. A fresh 4-node devnet takes `OMS_PROFILE_ORDERS`
single orders, then as many in `order.import` txs of 100, each run profiled
(py-spy on every node, each thread's CPU from `/proc`). The tables are
printed and written to `docs/bench/profile.json`. Asserted only what holds
whatever the speed: every order committed, and the stages' CPU adds up to
the nodes' CPU that the bench itself reads (the profile misses nothing big).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from devnet.profile import format_table
from tests.e2e.conftest import omsnode

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_PROFILE_ORDERS", "6000"))

FIGURES = Path(__file__).resolve().parents[2] / "docs" / "bench" / "profile.json"

RUNS = {"single": ["--batch", "1"], "bulk": ["--batch", "100", "--per-request", "5"]}
"""The profiled runs, by name, with their bench options."""


HAS_PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


@pytest.mark.skipif(not HAS_PY_SPY, reason="the profile needs py-spy (the test extras)")
def test_the_budget_table_accounts_for_the_nodes_cpu(tmp_path: Path) -> None:
    root = tmp_path / "profile-net"
    omsnode("devnet", "up", "--nodes", "4", "--dir", str(root))
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, options in RUNS.items():
            bench = ["devnet", "bench", "--dir", str(root), "--orders", str(ORDERS), "--json", *options]
            answer = omsnode(*bench, "--profile", str(tmp_path / name), timeout=1800)
            results[name] = json.loads(answer.stdout)
    finally:
        omsnode("devnet", "down", "--dir", str(root), check=False)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps({name: r["profile"] for name, r in results.items()}, indent=2) + "\n")
    for name, result in results.items():
        print(f"\n{name}: {result['orders_per_s']} orders/s\n{format_table(result['profile'])}")
        assert result["committed"] == ORDERS, result["errors"]
        cpu = [c for c in result["cpu_s_per_node"] if c is not None]
        bench_ms = 1000 * sum(cpu) / len(cpu) / ORDERS
        assert result["profile"]["total_ms_per_order_per_node"] == pytest.approx(bench_ms, rel=0.3)
