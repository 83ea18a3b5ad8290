"""The simulated network itself: adversaries one by one, partition shapes, Twins, slow sync, replays.

Every run asserts safety (no two honest endpoints commit different blocks at
one height, every block certified, no tx twice, every replica able to
restart) and liveness (every acknowledged tx committed by every honest
endpoint once the network is fair). A failure names its seed;
`Simulator(n, seed, faults).run()` replays it exactly. The random search over
all faults together is `test_schedule_search.py`.
"""

from __future__ import annotations

import pytest

from node.censorship import STUCK_AFTER_BLOCKS
from tests.sim.byzantine import BEHAVIOURS, is_censored
from tests.sim.network import SHAPES, bridge, isolate, one_way, ring, split
from tests.sim.scenario import (
    STAGED,
    crash_now,
    crash_sync_source,
    heal,
    partition,
    run_staged,
    submit,
    until,
    until_decided,
    until_syncing,
    wait,
)
from tests.sim.simulator import CrashPoint, Faults, Outcome, Simulator


def assert_safe_and_live(outcome: Outcome) -> None:
    assert outcome.violations == [], f"seed {outcome.seed}: {outcome.violations}"
    assert outcome.is_live, f"seed {outcome.seed}: stalled at heights {outcome.heights} at t={outcome.end_ms} ms"


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_every_byzantine_behaviour_as_primary(behaviour):
    faults = Faults(byzantine=(("node-0", behaviour),), txs=6, fair_after_ms=500)
    for seed in range(3):
        assert_safe_and_live(Simulator(4, seed, faults).run())


def test_seven_validators_with_two_liars_and_crashes():
    faults = Faults(drop=0.1, crashes=2, partitions=1, byzantine=(("node-0", "equivocate"), ("node-4", "forge")), txs=6)
    for seed in range(2):
        assert_safe_and_live(Simulator(7, seed, faults).run())


PARTITIONS = {
    "split": lambda endpoints: split([endpoints[:2], endpoints[2:]]),
    "bridge": lambda endpoints: bridge(endpoints[:1], endpoints[1], endpoints[2:]),
    "ring": ring,
    "one_way": lambda endpoints: one_way(endpoints[0], endpoints[1]),
    "isolate": lambda endpoints: isolate(endpoints[0], endpoints),
}
"""One partition of each shape over the endpoints in their order."""


@pytest.mark.parametrize("shape", SHAPES)
def test_the_chain_survives_a_partition_of_every_shape(shape):
    """Txs submitted during the partition reach every node (lost tx gossip is finding 11's test)."""
    faults = Faults(txs=0, fair_after_ms=0, gossip_loss=False)
    for seed in range(3):
        steps = (submit(3), partition(PARTITIONS[shape]), submit(3), wait(3000), heal())
        assert_safe_and_live(run_staged(4, *steps, seed=seed, faults=faults))


@pytest.mark.parametrize("twin", ["node-0", "node-2"])
def test_twins_on_both_sides_of_a_partition_fork_no_honest_replica(twin):
    """The validator `twin` runs twice with one key, each twin with a different half; then the halves swap."""
    faults = Faults(txs=0, fair_after_ms=0, twins=(twin,))
    other = twin + "~twin"
    honest = [vid for vid in ("node-0", "node-1", "node-2", "node-3") if vid != twin]
    for seed in range(4):
        assert_safe_and_live(
            run_staged(
                4,
                partition(lambda _: split([[twin, *honest[:2]], [other, honest[2]]])),
                submit(2, to=twin),
                submit(2, to=other),
                wait(2000),
                partition(lambda _: split([[twin, honest[0]], [other, *honest[1:]]])),
                submit(2, to=other),
                wait(2000),
                heal(),
                seed=seed,
                faults=faults,
            )
        )


def test_a_replica_far_behind_catches_up_through_slow_failing_sync():
    """Node 3 misses many blocks; its sync takes five message delays a batch, and the peer it syncs from crashes
    meanwhile: it retries from another at its next look."""
    faults = Faults(txs=0, fair_after_ms=0, sync_delays=5)
    for seed in range(3):
        outcome = run_staged(
            4,
            partition(lambda endpoints: isolate("node-3", endpoints)),
            submit(30, to="node-0"),
            until_decided("node-0", 5),
            heal(),
            until_syncing("node-3"),
            crash_sync_source("node-3", down_ms=1500),
            seed=seed,
            faults=faults,
        )
        assert_safe_and_live(outcome)


