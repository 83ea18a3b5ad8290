"""Schedule search: seeded random schedules over every fault the simulator knows.

`draw_schedule(seed)` turns one seed into one schedule: 1, 4, 5 or 7
validators; up to f faulty validators, each Byzantine (any behaviour of
`tests.sim.byzantine`, the fuzzer included), run as Twins, or with a consensus
log damaged in the middle (it must refuse to start until repaired); message
drops, duplicates and delays; partitions of every shape; crashes at random
instants and at chosen protocol steps, some tearing the record being written,
some a failed log write instead (the replica halts until restarted); skewed
and drifting clocks, some far behind until stepped; slow sync.
`find_failure(seed)` runs it and checks that no honest endpoints ever fork,
no honest endpoint signs two different messages for one slot, no tx is
committed twice, every restarted replica can read its log, every
acknowledged tx is committed everywhere once the network is fair, and every
honest replica votes again within `VOTE_BOUND_MS` of the last fault healing.

A failing seed replays exactly: `find_failure(seed)`, or from the shell

    python -m tests.sim.search --first 1234 --count 1

The long run (`make sim`) searches at least 10,000 seeds and prints how many
it ran, every failing seed with what went wrong, how long after the last
fault healed the last honest replica voted again, and the most signature
checks one message cost its receiver.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from tests.sim.byzantine import BEHAVIOURS
from tests.sim.clock import ClockFault
from tests.sim.simulator import SIM_PARAMS, CrashPoint, Faults, Outcome, Simulator, Torn

CRASH_STEPS = (
    "persist prepared",
    "persist prepare",
    "persist commit",
    "persist view",
    "persist view_change",
    "persist new_view",
    "persist pre_prepare",
    "send commit",
    "send prepare",
    "send view_change",
    "send timeout",
    "decide",
)
"""Protocol steps a schedule may crash a replica at."""

BEHAVIOUR_NAMES = tuple(sorted(set(BEHAVIOURS) - {"honest"}))
"""Byzantine behaviours a schedule may give a faulty validator that is not a twin."""

TORN: tuple[Torn, ...] = ("none", "none", "lost", "cut")
"""What a crash while persisting does to the record (fully written twice as often as lost or cut)."""


@dataclass(frozen=True)
class Schedule:
    """One seed's run: how many validators and what goes wrong."""

    seed: int
    validators: int
    faults: Faults


FailureKind = Literal["safety", "restart", "load", "stall", "voting", "error"]
"""A fork or unverifiable chain; a replica that cannot restart; a message that cost an honest replica more signature
checks than the largest honest one; a stall once fair; an honest replica that does not vote again after the last
fault healed; an exception."""


class Failure(NamedTuple):
    """A schedule that broke an invariant, stalled or raised."""

    seed: int
    kind: FailureKind
    reason: str

    def __str__(self) -> str:
        return f"seed {self.seed}: {self.kind}: {self.reason}"


def draw_schedule(seed: int) -> Schedule:
    """The schedule of `seed`: every choice comes from one generator seeded with it."""
    rng = random.Random(seed)
    validators = rng.choice((1, 4, 4, 4, 4, 5, 7))
    ids = [f"node-{i}" for i in range(validators)]
    f = (validators - 1) // 3
    faulty = rng.sample(ids, rng.randrange(f + 1))
    damaged = tuple(vid for vid in faulty if rng.random() < 0.15)
    twins = tuple(vid for vid in faulty if vid not in damaged and rng.random() < 0.3)
    byzantine = tuple((vid, rng.choice(BEHAVIOUR_NAMES)) for vid in faulty if vid not in twins + damaged)
    honest = [vid for vid in ids if vid not in faulty]
    crash_points = tuple(_draw_crash_point(rng, honest) for _ in range(rng.randrange(3) if honest else 0))
    fair_after = rng.randrange(500, 3000)
    return Schedule(
        seed,
        validators,
        Faults(
            drop=rng.choice((0.0, 0.05, 0.2, 0.4)),
            duplicate=rng.choice((0.0, 0.1, 0.3)),
            max_delay_ms=rng.choice((10, 40, 100)),
            crashes=rng.randrange(3),
            crash_points=crash_points,
            partitions=rng.randrange(3),
            byzantine=byzantine,
            twins=twins,
            damaged=damaged,
            repair_ms=rng.randrange(200, 3000),
            clocks=tuple(_draw_clock(rng, fair_after) for _ in ids),
            sync_delays=rng.randrange(1, 6),
            gossip_loss=rng.random() < 0.8,
            txs=rng.randrange(1, 11),
            fair_after_ms=fair_after,
        ),
    )


