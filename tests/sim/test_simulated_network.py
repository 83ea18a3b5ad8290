"""Safety and liveness of the replica over hundreds of seeded, faulty schedules.

Every schedule asserts safety (no two honest replicas decide different
blocks at one height, every decided block has a valid certificate) and
liveness (every submitted tx is committed by every honest replica within a
bounded simulated time once the network is fair). A failure names its seed;
`Simulator(n, seed, faults).run()` replays it exactly.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.byzantine import BEHAVIOURS
from tests.sim.simulator import Faults, Outcome, Simulator

WIRE_LIARS = ["silent", "equivocate", "wrong_digest", "forge", "replay"]
"""Byzantine behaviours a random schedule may pick (the staged NEW-VIEW attack has its own test)."""


def assert_safe_and_live(outcome: Outcome, faults: Faults) -> None:
    context = f"seed {outcome.seed}, {faults}"
    assert outcome.violations == [], f"{context}: {outcome.violations}"
    assert outcome.is_live, f"{context}: not every tx committed by t={outcome.end_ms} ms; heights {outcome.heights}"


@st.composite
def schedules(draw: st.DrawFn) -> tuple[int, int, Faults]:
    validators = draw(st.sampled_from([1, 4, 4, 4, 4, 7]))
    f = (validators - 1) // 3
    liars = draw(st.integers(0, f))
    byzantine = tuple(
        (f"node-{index}", draw(st.sampled_from(WIRE_LIARS)))
        for index in draw(st.lists(st.integers(0, validators - 1), min_size=liars, max_size=liars, unique=True))
    )
    faults = Faults(
        drop=draw(st.sampled_from([0.0, 0.05, 0.2, 0.4])),
        duplicate=draw(st.sampled_from([0.0, 0.1, 0.3])),
        crashes=draw(st.integers(0, 2)),
        partitions=draw(st.integers(0, 1)),
        byzantine=byzantine,
        txs=draw(st.integers(1, 10)),
        fair_after_ms=draw(st.integers(500, 3000)),
    )
    return validators, draw(st.integers(0, 2**32)), faults


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(schedules())
def test_random_schedules_are_safe_and_live(schedule):
    validators, seed, faults = schedule
    assert_safe_and_live(Simulator(validators, seed, faults).run(), faults)


@pytest.mark.parametrize("seed", range(120))
def test_seeded_four_node_schedules(seed):
    rng = random.Random(seed)
    byzantine = ((f"node-{rng.randrange(4)}", rng.choice(WIRE_LIARS)),) if seed % 2 else ()
    faults = Faults(
        drop=rng.choice([0.0, 0.1, 0.3]),
        duplicate=rng.choice([0.0, 0.2]),
        crashes=rng.randrange(3),
        partitions=rng.randrange(2),
        byzantine=byzantine,
        txs=rng.randrange(1, 9),
        fair_after_ms=rng.randrange(500, 2500),
    )
    assert_safe_and_live(Simulator(4, seed, faults).run(), faults)


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_every_byzantine_behaviour_as_primary(behaviour):
    faults = Faults(byzantine=(("node-0", behaviour),), txs=6, fair_after_ms=500)
    for seed in range(3):
        assert_safe_and_live(Simulator(4, seed, faults).run(), faults)


def test_seven_validators_with_two_liars_and_crashes():
    faults = Faults(drop=0.1, crashes=2, partitions=1, byzantine=(("node-0", "equivocate"), ("node-4", "forge")), txs=6)
    for seed in range(2):
        assert_safe_and_live(Simulator(7, seed, faults).run(), faults)


def test_same_seed_same_run():
    faults = Faults(drop=0.2, duplicate=0.2, crashes=1, partitions=1, txs=5)
    first, second = Simulator(4, 42, faults).run(), Simulator(4, 42, faults).run()
    assert (first.end_ms, first.heights) == (second.end_ms, second.heights)
