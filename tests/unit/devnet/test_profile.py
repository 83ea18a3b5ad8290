"""The per-order budget: stacks charged to stages, threads' CPU split by their samples, the round's bound."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

from devnet.profile import (
    COMPACTION,
    OTHER,
    UV_WORKERS,
    budget_table,
    classify_stack,
    compute_rounds,
    format_table,
    main,
    parse_raw_profile,
    read_budget,
    read_round_metrics,
    read_thread_cpu,
    split_node_cpu,
)

FEED_ENCODE = [
    "run_forever (loop.c:33192)",
    "commit (node/executor.py:140)",
    "compute_feed_writes (node/feed.py:88)",
    "encode (ledger/encoding.py:41)",
    "memcpy (libc.so.6)",
]


def test_the_frame_nearest_the_leaf_that_a_rule_knows_decides_the_stage() -> None:
    assert classify_stack(FEED_ENCODE) == "encoding (msgpack/msgspec)"
    assert classify_stack(FEED_ENCODE[:3]) == "derived: feed"
    assert classify_stack(FEED_ENCODE[:2]) == "execution (contracts, state)"
    assert classify_stack(["main (cli/main.py:205)", "select (selectors.py:468)"]) == OTHER
    loop = ["serve (node/server.py:236)", "Server.run (uvicorn/server.py:86)", "Runner.run (asyncio/runners.py:118)"]
    assert classify_stack(loop) == "event loop: sockets and callbacks in C (uvloop)", "not the API's Python"
    admission = ["handle (node/api/txs.py:50)", "verify (ledger/keys.py:80)", "verify (nacl/signing.py:110)"]
    assert classify_stack(admission) == "signature (Ed25519)"


def test_raw_samples_are_counted_per_thread_and_stage() -> None:
    raw = "\n".join(
        [
            "thread (101): MainThread;" + ";".join(FEED_ENCODE) + " 7",
            "thread (101): MainThread;" + ";".join(FEED_ENCODE[:3]) + " 3",
            "thread (102): uvloop_0;run (threading.py:975);post (httpx/_client.py:1100) 2",
            "a line that is no sample",
        ]
    )
    assert parse_raw_profile(raw) == {
        101: Counter({"encoding (msgpack/msgspec)": 7, "derived: feed": 3}),
        102: Counter({"p2p (peer messages over HTTP)": 2}),
    }


def test_a_python_thread_is_split_by_its_samples_and_a_native_one_charged_whole() -> None:
    before = {101: ("python3", 10.0), 103: ("python3", 1.0)}
    after = {101: ("python3", 14.0), 103: ("python3", 1.5), 104: ("libuv-worker", 0.25), 105: ("python3", 0.0)}
    samples = {101: Counter({"derived: feed": 3, "encoding (msgpack/msgspec)": 1})}
    assert split_node_cpu(before, after, samples) == {
        "derived: feed": 3.0,
        "encoding (msgpack/msgspec)": 1.0,
        COMPACTION: 0.5,
        UV_WORKERS: 0.25,
    }


def test_the_table_is_ms_per_committed_order_per_node() -> None:
    nodes = [{"derived: feed": 1.0, COMPACTION: 0.5}, {"derived: feed": 3.0, COMPACTION: 0.5}]
    table = budget_table(nodes, committed=1000)
    assert table["ms_per_order_per_node"] == {"derived: feed": 2.0, COMPACTION: 0.5}
    assert table["total_ms_per_order_per_node"] == 2.5
    assert table["node_total_ms_per_order"] == [1.5, 3.5]
    text = format_table(table)
    assert text.index("derived: feed") < text.index(COMPACTION), "largest stage first"


METRICS = """# HELP oms_blocks_committed_total Blocks committed through consensus since start.
# TYPE oms_blocks_committed_total counter
oms_blocks_committed_total {blocks}
# HELP oms_block_proposal_to_commit_seconds From proposal to commit.
# TYPE oms_block_proposal_to_commit_seconds histogram
oms_block_proposal_to_commit_seconds_bucket{{le="+Inf"}} {blocks}
oms_block_proposal_to_commit_seconds_count {blocks}
oms_block_proposal_to_commit_seconds_sum {round_s}
# HELP oms_consensus_stage_seconds Wall seconds per stage.
# TYPE oms_consensus_stage_seconds counter
oms_consensus_stage_seconds_total{{stage="log_sync"}} {sync_s}
oms_consensus_stage_seconds_total{{stage="commit"}} 1.0
"""


def test_the_round_figures_say_which_bound_holds() -> None:
    before = read_round_metrics(METRICS.format(blocks=10, round_s=2.0, sync_s=0.5))
    after = read_round_metrics(METRICS.format(blocks=30, round_s=6.0, sync_s=1.5))
    assert after == {"blocks": 30.0, "round_seconds": 6.0, "stage:log_sync": 1.5, "stage:commit": 1.0}
    waiting = compute_rounds([before] * 4, [after] * 4, cpu_seconds=4.0, seconds=10.0, cores=2)
    assert waiting["blocks"] == 20
    assert waiting["round_ms"] == 200.0
    assert waiting["loop_ms_per_block"] == {"commit": 0.0, "log_sync": 50.0}
    assert waiting["bound"] == "consensus round"
    busy = compute_rounds([before] * 4, [after] * 4, cpu_seconds=19.0, seconds=10.0, cores=2)
    assert busy["bound"] == "cpu" and busy["cpu_share_of_machine"] == 0.95
    shared = compute_rounds([before] * 4, [after] * 4, cpu_seconds=4.0, seconds=10.0, cores=2, load=9.5)
    assert shared["bound"] == "cpu of other processes"


def test_every_thread_of_a_process_is_read_with_its_cpu() -> None:
    stop = time.process_time() + 0.05
    while time.process_time() < stop:
        pass
    threads = read_thread_cpu(os.getpid())
    assert threads[os.getpid()][1] > 0, "the main thread of this process has spent CPU"
    assert read_thread_cpu(2**22 + 1) == {}, "a process that does not exist has no threads"


def test_a_profile_directory_gives_its_table_again(tmp_path: Path, capsys) -> None:
    raw = "thread (101): MainThread;" + ";".join(FEED_ENCODE[:3]) + " 4\n"
    (tmp_path / "node-100.raw").write_text(raw)
    threads = {"before": {"101": ["python3", 1.0]}, "after": {"101": ["python3", 3.0], "102": ["python3", 0.5]}}
    (tmp_path / "node-100.threads.json").write_text(json.dumps(threads))
    table = read_budget(tmp_path, committed=500)
    assert table["ms_per_order_per_node"] == {"derived: feed": 4.0, COMPACTION: 1.0}
    assert main([str(tmp_path), "--committed", "500"]) == 0
    assert "derived: feed" in capsys.readouterr().out
