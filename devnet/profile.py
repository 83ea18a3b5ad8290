"""Where a node's CPU goes per committed order: the budget table behind `omsnode devnet bench --profile DIR`.

Two readings of each node process are taken over the bench run, and put
together:

- the CPU time of every thread, from `/proc/<pid>/task/*/stat` before and
  after, which sees the native threads too: LevelDB's background thread
  (compaction; it runs no Python, so a Python profiler never sees it) and
  uvloop's worker threads;
- py-spy's samples (`py-spy record --threads --format raw`, one profiler
  per node, idle samples left out), which split each Python thread's CPU
  over the stages by where its stacks are. By default py-spy reads a node
  without stopping it (`--nonblocking`): hashing, signatures and LevelDB
  writes done in C are charged to the Python call that made them. With
  `native` it adds the C frames (`--native`), but then stops the node at
  every sample; on a loaded machine that froze nodes past the view timer,
  so keep it for an idle one.

A sampled stack is charged to one stage: the frame nearest the leaf that a
rule of `STAGE_RULES` matches decides, so a hash computed inside the state
commitment is hashing and an encode called by the feed is encoding, while
the feed's own Python is the feed's; a stack that ends in the event loop's
runner is the loop's own C (uvloop's socket reads and writes, HTTP parsing,
for the API and the peers alike). A thread py-spy never saw run Python is
native: LevelDB's compaction, or uvloop's workers by their name.

The table gives CPU ms per committed order per node (the mean over the
nodes) for each stage, and the whole process's figure beside it; the raw
samples stay in DIR for a flame graph.

Beside it, `rounds` says which bound holds: each node's `GET /metrics`,
read before and after, gives the blocks committed, the mean time from a
block's proposal to its commit (the round) and the wall time the node's
loop spent in each stage of the rounds (`oms_consensus_stage_seconds`).
When the nodes' CPU over the run fills the machine's cores, CPU is the
bound; when the machine is shared and its load average (read at the end)
exceeds its cores, the others' CPU is; otherwise the round is: its time goes
to waiting (fsyncs, timers, messages in flight) rather than to work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devnet.bench import CLOCK_TICKS
from devnet.network import Devnet, NodeInfo

SAMPLE_RATE = 20
"""py-spy samples per second per node: enough for a table, cheap enough for a 2-core machine."""

COMPACTION = "storage: LevelDB compaction (native thread)"
UV_WORKERS = "event loop: uvloop worker threads"
OTHER = "event loop, asyncio and the rest"

STAGE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signature (Ed25519)", ("nacl/", "cryptography/", "crypto_sign", "ed25519", "libsodium")),
    ("hashing and state commitment", ("ledger/commitment.py", "ledger/merkle.py", "ledger/state_proof.py", "sha256")),
    (
        "encoding (msgpack/msgspec)",
        ("ledger/encoding.py", "ledger/strict.py", "ledger/tx.py", "ledger/block.py", "msgspec", "msgpack"),
    ),
    ("storage: LevelDB writes and reads", ("plyvel", "leveldb", "ledger/store.py")),
    ("consensus log (fsync)", ("node/wal.py",)),
    ("execution (contracts, state)", ("contracts/", "ledger/state.py", "node/executor.py")),
    ("derived: feed", ("node/feed.py", "node/changes.py")),
    ("derived: indexes", ("node/indexes.py", "node/visibility.py", "node/personal.py", "node/idempotency.py")),
    ("derived: money per day", ("node/finance.py", "node/reconciliation.py")),
    ("derived: analytics", ("node/analytics.py",)),
    ("derived: backlog, low stock, lots", ("node/backlog.py", "node/lowstock.py", "node/lots.py")),
    ("admission and mempool", ("node/admission.py", "node/mempool.py", "node/api/txs.py", "node/api/inbox.py")),
    ("consensus (replica, driver)", ("consensus/", "node/driver.py", "node/application.py", "node/censorship.py")),
    ("p2p (peer messages over HTTP)", ("p2p/", "httpx/", "httpcore/", "h11/", "anyio/")),
    ("HTTP API (uvicorn, FastAPI)", ("uvicorn/", "starlette/", "fastapi/", "httptools", "pydantic", "node/api/")),
    ("event loop: sockets and callbacks in C (uvloop)", ("asyncio/runners.py", "uvloop/", "(loop.c:")),
)
"""Stages in the order the table lists them, each with the frame substrings that charge a sample to it."""

ROUND_METRICS = {
    "oms_blocks_committed_total": "blocks",
    "oms_block_proposal_to_commit_seconds_sum": "round_seconds",
    "oms_consensus_stage_seconds_total": "stage",
}
"""The samples of a node's `GET /metrics` that `rounds` reads, by the name it gives them."""

CPU_BOUND = 0.85
"""Share of the machine's cores the nodes must keep busy over a run for CPU, not the round, to be the bound."""