def test_same_seed_same_run():
    faults = Faults(drop=0.2, duplicate=0.2, crashes=1, partitions=2, txs=5, byzantine=(("node-1", "fuzz"),))
    first, second = Simulator(4, 42, faults).run(), Simulator(4, 42, faults).run()
    assert (first.end_ms, first.heights, first.max_log_size) == (second.end_ms, second.heights, second.max_log_size)


def test_a_staged_run_with_nothing_staged_commits_every_tx():
    assert_safe_and_live(run_staged(4, submit(5), faults=STAGED))


def test_a_node_syncing_past_a_peer_that_lies_about_its_chain_catches_up_and_votes():
    """Node 0 votes honestly but claims a head far ahead and serves nothing, forged certificates or blocks that do
    not follow; node 3, down while the others commit, must sync from the honest peers (the liar marked bad as
    `p2p.sync` marks it) and vote again."""
    faults = Faults(txs=0, fair_after_ms=0, byzantine=(("node-0", "lying_sync"),))
    for seed in range(3):
        sim = Simulator(4, seed, faults)
        sim.boot()
        for step in (submit(2), until_decided("node-1", 1), crash_now("node-3", 3000), submit(6), wait(2000)):
            step(sim)
        outcome = sim.run()
        assert_safe_and_live(outcome)
        assert "node-0" in sim.nodes["node-3"].bad_peers, f"seed {seed}: node 3 never tried the liar"


def test_a_failed_consensus_log_write_halts_the_replica_until_its_restart_and_it_votes_again():
    """Node 2's log fails while it writes its PREPARE at height 1 (the record lost): as the driver does, nothing
    after the failed write is sent and the replica is fed nothing; after its operator's restart it votes again."""
    for seed in range(3):
        sim = Simulator(4, seed, Faults(txs=0, fair_after_ms=0))
        sim.boot()
        sim.crash_points["node-2"] = [CrashPoint("node-2", "persist prepare", 1, torn="lost", write_error=True)]
        for step in (submit(1), until("node 2 halts", lambda sim: sim.nodes["node-2"].halted)):
            step(sim)
        assert ("node-2", "Prepare", 0, 1) not in sim.signed, f"seed {seed}: node 2 sent what it did not persist"
        assert_safe_and_live(sim.run())


def run_stream(behaviour: str, seed: int) -> Simulator:
    """Node 0 leads view 0 as `behaviour`; clients send a tx every 50 ms, so blocks keep committing (each resets
    the view timer), until the first two txs a censor leaves out are committed by node 1 (or 20 s pass)."""
    sim = Simulator(4, seed, Faults(txs=0, fair_after_ms=0, byzantine=(("node-0", behaviour),)))
    sim.boot()
    while sum(is_censored(tx_id) for tx_id in sim.submitted) < 2:
        sim.submit("node-1")
    first = set(sim.submitted)
    for _ in range(400):
        sim.submit("node-2")
        sim.advance(lambda: False, sim.now + 50)
        if first <= sim.nodes["node-1"].app.committed_ids:
            break
    return sim


@pytest.mark.parametrize("seed", range(3))
def test_a_primary_that_censors_txs_while_it_commits_others_is_replaced_by_the_censorship_watch(seed):
    """Its view timer never fires; the others forward the oldest tx to it after 16 blocks with room, suspect it
    after 16 more, and the next view commits the censored txs."""
    sim = run_stream("censor", seed)
    replica = sim.nodes["node-1"].replica
    assert replica is not None and replica.view >= 1, f"seed {seed}: still in view 0 at t={sim.now} ms"
    assert sim.nodes["node-1"].app.head()[0] <= 3 * STUCK_AFTER_BLOCKS, f"seed {seed}: not by the watch"
    assert sim.violations == []


@pytest.mark.parametrize("seed", range(3))
def test_an_honest_primary_under_a_steady_stream_is_never_suspected(seed):
    sim = run_stream("honest", seed)
    views = {name: node.replica.view for name, node in sim.nodes.items() if node.replica is not None}
    assert set(views.values()) == {0}, f"seed {seed}: {views}"
    assert sim.violations == []
