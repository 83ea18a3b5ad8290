"""Faults of the node processes: killed, frozen, started empty, or run on a skewed clock.

Each function is a scenario (`devnet.chaos.stage`): it acts on the devnet's
processes as a machine failing would (SIGKILL: no shutdown at all; SIGSTOP:
a process that stops answering mid-work, as under a long GC pause or a
stalled VM), and heals once every node runs again.
"""

from __future__ import annotations

import shutil
import signal
from dataclasses import replace

from devnet.chaos.stage import ScenarioError, Stage
from node.config import DATA_DIR, WAL_FILE, NodeConfig

CLOCK_SKEW_MS = 3 * 60_000
"""How far `clock-skew` sets a node's clock off: minutes, far past any bound on block times."""


def kill_and_restart(stage: Stage, victim: int, role: str) -> None:
    """SIGKILL node `victim` (the `role` it plays, for the notes), start it again after `seconds`."""
    stage.fault(f"kill {role} {victim}")
    stage.devnet.kill(victim)
    stage.pause(stage.seconds)
    stage.start(victim)
    stage.heal(f"started node {victim} again")


def kill_replica(stage: Stage) -> None:
    """SIGKILL a replica, start it again after `seconds`."""
    kill_and_restart(stage, stage.replica(), "replica")


def kill_primary(stage: Stage) -> None:
    """SIGKILL the primary, start it again after `seconds`: the others change view and go on without it."""
    kill_and_restart(stage, stage.primary(), "primary")


def restart_all(stage: Stage) -> None:
    """SIGKILL every node at once, start them all after `seconds`."""
    stage.fault("kill every node")
    for node in stage.devnet.nodes:
        stage.devnet.kill(node.index)
    stage.pause(stage.seconds)
    stage.start(*(node.index for node in stage.devnet.nodes))
    stage.heal("started every node again")


def pause(stage: Stage) -> None:
    """SIGSTOP a replica for `seconds`, SIGCONT; then the same to the primary."""
    replica = stage.replica()
    stage.fault(f"stop replica {replica} (SIGSTOP)")
    stage.signal(replica, signal.SIGSTOP)
    stage.pause(stage.seconds)
    stage.signal(replica, signal.SIGCONT)
    stage.note(f"continue node {replica}")
    primary = stage.primary()
    stage.signal(primary, signal.SIGSTOP)
    stage.note(f"stop primary {primary} (SIGSTOP)")
    stage.pause(stage.seconds)
    stage.signal(primary, signal.SIGCONT)
    stage.heal(f"continued node {primary}")


def stop_and_kill(stage: Stage) -> None:
    """SIGSTOP a replica while the primary is SIGKILLed: the stopped one misses the view change and must vote
    again once it continues."""
    primary = stage.primary()
    replica = stage.replica()
    stage.fault(f"stop replica {replica} (SIGSTOP) and kill primary {primary}")
    stage.signal(replica, signal.SIGSTOP)
    stage.devnet.kill(primary)
    stage.pause(min(stage.seconds, 5.0))
    stage.signal(replica, signal.SIGCONT)
    stage.note(f"continue node {replica}")
    stage.pause(stage.seconds)
    stage.start(primary)
    stage.heal(f"started node {primary} again")


def lagging_joiner(stage: Stage) -> None:
    """A replica loses its data and consensus log and stays down for `seconds` of load, then starts empty
    (catching up by block sync or state sync) and must vote again."""
    joiner = stage.replica()
    stage.fault(f"stop node {joiner} and remove its data and consensus log")
    stage.devnet.stop(joiner)
    home = stage.devnet.node(joiner).home
    shutil.rmtree(home / DATA_DIR)
    (home / WAL_FILE).unlink(missing_ok=True)
    stage.pause(stage.seconds)
    stage.start(joiner)
    stage.heal(f"started node {joiner} empty")


def clock_skew(stage: Stage) -> None:
    """A replica runs for `seconds` with its clock minutes off (ahead or behind, by the seed), then right."""
    victim = stage.replica()
    offset = stage.rng.choice((CLOCK_SKEW_MS, -CLOCK_SKEW_MS))
    stage.fault(f"restart node {victim} with its clock {offset // 1000:+d} s off")
    set_clock_offset(stage, victim, offset)
    stage.pause(stage.seconds)
    set_clock_offset(stage, victim, 0)
    stage.heal(f"restarted node {victim} with its clock right")


def set_clock_offset(stage: Stage, index: int, offset_ms: int) -> None:
    """Restart node `index` with `offset_ms` added to its clock (`NodeConfig.test_clock_offset_ms`)."""
    home = stage.devnet.node(index).home
    config = NodeConfig.load(home)
    if not config.test_faults:
        raise ScenarioError(f"node {index} does not accept test faults: make the devnet with `devnet chaos`")
    stage.devnet.stop(index)
    replace(config, test_clock_offset_ms=offset_ms).save(home)
    stage.start(index)
