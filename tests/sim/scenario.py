"""Staged schedules: a scenario written as a list of named steps.

A step is a function of the simulator: it changes the world now (submit a tx,
lose some messages from here on, partition, crash), plans a crash at a
protocol step, or lets the run go on until something has happened (a replica
decided a height, entered a view). `run_staged` boots the validators, takes
the steps in order, then lets the run finish and returns its `Outcome`, with
safety checked all along and liveness at the end, as for a random schedule.
The network is fair unless a step says otherwise, so what happens is what the
steps stage, with the seed choosing only the message delays.

    run_staged(
        4,
        lose("Commit", view=0, receivers=("node-1", "node-2", "node-3")),
        submit(1),
        until_decided("node-0", 1),
        ...
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consensus.replica import Replica
from tests.sim.network import Partition
from tests.sim.simulator import CrashPoint, Faults, Lose, Outcome, ReplicaFactory, Simulator, Torn

Step = Callable[[Simulator], None]
"""One step of a staged schedule."""

STAGED = Faults(txs=0, fair_after_ms=0)
"""A fair network with no random faults and no random txs: the steps stage everything."""

STEP_LIMIT_MS = 60_000
"""How long an `until` step waits for what it expects before the scenario fails as mis-staged."""


def run_staged(
    validators: int,
    *steps: Step,
    seed: int = 0,
    faults: Faults = STAGED,
    replica_factory: ReplicaFactory = Replica,
) -> Outcome:
    """Take `steps` in order over a fresh simulated network, then run to the end."""
    sim = Simulator(validators, seed, faults, replica_factory=replica_factory)
    sim.boot()
    for step in steps:
        step(sim)
    return sim.run()


def submit(count: int = 1, to: str | None = None) -> Step:
    """Clients submit `count` txs now, to endpoint `to` (to any endpoint if None)."""

    def step(sim: Simulator) -> None:
        for _ in range(count):
            sim.submit(to)

    return step


def lose(
    kind: str | None,
    *,
    view: int | None = None,
    height: int | None = None,
    sender: str | None = None,
    receivers: Iterable[str | None] = (None,),
) -> Step:
    """From now on, lose every message of `kind` (any kind if None) that matches, to each of `receivers`."""

    def step(sim: Simulator) -> None:
        sim.lose.extend(Lose(kind, view, height, sender, receiver) for receiver in receivers)
        sim.note_fault()

    return step


def stop_losing() -> Step:
    """Lift every loss rule."""

    def step(sim: Simulator) -> None:
        sim.lose.clear()
        sim.note_fault()

    return step


def partition(make: Callable[[list[str]], Partition]) -> Step:
    """Cut the network as `make(endpoints)` says, until `heal`."""

    def step(sim: Simulator) -> None:
        sim.partition = make(list(sim.nodes))
        sim.note_fault()

    return step


def heal() -> Step:
    def step(sim: Simulator) -> None:
        sim.partition = None
        sim.note_fault()

    return step


def crash_at(
    endpoint: str,
    at: str,
    *,
    height: int | None = None,
    view: int | None = None,
    torn: Torn = "none",
    down_ms: int = 200,
) -> Step:
    """Crash `endpoint` the first time it reaches protocol step `at` (see `CrashPoint`), restart it later."""

    def step(sim: Simulator) -> None:
        sim.crash_points.setdefault(endpoint, []).append(CrashPoint(endpoint, at, height, view, torn, down_ms))

    return step


def crash_now(endpoint: str, down_ms: int) -> Step:
    """Crash `endpoint` now and restart it `down_ms` later."""

    def step(sim: Simulator) -> None:
        sim.crash(endpoint, down_ms)

    return step


def crash_sync_source(endpoint: str, down_ms: int = 200) -> Step:
    """Crash the peer `endpoint` is syncing from, now, and restart it `down_ms` later."""

    def step(sim: Simulator) -> None:
        source = sim.nodes[endpoint].sync_source
        if not sim.nodes[endpoint].syncing or source is None:
            raise AssertionError(f"seed {sim.seed}: {endpoint} is not syncing")
        sim.crash(source, down_ms)

    return step


def until(description: str, condition: Callable[[Simulator], bool], within_ms: int = STEP_LIMIT_MS) -> Step:
    """Let the run go on until `condition` holds; a scenario whose condition never comes is mis-staged."""

    def step(sim: Simulator) -> None:
        if not sim.advance(lambda: condition(sim), sim.now + within_ms) and sim.is_safe():
            raise AssertionError(f"seed {sim.seed}: never reached: {description}")

    return step


def until_decided(endpoint: str, height: int) -> Step:
    return until(f"{endpoint} decided height {height}", lambda sim: sim.nodes[endpoint].app.head()[0] >= height)


def until_syncing(endpoint: str) -> Step:
    return until(f"{endpoint} syncs", lambda sim: sim.nodes[endpoint].syncing)


def until_view(endpoint: str, view: int) -> Step:
    """Until `endpoint` works in `view` or a later one (view change finished)."""

    def is_in_view(sim: Simulator) -> bool:
        replica = sim.nodes[endpoint].replica
        return replica is not None and replica.view >= view and not replica.is_view_changing

    return until(f"{endpoint} entered view {view}", is_in_view)


def until_asked_for_view(endpoint: str, view: int) -> Step:
    """Until `endpoint` has asked for `view` or a later one (its view change is on the wire)."""

    def has_asked(sim: Simulator) -> bool:
        replica = sim.nodes[endpoint].replica
        return replica is not None and replica.view >= view

    return until(f"{endpoint} asked for view {view}", has_asked)


def wait(ms: int) -> Step:
    """Let the run go on for `ms` of simulated time."""

    def step(sim: Simulator) -> None:
        sim.advance(lambda: False, sim.now + ms)

    return step
