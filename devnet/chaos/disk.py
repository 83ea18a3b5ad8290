"""Faults of a node's disk: full, or its consensus log damaged at rest.

`disk-full` makes every write of a replica's consensus log fail as on a full
disk (through the fault layer's control file, `disk_full`): the node must
stop loudly (its status shows `consensus_halted`, it stops voting) rather
than send a vote it could not persist; once the disk has room again and the
node is restarted it votes again.

`corrupt-wal` kills a replica, damages its consensus log (`consensus.wal`) as
a crash or a bad sector would (cut in the middle of a record, or one byte
flipped somewhere past its first record), and starts it again. The node must
either recover by itself (a torn tail is cut off) or refuse to start with a
message that names the damaged log; then the operator's repair is done
(docs/spec/consensus.md, *Repairing a damaged consensus log*: the file moved
aside), and the node must start, abstain through its head and vote again.
Either way it never signs twice: the checker finds no fork.
"""

from __future__ import annotations

import time

from devnet.chaos.links import set_link_faults
from devnet.chaos.stage import ScenarioError, Stage, wait_until
from node.config import WAL_FILE

START_LIMIT_S = 120.0
"""How long a restarted node has to come up or exit."""

HALT_LIMIT_S = 60.0
"""How long a node with a full disk has to halt (its next vote must fail to persist)."""

HEADER_BYTES = 8 + 16
"""The log's file magic and its first frame's header: past them a flipped byte damages a record."""


def disk_full(stage: Stage) -> None:
    """Fill a replica's disk for its consensus log until it halts, for at least `seconds`; free it and
    restart the node."""
    victim = stage.replica()
    stage.fault(f"fill node {victim}'s disk")
    set_link_faults(stage, victim, {"disk_full": True})
    try:
        wait_until(lambda: bool(stage.devnet.status(victim)["consensus_halted"]), HALT_LIMIT_S, "the node to halt")
        stage.note(f"node {victim} halted: {stage.devnet.status(victim)['consensus_halted']}")
    except ScenarioError:
        stage.problems.append(f"node {victim} did not halt within {HALT_LIMIT_S:g} s with its disk full")
    stage.pause(stage.seconds)
    set_link_faults(stage, victim, None)
    stage.devnet.stop(victim)
    stage.start(victim)
    stage.heal(f"freed node {victim}'s disk and restarted it")


def corrupt_wal(stage: Stage) -> None:
    """Kill a replica, cut or flip its consensus log mid-record, start it; repair if it refuses to."""
    victim = stage.replica()
    home = stage.devnet.node(victim).home
    stage.fault(f"kill node {victim}")
    stage.devnet.kill(victim)
    wal = home / WAL_FILE
    data = bytearray(wal.read_bytes())
    if len(data) <= HEADER_BYTES + 1:
        raise ScenarioError(f"node {victim}'s consensus log holds no record to damage")
    if stage.rng.random() < 0.5:
        cut = stage.rng.randrange(HEADER_BYTES + 1, len(data))
        wal.write_bytes(data[:cut])
        stage.note(f"cut its consensus log at byte {cut} of {len(data)}")
    else:
        at = stage.rng.randrange(HEADER_BYTES, len(data))
        data[at] ^= 1 << stage.rng.randrange(8)
        wal.write_bytes(bytes(data))
        stage.note(f"flipped a bit of byte {at} of {len(data)} in its consensus log")
    stage.pause(stage.seconds)
    if start_or_exit(stage, victim):
        stage.heal(f"node {victim} recovered its log by itself")
        return
    tail = (home / "node.log").read_text(errors="replace")[-4000:]
    if "corrupt_consensus_log" not in tail and WAL_FILE not in tail:
        stage.problems.append(f"node {victim} exited without naming its damaged consensus log: {tail[-600:]}")
    stage.note(f"node {victim} refused to start: its consensus log is damaged")
    wal.rename(wal.with_name(WAL_FILE + ".damaged"))
    stage.start(victim)
    stage.heal(f"started node {victim} with the damaged log moved aside")


def start_or_exit(stage: Stage, index: int) -> bool:
    """Start node `index`; True once it answers, False if its process ended first."""
    stage.devnet.start(index)
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline:
        if stage.devnet.status(index, timeout=2.0)["up"]:
            return True
        if not stage.devnet.is_running(stage.devnet.node(index)):
            stage.devnet.kill(index)
            return False
        time.sleep(0.3)
    raise ScenarioError(f"node {index} neither came up nor exited within {START_LIMIT_S:g} s")
