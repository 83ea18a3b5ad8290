"""Validator set changes in the replicated consensus: no fork across a change, and commits go on with the new set.

Four validators commit blocks; a `kv.validators` tx changes the set, which certifies the blocks from the
height after the next checkpoint boundary on. Every block's certificate must hold a quorum of the set in
force at its height, every replica must hold the same chain, and the new set must keep committing, through
a view change at the boundary too.
"""

from __future__ import annotations

import pytest

from consensus.messages import Commit, sign_message
from ledger.block import verify_certificate
from ledger.genesis import ConsensusParams, Identity
from ledger.keys import PrivateKey
from ledger.membership import ValidatorSet, compute_epoch_start
from tests.helpers.builders import make_network
from tests.sim.app import SET_KIND, VALIDATORS_KIND, MemoryApp
from tests.sim.cluster import Cluster
from tests.sim.simulator import Faults, SetChange, Simulator

INTERVAL = 4
"""Checkpoint interval: a change approved in block h takes effect at `compute_epoch_start(h, 4)`."""

OLD = ["node-0", "node-1", "node-2", "node-3"]


def make_cluster(
    candidates: dict[str, Identity], keys: dict[str, PrivateKey], joining: tuple[str, ...] = ()
) -> Cluster:
    """Four genesis validators, plus replicas for `joining` (followers until a set holds them)."""
    cluster = Cluster(make_network(validators=4, consensus=ConsensusParams(checkpoint_interval=INTERVAL)))
    cluster.network.keys.update(keys)
    for vid in [*OLD, *joining]:
        cluster.apps[vid] = MemoryApp(cluster.network.genesis, vid, candidates=dict(candidates))
        cluster.records[vid] = []
        cluster.timers[vid] = {}
        cluster.boot(vid)
    return cluster


def make_candidate(ident: str, label: str) -> tuple[Identity, PrivateKey]:
    """A validator identity `ident` with a key of its own, to be named `label` in a `kv.validators` tx."""
    key = PrivateKey.from_seed_text(f"sim/{label}")
    return Identity(ident, "org-0", key.public, frozenset({"validator"})), key


def commit_block(cluster: Cluster, serial: list[int]) -> None:
    """Offer one fresh tx to every replica and deliver everything (a block commits if the set can)."""
    serial[0] += 1
    cluster.offer([cluster.network.tx("channel-1", SET_KIND, {"key": f"k{serial[0]}", "value": serial[0]})])


def change_set(cluster: Cluster, ids: list[str]) -> int:
    """Commit a block changing the set to `ids`; the height at which it takes effect."""
    cluster.offer([cluster.network.tx("channel-1", VALIDATORS_KIND, {"ids": ids})])
    return compute_epoch_start(cluster.apps["node-1"].head()[0], INTERVAL)


def assert_one_chain(cluster: Cluster, vids: list[str]) -> None:
    """Every replica holds a prefix of one chain, each block certified by the set of its height."""
    longest = max((cluster.apps[v] for v in vids), key=lambda app: len(app.blocks))
    for vid in vids:
        app = cluster.apps[vid]
        assert [b.hash() for b in app.blocks] == [b.hash() for b in longest.blocks[: len(app.blocks)]], vid
    for block, certificate in zip(longest.blocks, longest.certificates, strict=True):
        validators = longest.validators(block.height)
        verify_certificate(certificate, cluster.network.genesis, block.hash(), block.height, validators)


def signers(cluster: Cluster, height: int) -> set[str]:
    return {vid for vid, _ in cluster.apps["node-1"].certificates[height - 1].signatures}


def test_an_added_validator_votes_from_the_boundary_and_the_quorum_grows() -> None:
    newcomer, key = make_candidate("node-4", "node-4")
    cluster = make_cluster({"node-4": newcomer}, {"node-4": key}, joining=("node-4",))
    serial = [0]
    start = change_set(cluster, [*OLD, "node-4"])
    assert start == INTERVAL + 1
    while cluster.apps["node-1"].head()[0] < start + 2 * INTERVAL:
        commit_block(cluster, serial)
    assert_one_chain(cluster, [*OLD, "node-4"])
    app = cluster.apps["node-4"]
    assert len(app.blocks) == start + 2 * INTERVAL  # it followed the commits before it could vote
    new_set = app.validators(start)
    assert (new_set.n, new_set.quorum) == (5, 4)
    assert app.blocks[start - 2].header.validators_hash == new_set.hash()
    assert all(not b.header.validators_hash for i, b in enumerate(app.blocks) if i != start - 2)
    assert all(signers(cluster, h) <= set(OLD) for h in range(1, start))
    assert all(len(signers(cluster, h)) >= 4 for h in range(start, start + 2 * INTERVAL))
    assert cluster.replicas["node-4"].last_voted_height >= start
    assert cluster.replicas["node-4"].last_voted_height < start + 2 * INTERVAL + 1
    # One of five may now fail and the others still commit with 4 of 5.
    cluster.muted.add("node-3")
    height = app.head()[0]
    commit_block(cluster, serial)
    assert app.head()[0] == height + 1
    assert_one_chain(cluster, [*OLD, "node-4"])


