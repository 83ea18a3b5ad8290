"""Playing one scenario: load, fault, heal, wait, check; and its figures.

`run_scenario` makes sure every node of the devnet runs and votes, starts an
`OrderLoad`, lets a few blocks commit, plays the scenario (which marks its
fault and its heal on the `Stage`), then waits for what must follow a heal:

- commits resume within `RESUME_LIMIT_S` (the stated bound; a run that needs
  longer is a violation); the time to resume is from the heal to the time of
  the first block after it (the nodes' block times read the same clock);
- every honest node votes again within `VOTE_LIMIT_S`: its
  `last_voted_height` (in `/v1/status`) passes the heal's height and comes
  within `VOTE_LAG` blocks of its head;

then stops the load, waits until every node is at one height, and runs the
checker (`devnet.chaos.invariants`). The result holds the figures of the
table `omsnode devnet chaos` prints: commits during the fault, time to resume,
view changes, orders acknowledged, and every violation.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from devnet.chaos.invariants import check_invariants
from devnet.chaos.load import OrderLoad
from devnet.chaos.scenarios import SCENARIOS
from devnet.chaos.stage import ScenarioError, Stage, wait_until
from devnet.network import Devnet

RESUME_LIMIT_S = 60.0
"""Longest wait, after a heal, for the chain to grow again."""

VOTE_LIMIT_S = 90.0
"""Longest wait, after commits resumed, for every honest node to vote again."""

VOTE_LAG = 3
"""How far below its head an honest node's last vote may be."""

CONVERGE_LIMIT_S = 120.0
"""Longest wait, after the load stopped, for every node to reach one height."""

ORDERS_PER_S = 20.0
"""Orders offered a second during a scenario."""

WARM_BLOCKS = 3
"""Blocks the load commits before the fault."""


@dataclass
class ScenarioResult:
    """The figures of one scenario and what the checker found."""

    scenario: str
    seed: int
    seconds: float
    commits_during_fault: int | None = None
    """Blocks committed between the fault and the heal."""
    resume_s: float | None = None
    """Seconds from the heal to the time of the first block after it (block times are the machine's clock)."""
    view_changes: int | None = None
    """How far the view moved during the run."""
    orders_sent: int = 0
    orders_acknowledged: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Submissions the nodes refused, by error code."""
    height: int = 0
    """The chain's height when checked."""
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def run_scenario(
    devnet: Devnet,
    name: str,
    seed: int,
    seconds: float,
    verify: bool = True,
    rate: float = ORDERS_PER_S,
    say: Callable[[str], None] = lambda text: None,
) -> ScenarioResult:
    """Play scenario `name` (a key of `SCENARIOS`) on `devnet`; `seconds`: how long its fault lasts; `verify`:
    run `verify-chain` on every node's data after it; `rate`: orders offered a second."""
    if name not in SCENARIOS:
        raise ScenarioError(f"no scenario {name!r}; there are {', '.join(sorted(SCENARIOS))}")
    result = ScenarioResult(name, seed, seconds)
    devnet.start_all()
    devnet.wait_until_up(timeout=120)
    load = OrderLoad(devnet, f"{name}-{seed}-{int(time.time())}", rate)
    stage = Stage(devnet, load, random.Random(seed), seconds)
    # every node at one head before the load (whether each votes is asked after the heal: `voting` means a vote
    # at one of the last heights, which a quiet chain does not give a node that caught up by sync)
    wait_until(lambda: one_height(stage, 0), VOTE_LIMIT_S, "every node to reach one head")
    since = stage.height() + 1
    view = max(row["view"] for row in stage.statuses())
    say(f"{name}: stocking the run's SKUs, then load from height {since}")
    load.prepare()
    load.start()
    try:
        stage.wait_commits(WARM_BLOCKS, RESUME_LIMIT_S, "the load's first blocks")
        SCENARIOS[name](stage)
        if stage.marks.heal_at is None or stage.marks.fault_at is None:
            raise ScenarioError(f"scenario {name} did not mark its fault and its heal")
        result.commits_during_fault = stage.marks.heal_height - stage.marks.fault_height
        say(f"{name}: healed at height {stage.marks.heal_height}; waiting for commits and votes")
        wait_until(lambda: stage.height() > stage.marks.heal_height, RESUME_LIMIT_S, "commits to resume")
        resumed_ms = stage.block_time_ms(stage.marks.heal_height + 1) - stage.marks.heal_wall_ms
        result.resume_s = round(max(resumed_ms, 0) / 1000, 2)
        wait_voted_again(stage)
    except ScenarioError as exc:
        result.problems.append(str(exc))
        stage.restore()
    except Exception:  # a scenario that broke is reported, and its faults undone for the check
        result.problems.append(f"the scenario failed: {traceback.format_exc(limit=3)}")
        stage.restore()
    finally:
        load.stop()
        result.notes = stage.marks.notes
        result.problems += stage.problems
    try:
        devnet.start_all()
        devnet.wait_until_up(timeout=120)
        load.resolve()
        top = stage.height()
        wait_until(lambda: one_height(stage, top), CONVERGE_LIMIT_S, "every node to reach one height")
        say(f"{name}: checking the invariants on every node")
        result.problems += check_invariants(devnet, load, since, verify=verify)
    except (ScenarioError, TimeoutError) as exc:
        result.problems.append(str(exc))
    except Exception:  # a broken check is reported as such, not as a pass
        result.problems.append(f"the check itself failed: {traceback.format_exc(limit=3)}")
    result.view_changes = max((row["view"] or 0 for row in stage.statuses()), default=0) - view
    result.orders_sent, result.orders_acknowledged = load.sent, len(load.acks)
    result.refused = dict(load.refused)
    result.height = stage.height()
    result.problems += [f"the load failed: {error}" for error in load.errors]
    return result


def wait_voted_again(stage: Stage) -> None:
    """Wait until every honest node's last vote is past the heal and near its head."""
    honest = [n.index for n in stage.devnet.nodes if n.index not in stage.dishonest]

    def voted() -> bool:
        rows = stage.statuses()
        return all(
            rows[i]["up"]
            and last_voted(rows[i]) > stage.marks.heal_height
            and last_voted(rows[i]) >= rows[i]["height"] - VOTE_LAG
            for i in honest
        )

    try:
        wait_until(voted, VOTE_LIMIT_S, "every honest node to vote again")
    except ScenarioError:
        rows = stage.statuses()
        behind = {i: (last_voted(rows[i]), rows[i]["height"]) for i in honest}
        raise ScenarioError(f"an honest node did not vote again: (last voted, height) per node {behind}") from None


def last_voted(row: dict[str, Any]) -> int:
    """The height of the node's last vote, from `/v1/status`."""
    return int(row.get("last_voted_height") or 0)


def one_height(stage: Stage, at_least: int) -> bool:
    rows = stage.statuses()
    return (
        all(row["up"] for row in rows)
        and len({(row["height"], row["head_hash"]) for row in rows}) == 1
        and (rows[0]["height"] >= at_least)
    )