def _draw_crash_point(rng: random.Random, honest: list[str]) -> CrashPoint:
    step = rng.choice(CRASH_STEPS)
    return CrashPoint(
        endpoint=rng.choice(honest),
        step=step,
        height=rng.choice((None, 1, 1, 2, 3)),
        view=rng.choice((None, None, 0, 1)),
        torn=rng.choice(TORN) if step.startswith("persist") else "none",
        down_ms=rng.randrange(1, 1500),
        write_error=step.startswith("persist") and rng.random() < 0.4,
    )


def _draw_clock(rng: random.Random, fair_after_ms: int) -> ClockFault:
    """A clock within half the skew bound of true time, so any two honest clocks stay within the bound; now and
    then one that starts beyond the bound, behind, and is stepped back within it before the network turns fair."""
    half = SIM_PARAMS.max_clock_skew_ms * 9 // 20
    offset, drift = rng.randrange(-half, half + 1), rng.randrange(-2000, 2001)
    if rng.random() < 0.9:
        return ClockFault(offset_ms=offset, drift_ppm=drift)
    behind = SIM_PARAMS.max_clock_skew_ms + rng.randrange(SIM_PARAMS.max_clock_skew_ms)
    return ClockFault(-behind, drift, jump_at_ms=rng.randrange(fair_after_ms), jump_ms=behind + offset)


def run_schedule(seed: int) -> Outcome:
    schedule = draw_schedule(seed)
    return Simulator(schedule.validators, seed, schedule.faults).run()


def find_failure(seed: int) -> Failure | None:
    """Why the schedule of `seed` fails (a broken invariant, a stall or an exception), or None if it passes."""
    return run_and_judge(seed)[1]


def run_and_judge(seed: int) -> tuple[Outcome | None, Failure | None]:
    """The outcome of the schedule of `seed` (None if it raised) and why it fails, if it does."""
    try:
        outcome = run_schedule(seed)
    except Exception as exc:  # a replica or the simulator raised: report it with the seed
        return None, Failure(seed, "error", f"{type(exc).__name__}: {exc}")
    return outcome, judge(outcome)


def judge(outcome: Outcome) -> Failure | None:
    seed = outcome.seed
    details = "; ".join(v.detail for v in outcome.violations)
    if not outcome.is_safe:
        return Failure(seed, "safety", details)
    if outcome.violations:
        return Failure(seed, "load" if outcome.violations[0].kind == "load" else "restart", details)
    if outcome.silent:
        return Failure(seed, "voting", f"{', '.join(outcome.silent)} signed no vote by t={outcome.end_ms} ms")
    if not outcome.is_live:
        return Failure(seed, "stall", f"heights {outcome.heights} at t={outcome.end_ms} ms")
    return None


def search(seeds: Iterable[int]) -> list[Failure]:
    """Run every seed; the failures."""
    return [failure for seed in seeds if (failure := find_failure(seed)) is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Search seeded simulator schedules for forks and stalls.")
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--count", type=int, default=10_000, help="how many seeds")
    args = parser.parse_args(argv)
    started = time.monotonic()
    failures, delays, checks = [], [], 0
    for seed in range(args.first, args.first + args.count):
        outcome, failure = run_and_judge(seed)
        if outcome is not None:
            checks = max(checks, outcome.max_checks)
            if outcome.vote_delay_ms is not None:
                delays.append(outcome.vote_delay_ms)
        if failure is not None:
            failures.append(failure)
            print(failure, flush=True)
    elapsed = time.monotonic() - started
    if delays:
        delays.sort()
        p50, p99 = delays[len(delays) // 2], delays[len(delays) * 99 // 100]
        print(f"the last honest replica voted again {p50} ms (median), {p99} ms (p99), {delays[-1]} ms (max) after the")
        print("last fault healed")
    print(f"most signature checks one message cost its receiver: {checks}")
    print(f"ran {args.count} schedules (seeds {args.first} to {args.first + args.count - 1}) in {elapsed:.0f} s")
    print(f"{len(failures)} failed" + "".join(f"\n  seed {f.seed}: {f.kind}" for f in failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