def classify_stack(frames: Iterable[str]) -> str:
    """The stage of a sampled stack, given from the root to the leaf: the match nearest the leaf decides."""
    for frame in reversed(list(frames)):
        for stage, needles in STAGE_RULES:
            if any(needle in frame for needle in needles):
                return stage
    return OTHER


def parse_raw_profile(text: str) -> dict[int, Counter[str]]:
    """Samples per stage for each thread id, from py-spy's raw output (`thread (TID): NAME;frame;... COUNT`)."""
    by_thread: dict[int, Counter[str]] = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.startswith("thread (") or not count.isdigit():
            continue
        head, *frames = stack.split(";")
        tid = int(head[len("thread (") : head.index(")")])
        by_thread.setdefault(tid, Counter())[classify_stack(frames)] += int(count)
    return by_thread


def read_thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Thread id -> (name, user + system CPU seconds so far) of every thread of a process (empty if it is gone)."""
    threads: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return threads
    for task in tasks:
        try:
            name, rest = (task / "stat").read_text().split("(", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        fields = rest.split()
        threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return threads


def split_node_cpu(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], samples: dict[int, Counter[str]]
) -> dict[str, float]:
    """CPU seconds per stage of one node over the run: each Python thread's CPU split by its samples, each
    native thread's charged whole to what it is."""
    seconds: defaultdict[str, float] = defaultdict(float)
    for tid, (name, cpu) in after.items():
        spent = cpu - before.get(tid, (name, 0.0))[1]
        if spent <= 0:
            continue
        sampled = samples.get(tid)
        if sampled:
            total = sum(sampled.values())
            for stage, count in sampled.items():
                seconds[stage] += spent * count / total
        elif name.startswith("libuv"):
            seconds[UV_WORKERS] += spent
        else:
            seconds[COMPACTION] += spent
    return dict(seconds)


def budget_table(per_node: list[dict[str, float]], committed: int) -> dict[str, Any]:
    """CPU ms per committed order per node for each stage (the mean over the nodes), and each node's total."""
    stages = [stage for stage, _ in STAGE_RULES] + [COMPACTION, UV_WORKERS, OTHER]
    count = max(len(per_node), 1)
    orders = max(committed, 1)
    rows = {stage: round(sum(n.get(stage, 0.0) for n in per_node) * 1000 / orders / count, 4) for stage in stages}
    return {
        "ms_per_order_per_node": {stage: ms for stage, ms in rows.items() if ms > 0},
        "total_ms_per_order_per_node": round(sum(rows.values()), 3),
        "node_total_ms_per_order": [round(sum(n.values()) * 1000 / orders, 3) for n in per_node],
    }


def read_round_metrics(text: str) -> dict[str, float]:
    """The round figures (`ROUND_METRICS`) of one node's metrics text; each stage as `stage:<name>`."""
    figures: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = ROUND_METRICS.get(sample.name)
            if name == "stage":
                figures[f"stage:{sample.labels.get('stage')}"] += sample.value
            elif name is not None:
                figures[name] += sample.value
    return dict(figures)


def compute_rounds(
    before: list[dict[str, float]],
    after: list[dict[str, float]],
    cpu_seconds: float,
    seconds: float,
    cores: int,
    load: float = 0.0,
) -> dict[str, Any]:
    """Which bound holds over a run: the nodes' CPU share of the machine, the mean round, and per block the loop's
    wall ms in each stage (the mean over the nodes)."""
    deltas = [{key: value - b.get(key, 0.0) for key, value in a.items()} for a, b in zip(after, before, strict=True)]
    blocks = max(max((d.get("blocks", 0.0) for d in deltas), default=0), 1)
    count = max(len(deltas), 1)
    stages = sorted({key for d in deltas for key in d if key.startswith("stage:")})
    busy = cpu_seconds / max(seconds * cores, 1e-9)
    round_ms = (
        sum(d.get("round_seconds", 0.0) for d in deltas) * 1000 / max(sum(d.get("blocks", 0.0) for d in deltas), 1)
    )
    return {
        "blocks": int(blocks),
        "round_ms": round(round_ms, 1),
        "loop_ms_per_block": {
            key.removeprefix("stage:"): round(sum(d[key] for d in deltas) * 1000 / blocks / count, 2) for key in stages
        },
        "cpu_share_of_machine": round(busy, 3),
        "load_average": round(load, 2),
        "bound": "cpu" if busy >= CPU_BOUND else "cpu of other processes" if load > cores else "consensus round",
    }


