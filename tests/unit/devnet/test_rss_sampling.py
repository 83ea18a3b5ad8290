"""The benchmark's memory samples: read from `/proc` at each multiple of the orders committed, once a crossing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devnet.bench import RssSampler, read_memory_mb
from devnet.network import NodeInfo


def finished_pid() -> int:
    """The pid of a process that has exited and been reaped (nothing runs under it now)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_sample_is_taken_at_each_multiple_passed_with_the_orders_committed_then(tmp_path: Path) -> None:
    live = NodeInfo(0, tmp_path, 1, os.getpid())
    gone = NodeInfo(1, tmp_path, 2, finished_pid())
    sampler = RssSampler([live, gone], every=100)
    for committed in (0, 40, 99, 100, 150, 199, 350, 360, 400):
        sampler.observe(committed)
    assert [s["orders"] for s in sampler.samples] == [100, 350, 400], "one sample per crossing, 350 passed two"
    for sample in sampler.samples:
        mine, other = sample["rss_mb"]
        mapped, other_mapped = sample["rss_file_mb"]
        assert mine is not None and 1 < mine < 100_000 and mapped is not None and 0 < mapped <= mine
        assert other is None and other_mapped is None


def test_without_a_period_nothing_is_sampled_and_a_period_below_one_is_refused(tmp_path: Path) -> None:
    sampler = RssSampler([NodeInfo(0, tmp_path, 1, os.getpid())], every=None)
    sampler.observe(10**6)
    assert sampler.samples == []
    with pytest.raises(ValueError):
        RssSampler([], every=0)


def test_resident_now_is_read_beside_the_peak_and_never_above_it(tmp_path: Path) -> None:
    me = NodeInfo(0, tmp_path, 1, os.getpid())
    resident, peak = read_memory_mb(me), read_memory_mb(me, "VmHWM")
    assert resident is not None and peak is not None and 0 < resident <= peak
    assert read_memory_mb(NodeInfo(0, tmp_path, 1, None)) is None
