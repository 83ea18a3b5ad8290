"""Every scenario by the name `omsnode devnet chaos --scenario` takes, with how long its fault lasts by default."""

from __future__ import annotations

from collections.abc import Callable

from devnet.chaos import byzantine, disk, junk, links, processes
from devnet.chaos.stage import Stage

Scenario = Callable[[Stage], None]

MIXED = 3
"""Faults `random` plays one after another."""

SCENARIOS: dict[str, Scenario] = {
    "kill-primary": processes.kill_primary,
    "kill-replica": processes.kill_replica,
    "restart-all": processes.restart_all,
    "pause": processes.pause,
    "stop-and-kill": processes.stop_and_kill,
    "lagging-joiner": processes.lagging_joiner,
    "clock-skew": processes.clock_skew,
    "junk": junk.junk,
    "partition": links.partition,
    "lossy": links.lossy,
    "disk-full": disk.disk_full,
    "corrupt-wal": disk.corrupt_wal,
    "twins": byzantine.twins,
    "byzantine-primary": byzantine.byzantine_primary,
}


def play_random(stage: Stage) -> None:
    """`MIXED` scenarios drawn by the seed, one after another: the fault marked at the first's start, the heal
    at the last's end."""
    names = stage.rng.sample(sorted(SCENARIOS), MIXED)
    stage.note(f"playing {', '.join(names)}")
    for name in names:
        SCENARIOS[name](stage)


SCENARIOS["random"] = play_random

DEFAULT_SECONDS: dict[str, float] = {"pause": 10.0, "lagging-joiner": 30.0, "lossy": 60.0}
"""Seconds a fault lasts when `--seconds` is not given, where it differs from `SECONDS`."""

SECONDS = 15.0
