"""Benchmark: committed orders per second and commit latency on a 4-node devnet of real processes.

Run with `make bench`. It prints figures and asserts only that every order
was committed and the nodes agree; speed is reported, never asserted.
Set `OMS_BASKETS` to an Olist-style `order_items.csv` to replay real baskets.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devnet.baskets import read_olist_baskets
from devnet.load import run_load
from devnet.network import Devnet
from tests.e2e.conftest import omsnode

pytestmark = pytest.mark.bench

ORDERS = int(os.environ.get("OMS_BENCH_ORDERS", "4000"))
PACED_RATE = float(os.environ.get("OMS_BENCH_RATE", "150"))
"""Orders per second of the paced run (about half of what the devnet takes at saturation)."""


def test_devnet_throughput_and_latency(tmp_path: Path) -> None:
    root = tmp_path / "bench-net"
    omsnode("devnet", "up", "--nodes", "4", "--dir", str(root))
    try:
        baskets_file = os.environ.get("OMS_BASKETS")
        baskets = read_olist_baskets(Path(baskets_file)) if baskets_file else None
        saturated = run_load(Devnet(root), ORDERS, batch=200, baskets=baskets, progress=False)
        paced = run_load(Devnet(root), ORDERS // 4, batch=20, baskets=baskets, progress=False, rate=PACED_RATE)
    finally:
        omsnode("devnet", "down", "--dir", str(root), check=False)
    source = "olist baskets" if baskets_file else "synthetic baskets"
    keys = ("committed", "seconds", "tx_per_s", "latency_ms", "blocks")
    print(f"\n4-node devnet, {ORDERS} single-order txs ({source}), sent as fast as taken:")
    print(json.dumps({k: saturated[k] for k in keys}))
    print(f"4-node devnet, {ORDERS // 4} orders paced at {PACED_RATE:g}/s:")
    print(json.dumps({k: paced[k] for k in keys}))
    for result in (saturated, paced):
        assert result["committed"] == result["sent"]
        assert len({n["head_hash"] for n in result["nodes"]}) == 1
