"""Every scenario by the name `omsnode devnet chaos --scenario` takes, with how long its fault lasts by default."""

from __future__ import annotations

from collections.abc import Callable

from devnet.chaos import junk, links, processes
from devnet.chaos.stage import Stage

Scenario = Callable[[Stage], None]

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
}

DEFAULT_SECONDS: dict[str, float] = {"pause": 10.0, "lagging-joiner": 30.0}
"""Seconds a fault lasts when `--seconds` is not given, where it differs from `SECONDS`."""

SECONDS = 15.0