def test_a_removed_primary_stops_voting_and_the_rest_go_on() -> None:
    cluster = make_cluster({}, {})
    serial = [0]
    start = change_set(cluster, ["node-1", "node-2", "node-3"])
    while cluster.apps["node-1"].head()[0] < start + INTERVAL:
        commit_block(cluster, serial)
    assert_one_chain(cluster, OLD)
    assert cluster.replicas["node-0"].last_voted_height < start
    assert not cluster.replicas["node-0"].is_member
    assert cluster.replicas["node-1"].primary == "node-1"
    assert all("node-0" not in signers(cluster, h) for h in range(start, start + INTERVAL))


def test_a_view_change_at_the_boundary_is_decided_by_the_new_set() -> None:
    newcomer, key = make_candidate("node-4", "node-4")
    cluster = make_cluster({"node-4": newcomer}, {"node-4": key}, joining=("node-4",))
    serial = [0]
    start = change_set(cluster, ["node-4", "node-1", "node-2", "node-3"])
    while cluster.apps["node-1"].head()[0] < start - 1:
        commit_block(cluster, serial)
    # At the boundary the new set's primary of view 0 (node-4) is silent: the new set must change view.
    cluster.muted.add("node-4")
    commit_block(cluster, serial)
    assert cluster.apps["node-1"].head()[0] == start - 1
    cluster.time_out()
    live = ["node-1", "node-2", "node-3"]
    assert {cluster.replicas[v].view for v in live} == {1}
    assert cluster.apps["node-1"].head()[0] == start
    commit_block(cluster, serial)
    assert cluster.apps["node-1"].head()[0] == start + 1
    assert_one_chain(cluster, [*live, "node-0"])
    assert cluster.replicas["node-0"].last_voted_height < start


def test_a_rotated_key_votes_from_the_boundary_after_a_restart() -> None:
    rotated, key = make_candidate("node-2", "node-2-new")
    cluster = make_cluster({"node-2-new": rotated}, {})
    serial = [0]
    start = change_set(cluster, ["node-0", "node-1", "node-2-new", "node-3"])
    while cluster.apps["node-1"].head()[0] < start - 1:
        commit_block(cluster, serial)
    cluster.network.keys["node-2"] = key
    cluster.boot("node-2")
    assert ValidatorSet((rotated,)).keys == {"node-2": rotated.public_key}
    while cluster.apps["node-1"].head()[0] < start + INTERVAL:
        commit_block(cluster, serial)
    assert_one_chain(cluster, OLD)
    assert cluster.replicas["node-2"].last_voted_height >= start


def test_votes_held_for_a_height_whose_set_a_later_block_changed_are_dropped() -> None:
    cluster = make_cluster({}, {})
    cluster.drop = lambda sender, to, message: to == "node-1"  # node-1 stays at genesis, the others go on
    serial = [0]
    start = change_set(cluster, ["node-1", "node-2", "node-3"])
    lagging = cluster.replicas["node-1"]
    vote = Commit(cluster.network.genesis.chain_id, 0, start, bytes(32), "node-0")
    held = lagging.log_size
    # Checked against the set node-1 knows (genesis's), node-0's vote for `start` is held...
    cluster.perform("node-1", lagging.on_message("node-0", sign_message(vote, cluster.network.keys["node-0"])))
    assert lagging.log_size == held + 1
    while cluster.apps["node-2"].head()[0] < start - 1:
        commit_block(cluster, serial)
    cluster.apps["node-1"].sync_from(cluster.apps["node-2"])
    cluster.perform("node-1", lagging.on_synced())
    # ...until node-1 applies the block that removed node-0 from that height's set: then it is dropped,
    assert lagging.log_size == 0
    # and a new one is refused.
    cluster.perform("node-1", lagging.on_message("node-0", sign_message(vote, cluster.network.keys["node-0"])))
    assert lagging.log_size == 0


CHANGES = {
    "add": SetChange(("node-0", "node-1", "node-2", "node-3", "node-4"), ("node-4",)),
    "remove": SetChange(("node-1", "node-2", "node-3")),
    "replace the first primary": SetChange(("node-4", "node-1", "node-2", "node-3"), ("node-4",)),
}
"""Set changes the seeded simulator runs under faults."""


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_set_change_under_drops_crashes_and_partitions_is_safe_and_live(name: str) -> None:
    change = CHANGES[name]
    faults = Faults(drop=0.1, duplicate=0.05, crashes=1, partitions=1, txs=30)
    for seed in range(4):
        simulator = Simulator(4, seed, faults, change=change)
        outcome = simulator.run()
        assert outcome.violations == [], f"seed {seed}: {outcome.violations}"
        assert outcome.is_live, f"seed {seed}: stalled at heights {outcome.heights} at t={outcome.end_ms} ms"
        app = simulator.nodes["node-1"].app
        assert app.validators(app.head()[0]).ids() == list(change.ids), f"seed {seed}: the change never took effect"
