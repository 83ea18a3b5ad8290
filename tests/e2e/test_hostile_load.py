"""Hostile clients of every kind at once cannot slow a node for everyone: `/health` stays quick.

One real node process (`tests.e2e.integrator`) while, each from its own
threads: clients post batches of 5,000 txs (refused by count) and of 500 txs
with junk signatures; clients open connections, pipeline requests for large
answers and never read them; a token spams stock reconciliations of 1,000
SKUs; clients post junk and forged `/p2p` frames, replay one validly sealed
frame, or post oversized ones (these two each from an address of their own,
so that what cuts them off is their own refusals); a client asks for the
snapshot manifest and chunks over and over, with reads sealed as a member
node's (`p2p.reads`). Meanwhile a well-behaved client
(a process of its own) asks `/health` every 20 ms. The test checks the
refusals each hostile kind meets, and reports `/health`'s p50 and p99 beside
its p99 with no hostile client: a figure, not a timed assertion (the target
is a p99 under `HEALTH_P99_MS`; the README has what was measured), and the
node's RSS before and at the end of the hostile phase. `OMS_HOSTILE_SECONDS`
sets how long the hostile phase runs (short in `make test`, long in `make
fuzz`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest

from ledger.encoding import encode
from ledger.keys import PrivateKey
from node.api.errors import TooManyTxs
from node.api.inbox import MAX_INBOX_BYTES
from node.config import KEY_FILE
from p2p.envelope import Envelope, Sealer, encode_envelope, seal
from p2p.inbox import encode_frame
from p2p.reads import ReadSealer
from tests.e2e.integrator import Api, start_api, stop_api

pytestmark = [pytest.mark.e2e]

SECONDS = float(os.environ.get("OMS_HOSTILE_SECONDS", "12"))
"""How long `/health` is sampled while the hostile clients run (they start a second before): longer than the
server's write deadline, so slow readers are seen cut off."""

HEALTH_P99_MS = 100.0
"""The p99 of `/health` under hostile load that the node aims at (reported against it, never asserted)."""

SLOW_READERS = 30
PIPELINED = 40
"""Requests for the 170 KB OpenAPI document each slow reader sends and never reads."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = start_api(tmp_path_factory.mktemp("hostile") / "home")
    yield api
    stop_api(api)


def _junk_batches(api: Api) -> list[bytes]:
    """A batch of 5,000 signed txs (over the bound), and one of 500 txs whose signatures are junk."""
    keyring = api.node.keyring
    tx = keyring.sign_tx("channel-1", "order.create", {"external_ref": "hostile"}).to_wire()
    forged = [
        {
            **keyring.sign_tx("channel-1", "order.create", {"external_ref": f"forged-{i}"}).to_wire(),
            "signature": bytes(64),
        }
        for i in range(500)
    ]
    return [encode([tx] * 5000), encode(forged)]


def _junk_frames(api: Api) -> list[bytes]:
    """Frames no honest peer sends: random bytes, and envelopes naming a validator with no valid signature."""
    chain_id = api.node.genesis.chain_id
    envelopes = [
        encode_envelope(
            Envelope(
                sender="node-0",
                recipient="node-0",
                chain_id=chain_id,
                seq=seq,
                kind="consensus",
                body=b"x" * 200,
                signature=bytes(64),
            )
        )
        for seq in range(1, 200)
    ]
    return [os.urandom(4096), encode_frame(envelopes), msgpack.packb([b"\x00" * 64] * 100)]


def _sealed_frame(api: Api) -> bytes:
    """A frame of one envelope the node's own validator sealed for it: taken once, then only replayed."""
    genesis = api.node.genesis
    validator = genesis.validator_ids()[0]
    key = PrivateKey.load(api.node.home / "node_key")
    envelope = seal(
        key, sender=validator, recipient=validator, chain_id=genesis.chain_id, seq=1, kind="hostile", body=b"again"
    )
    return encode_frame([envelope])


def _declare_oversized_frame(port: int) -> int:
    """The status a `/p2p` POST declaring a body over the inbox's limit is answered with, from 127.0.0.3."""
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=("127.0.0.3", 0)) as sock:
        sock.sendall(f"POST /p2p HTTP/1.1\r\nhost: x\r\ncontent-length: {MAX_INBOX_BYTES + 1}\r\n\r\n".encode())
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


def _reconciliation(api: Api) -> dict[str, Any]:
    lines = [{"sku": f"SKU-{i:04d}", "qty": i % 7} for i in range(1000)]
    return {"location": "LIS-1", "as_of": int(time.time() * 1000), "lines": lines, "full": False}


