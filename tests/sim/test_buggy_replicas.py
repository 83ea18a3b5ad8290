"""The simulator catches purpose-built bugs: the same schedules that pass break a buggy replica.

If these tests ever pass with the bug in place, the simulator has lost its teeth.
"""

from __future__ import annotations

from consensus.messages import NewView, PrePrepare
from consensus.replica import Replica
from consensus.validation import NewViewPlan
from ledger.membership import ValidatorSet
from tests.sim.simulator import Faults, Lose, Simulator

SEEDS = range(20)


class FPlusOneQuorum(ValidatorSet):
    """A validator set whose quorum is f+1."""

    @property
    def quorum(self) -> int:
        return self.f + 1


class CommitsOnFPlusOne(Replica):
    """Counts f+1 prepares and commits as a quorum."""

    def _get_validators(self, height: int) -> ValidatorSet:
        return FPlusOneQuorum(super()._get_validators(height).validators)


class SkipsNewViewCheck(Replica):
    """Accepts whatever a NEW-VIEW proposes, without checking it against the prepared certificates, and
    prepares it whatever it prepared before (the lock is the second line of defence against the same lie)."""

    def is_valid_reproposal(self, message: NewView, plan: NewViewPlan) -> bool:
        return True

    def _respects_lock(self, pre_prepare: PrePrepare) -> bool:
        return True


class IgnoresLocks(Replica):
    """Prepares any block its view's primary proposes, whatever it prepared at that height before."""

    def _respects_lock(self, pre_prepare: PrePrepare) -> bool:
        return True


EQUIVOCATING_PRIMARY = Faults(byzantine=(("node-0", "equivocate"),), txs=6)

STAGED_NEW_VIEW_ATTACK = Faults(
    lose=tuple(Lose("Commit", view=0, receiver=v) for v in ("node-1", "node-2", "node-3")),
    byzantine=(("node-1", "fresh_new_view"),),
    txs=6,
)
"""View-0 commits reach only node-0, so only it decides; node-1 then leads view 1 and ignores the prepared block."""


def _is_caught(factory: type[Replica], faults: Faults) -> bool:
    """Does some seed make the simulator report a safety violation?"""
    return any(not Simulator(4, seed, faults, replica_factory=factory).run().is_safe for seed in SEEDS)


def _assert_correct_replica_passes(faults: Faults) -> None:
    for seed in range(8):
        outcome = Simulator(4, seed, faults).run()
        assert outcome.violations == [] and outcome.is_live, f"seed {seed}: {outcome}"


def test_committing_on_f_plus_one_votes_is_caught():
    assert _is_caught(CommitsOnFPlusOne, EQUIVOCATING_PRIMARY)
    _assert_correct_replica_passes(EQUIVOCATING_PRIMARY)


def test_skipping_the_new_view_check_is_caught():
    assert _is_caught(SkipsNewViewCheck, STAGED_NEW_VIEW_ATTACK)
    _assert_correct_replica_passes(STAGED_NEW_VIEW_ATTACK)
