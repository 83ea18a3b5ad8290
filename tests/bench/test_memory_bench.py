"""Benchmark: a node's memory (RSS) while clients send oversized bodies and hold slow requests.

Run with `make bench`. One node process (a single validator); its resident
set is sampled every 10 ms from `/proc` during each phase, and the peak is
reported beside the idle figure. It asserts that every request is refused
(400 bad JSON, 413 too large, 503 busy, or the connection cut) and that the
node still answers; memory is reported, and asserted in the last phase only.

Phases, each with `CLIENTS` connections at once:

- `oversized declared`: bodies declaring 64 MiB (refused from the headers);
- `oversized streamed`: 64 MiB streamed without a length (cut off at the limit);
- `slow`: requests that declare 8 MiB and trickle it, held open for `HOLD_S`;
- `at the limit`: bodies of just under 16 MiB, sent whole (read, then refused as
  not JSON);
- `many at the limit`: the same bodies from `MANY` connections at once, to a
  node that keeps at most `MAX_CONNECTIONS` open: past it a connection is
  closed before it is read, so memory stays where `CLIENTS` connections put
  it. This phase asserts it: its peak stays within `MANY_SLACK` of the
  highest figure before it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from devnet.network import Devnet
from node.api.limits import MAX_BODY_BYTES
from node.config import NodeConfig

pytestmark = pytest.mark.bench

CLIENTS = int(os.environ.get("OMS_BENCH_CLIENTS", "32"))
"""Connections at once in each phase."""

HOLD_S = 10.0
"""How long the slow phase holds its requests open."""

MAX_CONNECTIONS = 2 * CLIENTS
"""The node's `max_connections` in this benchmark."""

MANY = 8 * CLIENTS
"""Connections at once in the last phase: four times what the node keeps open."""

MANY_SLACK = 1.25
"""How much higher than the highest RSS before it the last phase may peak (allocator noise)."""

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def peak_rss_during(pid: int, phase: Callable[[], None]) -> float:
    """The highest RSS of `pid` (MiB) sampled while `phase` runs."""
    peak = rss_mib(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        phase()
    finally:
        done.set()
        sampler.join()
    return peak


def chunks(total: int) -> Iterator[bytes]:
    block = b" " * MIB
    for _ in range(total // MIB):
        yield block


def post_all(
    url: str, make_body: Callable[[], bytes | Iterator[bytes]], headers: dict[str, str], clients: int = CLIENTS
) -> None:
    def post(_: int) -> int:
        try:
            return httpx.post(f"{url}/v1/tx", content=make_body(), headers=headers, timeout=60).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(post, range(clients)))
    assert set(statuses) <= {0, 400, 413, 503}, statuses


def hold_slow_requests(port: int) -> None:
    sockets = []
    head = (
        f"POST /v1/tx HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {8 * MIB}\r\n\r\n"
    ).encode()
    for _ in range(CLIENTS):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(head)
        sockets.append(conn)
    deadline = time.monotonic() + HOLD_S
    sent = 0
    while time.monotonic() < deadline and sent < 8 * MIB - MIB:
        for conn in sockets:
            conn.sendall(b" " * (256 * 1024))
        sent += 256 * 1024
        time.sleep(HOLD_S / 40)
    for conn in sockets:
        conn.close()


def test_node_memory_under_oversized_and_slow_requests(tmp_path: Path) -> None:
    devnet = Devnet.create(tmp_path / "net", 1)
    home = devnet.nodes[0].home
    replace(NodeConfig.load(home), max_connections=MAX_CONNECTIONS).save(home)
    devnet.start_all()
    try:
        devnet.wait_until_up()
        node = devnet.nodes[0]
        assert node.pid is not None
        idle = rss_mib(node.pid)
        json_type = {"content-type": "application/json"}
        declared = {**json_type, "content-length": str(64 * MIB)}
        at_limit = b" " * (MAX_BODY_BYTES - 1024)
        phases: dict[str, Callable[[], None]] = {
            "oversized declared (64 MiB)": lambda: post_all(node.url, lambda: chunks(64 * MIB), declared),
            "oversized streamed (64 MiB, no length)": lambda: post_all(node.url, lambda: chunks(64 * MIB), json_type),
            f"slow (8 MiB trickled, held {HOLD_S:.0f} s)": lambda: hold_slow_requests(node.port),
            "at the limit (16 MiB - 1 KiB)": lambda: post_all(node.url, lambda: at_limit, json_type),
        }
        print(f"\nnode RSS, {CLIENTS} connections at once per phase (MiB): idle {idle:.0f}")
        highest = idle
        for name, phase in phases.items():
            peak = peak_rss_during(node.pid, phase)
            after = rss_mib(node.pid)
            highest = max(highest, peak, after)
            print(f"  {name:<40} peak {peak:6.0f}  (+{peak - idle:.0f})  after {after:6.0f}")
        many = peak_rss_during(node.pid, lambda: post_all(node.url, lambda: at_limit, json_type, MANY))
        name = f"{MANY} at the limit, {MAX_CONNECTIONS} kept"
        print(f"  {name:<40} peak {many:6.0f}  (+{many - idle:.0f})  after {rss_mib(node.pid):6.0f}")
        assert many <= MANY_SLACK * highest, f"{MANY} connections took the node to {many:.0f} MiB"
        assert httpx.get(f"{node.url}/v1/status", timeout=10).status_code == 200
    finally:
        devnet.stop_all()