class Hostiles:
    """Threads that each repeat one hostile request until told to stop, and what they were answered."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.answers: dict[str, list[int]] = {}
        self.errors: list[str] = []

    def run(
        self, name: str, once: Callable[[httpx.Client], int], url: str, copies: int = 1, address: str | None = None
    ) -> None:
        """Repeat `once` in `copies` threads, from the local `address` when given (another loopback address)."""
        answers = self.answers.setdefault(name, [])

        def loop() -> None:
            transport = httpx.HTTPTransport(local_address=address) if address else None
            with httpx.Client(base_url=url, timeout=30, transport=transport) as http:
                while not self.stop.is_set():
                    try:
                        answers.append(once(http))
                    except httpx.HTTPError as exc:
                        self.errors.append(f"{name}: {type(exc).__name__}")
                        time.sleep(0.05)

        for _ in range(copies):
            self.threads.append(threading.Thread(target=loop, daemon=True))

    def slow_readers(self, port: int) -> None:
        answers = self.answers.setdefault("slow_reader_closed", [])

        def hold() -> None:
            while not self.stop.is_set():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect(("127.0.0.1", port))
                sock.sendall(b"GET /openapi.json HTTP/1.1\r\nhost: x\r\n\r\n" * PIPELINED)
                sock.settimeout(0.5)
                while not self.stop.is_set():
                    # Look without reading: an abort shows as a pending error (the data already here stays readable).
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        alive = False
                    else:
                        try:
                            alive = bool(sock.recv(1, socket.MSG_PEEK))
                        except TimeoutError:
                            continue
                        except OSError:
                            alive = False
                    if not alive:
                        answers.append(1)
                        break
                    time.sleep(0.5)
                sock.close()

        for _ in range(SLOW_READERS):
            self.threads.append(threading.Thread(target=hold, daemon=True))

    def __enter__(self) -> Hostiles:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)


SAMPLER = """
import json, sys, time, httpx
url, seconds = sys.argv[1], float(sys.argv[2])
latencies = []
with httpx.Client(base_url=url, timeout=30) as http:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        assert http.get("/health").status_code == 200
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
print(json.dumps(latencies))
"""
"""The well-behaved client: its own process, so the hostile threads here do not slow it."""


def _health_latencies(url: str, seconds: float) -> list[float]:
    """`/health` latencies in ms, sorted, asked every 20 ms for `seconds`."""
    sampled = subprocess.run(
        [sys.executable, "-c", SAMPLER, url, str(seconds)], capture_output=True, text=True, timeout=seconds + 120
    )
    assert sampled.returncode == 0, sampled.stderr
    return sorted(json.loads(sampled.stdout))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_health_stays_quick_while_hostile_clients_of_every_kind_run(api: Api) -> None:
    url, port = api.node.url, int(api.node.url.rsplit(":", 1)[1])
    batches, frames, sealed = _junk_batches(api), _junk_frames(api), _sealed_frame(api)
    reconciliation = _reconciliation(api)
    auth = {"authorization": f"Bearer {api.store}"}
    msgpack_type = {"content-type": "application/msgpack"}
    hostiles = Hostiles()
    hostiles.run(
        "big_batch", lambda http: http.post("/v1/txs", content=batches[0], headers=msgpack_type).status_code, url
    )
    hostiles.run(
        "forged_batch", lambda http: http.post("/v1/txs", content=batches[1], headers=msgpack_type).status_code, url
    )
    hostiles.run(
        "reconcile",
        lambda http: http.post("/v1/reconciliations/stock", json=reconciliation, headers=auth).status_code,
        url,
    )
    hostiles.run("junk_p2p", lambda http: sum(http.post("/p2p", content=frame).status_code for frame in frames), url)
    hostiles.run("replayed_p2p", lambda http: http.post("/p2p", content=sealed).status_code, url, address="127.0.0.2")
    hostiles.run("oversized_p2p", lambda http: _declare_oversized_frame(port), url)
    member = ReadSealer(  # the node's own key: a member node's reads, each sealed afresh
        Sealer(PrivateKey.load(api.node.home / KEY_FILE), "node-0", api.node.genesis.chain_id),
        lambda: int(time.time() * 1000),
    )
    hostiles.run(
        "snapshot_chunks",
        lambda http: max(
            http.get(path, headers=member.headers("node-0", path)).status_code
            for path in ("/p2p/snapshot", "/p2p/snapshot/0")
        ),
        url,
    )
    hostiles.slow_readers(port)
    assert api.node.process is not None
    idle = _health_latencies(url, 3)
    idle_p99 = idle[int(len(idle) * 0.99)]
    idle_rss = _rss_mb(api.node.process.pid)
    with hostiles:
        time.sleep(1)
        latencies = _health_latencies(url, SECONDS)
        peak_rss = _rss_mb(api.node.process.pid)
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    print(
        f"\n/health under hostile load: {len(latencies)} requests, p50 {p50:.1f} ms, p99 {p99:.1f} ms,"
        f" max {latencies[-1]:.1f} ms (target p99 {HEALTH_P99_MS:.0f} ms; idle p99 {idle_p99:.1f} ms);"
        f" node RSS {idle_rss:.0f} MB before, {peak_rss:.0f} MB at the end;"
        f" answers { {name: len(codes) for name, codes in hostiles.answers.items()} }"
    )
    refused_by_count = TooManyTxs.http_status
    assert (
        set(hostiles.answers["big_batch"]) <= {refused_by_count, 429}
        and refused_by_count in hostiles.answers["big_batch"]
    )
    assert 429 in hostiles.answers["forged_batch"], "the address runs out of work and waits"
    assert 429 in hostiles.answers["reconcile"], "the reconciling token runs out of work and waits"
    assert hostiles.answers["slow_reader_closed"], "a reader that never reads loses its connection"
    replays = hostiles.answers["replayed_p2p"]
    assert set(replays) <= {202, 429} and 429 in replays, "each replay is charged, and the replayer is cut off"
    oversized = hostiles.answers["oversized_p2p"]
    assert set(oversized) <= {413, 429} and oversized, "refused before the body is read"
    sample = 'oms_p2p_envelopes_dropped_total{reason="oversized"} '
    metrics = api.http.get("/metrics").text.splitlines()
    counted = next(float(line.removeprefix(sample)) for line in metrics if line.startswith(sample))
    assert counted >= oversized.count(413), "each oversized frame is counted against its source"
    assert set(hostiles.answers["snapshot_chunks"]) <= {200, 404} and hostiles.answers["snapshot_chunks"]
    assert api.get("/v1/status", None).json()["height"] >= 1
