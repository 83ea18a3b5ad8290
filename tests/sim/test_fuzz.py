"""A fuzzing validator: mutants of every message it sends break nothing and cost bounded memory.

One Byzantine validator (`fuzz` in `tests.sim.byzantine`) sends, besides each
honest message, mutants of it: fields, views, heights, digests, signatures,
senders, headers, bodies and certificates changed, most re-signed with its own
key so that their signatures verify, and raw bytes flipped. The honest
replicas must not fork, must not raise, must commit every tx, and must keep
their memory within what the protocol promises (`compute_log_bound`).
"""

from __future__ import annotations

import pytest

from consensus.replica import VIEW_SPAN
from ledger.genesis import Genesis
from tests.sim.simulator import Faults, Outcome, Simulator


def compute_log_bound(genesis: Genesis) -> int:
    """Most messages a replica may hold (docs/spec/consensus.md): in each height from the stable checkpoint to the
    high watermark (three checkpoint intervals) and each view within `VIEW_SPAN` of the current one, a proposal and
    a prepare and a commit per validator, and its own three signatures; a checkpoint per validator for each
    checkpoint height of that range; a view change per validator; its own view change and new view per view."""
    interval = genesis.consensus.checkpoint_interval
    heights, views, n = 3 * interval, 2 * VIEW_SPAN + 1, genesis.n
    slots = heights * views
    return slots * (1 + 2 * n) + slots * 3 + n * (heights // interval + 1) + n + 2 * views


def assert_unharmed(outcome: Outcome, genesis: Genesis) -> None:
    assert outcome.violations == [], f"seed {outcome.seed}: {outcome.violations}"
    assert outcome.is_live, f"seed {outcome.seed}: stalled at heights {outcome.heights}"
    assert outcome.max_log_size <= compute_log_bound(genesis), f"seed {outcome.seed}: log held {outcome.max_log_size}"


@pytest.mark.parametrize("seed", range(24))
def test_fuzzed_messages_from_one_validator_break_nothing(seed):
    faults = Faults(
        byzantine=((f"node-{seed % 4}", "fuzz"),),
        drop=0.1,
        duplicate=0.1,
        crashes=seed % 2,
        txs=10,
        fair_after_ms=1500,
    )
    sim = Simulator(4, seed, faults)
    assert_unharmed(sim.run(), sim.genesis)


@pytest.mark.parametrize("validators", [4, 7])
def test_memory_stays_bounded_over_a_long_fuzzed_run(validators):
    """Well over ten checkpoint intervals of blocks: what the fuzzer makes a replica keep does not pile up."""
    faults = Faults(byzantine=(("node-1", "fuzz"),), txs=300, drop=0.05, fair_after_ms=20_000)
    sim = Simulator(validators, 7, faults)
    outcome = sim.run()
    assert_unharmed(outcome, sim.genesis)
    assert min(outcome.heights.values()) >= 10 * sim.genesis.consensus.checkpoint_interval