def format_table(table: dict[str, Any]) -> str:
    """The budget table as text, largest stage first."""
    total = table["total_ms_per_order_per_node"] or 1.0
    rows = sorted(table["ms_per_order_per_node"].items(), key=lambda item: -item[1])
    lines = [f"{'stage':<46} {'CPU ms/order/node':>17} {'share':>6}"]
    lines += [f"{stage:<46} {ms:>17.3f} {ms / total:>6.1%}" for stage, ms in rows]
    lines.append(f"{'total':<46} {table['total_ms_per_order_per_node']:>17.3f}")
    rounds = table.get("rounds")
    if rounds:
        stages = ", ".join(f"{stage} {ms}" for stage, ms in rounds["loop_ms_per_block"].items())
        lines.append(
            f"{rounds['blocks']} blocks, round (proposal to commit) {rounds['round_ms']} ms; loop ms per block:"
            f" {stages}; nodes' CPU {rounds['cpu_share_of_machine']:.0%} of the machine, load average"
            f" {rounds['load_average']}: bound {rounds['bound']}"
        )
    return "\n".join(lines)


@dataclass
class NodeProfiler:
    """Profiles every running node of a devnet between `start` and `stop`; raw samples go to `out`."""

    devnet: Devnet
    out: Path
    rate: int = SAMPLE_RATE
    native: bool = False
    """Sample C frames too (`--native`), stopping each node at every sample."""
    _nodes: list[NodeInfo] = field(default_factory=list)
    _pids: list[int] = field(default_factory=list)
    _before: list[dict[int, tuple[str, float]]] = field(default_factory=list)
    _profilers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _metrics: list[dict[str, float]] = field(default_factory=list)
    _started: float = 0.0

    def start(self) -> None:
        """Read every thread's CPU and start one py-spy per node."""
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            raise RuntimeError("profiling needs py-spy (pip install py-spy)")
        self.out.mkdir(parents=True, exist_ok=True)
        nodes = [n for n in self.devnet.nodes if n.pid is not None and self.devnet.is_running(n)]
        if not nodes:
            raise RuntimeError("no node of the devnet is running")
        self._nodes = nodes
        self._pids = [n.pid for n in nodes if n.pid is not None]
        self._metrics = [self._read_metrics(n) for n in nodes]
        self._started = time.monotonic()
        self._before = [read_thread_cpu(pid) for pid in self._pids]
        mode = "--native" if self.native else "--nonblocking"
        command = [py_spy, "record", mode, "--threads", "--format", "raw", "--rate", str(self.rate)]
        self._profilers = [
            subprocess.Popen(
                [*command, "--output", str(self._raw_path(pid)), "--pid", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in self._pids
        ]

    def stop(self, committed: int) -> dict[str, Any]:
        """Read every thread's CPU again, stop the profilers (they write their samples) and make the table."""
        after = [read_thread_cpu(pid) for pid in self._pids]
        seconds = time.monotonic() - self._started
        metrics = [self._read_metrics(n) for n in self._nodes]
        for profiler in self._profilers:
            profiler.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        for profiler in self._profilers:
            try:
                profiler.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait()
        for pid, before, now in zip(self._pids, self._before, after, strict=True):
            threads = {"before": before, "after": now}
            (self.out / f"node-{pid}.threads.json").write_text(json.dumps(threads, indent=1) + "\n")
        table = read_budget(self.out, committed)
        cpu = table["total_ms_per_order_per_node"] * len(self._pids) * max(committed, 1) / 1000
        load = os.getloadavg()[0]
        table["rounds"] = compute_rounds(self._metrics, metrics, cpu, seconds, os.cpu_count() or 1, load)
        return table

    def close(self) -> None:
        """End the profilers still running (a run that failed before `stop`), keeping no sample."""
        for profiler in self._profilers:
            if profiler.poll() is None:
                profiler.kill()
                profiler.wait()

    def _read_metrics(self, node: NodeInfo) -> dict[str, float]:
        answer = httpx.get(f"{node.url}/metrics", timeout=30)
        answer.raise_for_status()
        return read_round_metrics(answer.text)

    def _raw_path(self, pid: int) -> Path:
        return self.out / f"node-{pid}.raw"


def read_budget(out: Path, committed: int) -> dict[str, Any]:
    """The budget table of a profile directory: each node's samples (`node-PID.raw`) and threads' CPU before and
    after (`node-PID.threads.json`), as `NodeProfiler.stop` left them."""
    per_node = []
    for threads_path in sorted(out.glob("node-*.threads.json")):
        threads = json.loads(threads_path.read_text())
        before, after = (
            {int(tid): (name, cpu) for tid, (name, cpu) in threads[k].items()} for k in ("before", "after")
        )
        raw = threads_path.with_name(threads_path.name.replace(".threads.json", ".raw"))
        samples = parse_raw_profile(raw.read_text()) if raw.exists() else {}
        per_node.append(split_node_cpu(before, after, samples))
    return budget_table(per_node, committed)


def main(argv: list[str] | None = None) -> int:
    """`python -m devnet.profile DIR --committed N`: the budget table of a profile directory, again."""
    parser = argparse.ArgumentParser(description="Print the per-order CPU budget of a `devnet bench --profile` run.")
    parser.add_argument("dir", type=Path, help="the profile directory")
    parser.add_argument("--committed", type=int, required=True, help="orders the run committed")
    args = parser.parse_args(argv)
    print(format_table(read_budget(args.dir, args.committed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
