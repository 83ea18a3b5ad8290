"""The stage a fault scenario plays on: the devnet, its load, a seeded random source, and the marks it leaves.

A scenario is a function of a `Stage`: it calls `fault()` as it injects its
fault, undoes it, and calls `heal()` once every node is back as it was
(running, reachable, its clock right). The runner measures around those two
marks: the commits between them, how soon commits resume after the heal,
the view changes. A scenario names the nodes it made dishonest in
`dishonest`: the checker does not ask them to have voted again.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from devnet.chaos.load import OrderLoad
from devnet.network import Devnet
from node.config import LINK_FAULTS_FILE, NodeConfig

STATUS_TIMEOUT_S = 5.0
"""Time limit of one status request (a stopped node answers none)."""


class ScenarioError(RuntimeError):
    """A scenario could not be played on this devnet (not a violation of an invariant: a wrong setting)."""


@dataclass
class Marks:
    """When a scenario's fault began and ended, and the chain's height then."""

    fault_at: float | None = None
    fault_height: int = 0
    heal_at: float | None = None
    heal_wall_ms: int = 0
    """The heal's time on the machine's clock, which the nodes' block times also read."""
    heal_height: int = 0
    notes: list[str] = field(default_factory=list)
    """What the scenario did, step by step."""


class Stage:
    """What a scenario acts on; see the module docstring."""

    def __init__(self, devnet: Devnet, load: OrderLoad, rng: random.Random, seconds: float) -> None:
        self.devnet = devnet
        self.load = load
        self.rng = rng
        self.seconds = seconds
        """How long the fault lasts (each of its phases, for a scenario of several)."""
        self.marks = Marks()
        self.dishonest: set[int] = set()
        """Nodes the scenario made dishonest: not asked to have voted again."""
        self.problems: list[str] = []
        self._known = 0
        """Violations the scenario itself saw (a 5xx answer to junk, say)."""

    # -- marks ----------------------------------------------------------------------------

    def fault(self, what: str) -> None:
        """Mark the fault's start (the first call counts), just before `what` is done, and note it."""
        self.note(what)
        if self.marks.fault_at is None:
            self.marks.fault_at = time.monotonic()
            self.marks.fault_height = self.height()

    def heal(self, what: str) -> None:
        """Mark the fault's end: every node runs again as it should."""
        self.note(what)
        self.marks.heal_at = time.monotonic()
        self.marks.heal_wall_ms = int(time.time() * 1000)
        self.marks.heal_height = self.height()

    def note(self, what: str) -> None:
        self.marks.notes.append(what)

    # -- the nodes ----------------------------------------------------------------------

    def statuses(self) -> list[dict[str, Any]]:
        """Every node's status (`Devnet.status`; `up` False for one that does not answer)."""
        with ThreadPoolExecutor(len(self.devnet.nodes)) as pool:
            return list(pool.map(lambda node: self.devnet.status(node.index, STATUS_TIMEOUT_S), self.devnet.nodes))

    def height(self) -> int:
        """The highest height any node has answered with (the chain never shrinks: with every node down, the
        height they last showed)."""
        self._known = max([self._known, *(row["height"] or 0 for row in self.statuses() if row["up"])])
        return self._known

    def block_time_ms(self, height: int) -> int:
        """The timestamp of block `height`, from the first node that answers with it."""
        for row in self.statuses():
            if row["up"] and row["height"] >= height:
                with self.devnet.client(row["index"], timeout=STATUS_TIMEOUT_S) as client:
                    return int(client.get(f"/v1/blocks/{height}")["header"]["timestamp_ms"])
        raise ScenarioError(f"no node answers with block {height}")

    def primary(self) -> int:
        """The index of the node most nodes name as primary."""
        rows = [row for row in self.statuses() if row["up"]]
        ids = {row["node_id"]: row["index"] for row in rows}
        named = [row["primary"] for row in rows if row["primary"] in ids]
        if not named:
            raise ScenarioError("no node answers with a primary that is a node of this devnet")
        return ids[max(set(named), key=named.count)]

    def replica(self, *besides: int) -> int:
        """A node chosen at random other than the primary and `besides`."""
        primary = self.primary()
        return self.rng.choice([n.index for n in self.devnet.nodes if n.index != primary and n.index not in besides])

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def signal(self, index: int, sig: signal.Signals) -> None:
        """Send `sig` to node `index`'s process."""
        node = self.devnet.node(index)
        if node.pid is None or not self.devnet.is_running(node):
            raise ScenarioError(f"node {index} is not running")
        os.kill(node.pid, sig)

    def restore(self) -> None:
        """Undo what a scenario that stopped half-way may have left: no link faults, no clock offset, no node
        stopped by SIGSTOP."""
        for node in self.devnet.nodes:
            (node.home / LINK_FAULTS_FILE).unlink(missing_ok=True)
            config = NodeConfig.load(node.home)
            if config.test_clock_offset_ms:
                self.devnet.stop(node.index)
                replace(config, test_clock_offset_ms=0).save(node.home)
            if node.pid is not None and self.devnet.is_running(node):
                os.kill(node.pid, signal.SIGCONT)
        self.note("undid every fault")

    def start(self, *indexes: int, timeout: float = 120.0) -> None:
        """Start the nodes and wait until they answer."""
        for index in indexes:
            self.devnet.start(index)
        self.devnet.wait_until_up(list(indexes), timeout=timeout)

    def wait_commits(self, count: int, timeout: float, what: str) -> None:
        """Wait until the chain grows by `count` blocks."""
        target = self.height() + count
        wait_until(lambda: self.height() >= target, timeout, what)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `predicate` until it holds; the seconds it took. `ScenarioError` after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise ScenarioError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started
