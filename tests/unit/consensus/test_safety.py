"""Staged schedules for each hole that message loss, restarts, clocks or one lying validator opened.

Each test stages the precise schedule that once made honest replicas fork or stall, through the
replicas themselves (`Cluster` delivers in order, `drop` loses chosen messages, timers fire by hand),
and asserts the outcome that the protocol's invariant promises (docs/spec/consensus.md).
"""

from __future__ import annotations

import dataclasses

from consensus.actions import Broadcast, Decide, Send, SetTimer
from consensus.messages import (
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Timeout,
    ViewChange,
    decode_message,
    encode_message,
    sign_message,
)
from consensus.replica import RECHECK_TIMER, VIEW_TIMER, Replica
from ledger.block import Block
from ledger.genesis import ConsensusParams
from tests.sim.app import MemoryApp
from tests.sim.cluster import Cluster

BACKUPS = ["node-1", "node-2", "node-3"]


def commits_only_to(receivers: set[str]):
    """A `drop` rule: view-0 COMMITs reach only `receivers`."""
    return lambda sender, to, message: isinstance(message, Commit) and message.view == 0 and to not in receivers


def decided(cluster: Cluster, height: int) -> dict[str, bytes]:
    """Block hash each replica decided at `height`, for those that did."""
    return {vid: app.blocks[height - 1].hash() for vid, app in cluster.apps.items() if len(app.blocks) >= height}


def sync_everyone(cluster: Cluster, source: str) -> None:
    """Every replica behind `source` syncs its blocks and is told."""
    for vid, app in cluster.apps.items():
        if vid != source and app.head()[0] < cluster.apps[source].head()[0]:
            app.sync_from(cluster.apps[source])
            cluster.perform(vid, cluster.replicas[vid].on_synced())
    cluster.settle()


def test_a_new_primary_behind_the_certified_height_neither_proposes_nor_is_followed_below_it():
    """Finding 1: node-0 alone decides X at height 1; node-3's VIEW-CHANGE to the new primary is lost."""
    cluster = Cluster.make(4)
    cluster.drop = commits_only_to({"node-0"})
    x = cluster.txs(1)
    cluster.offer(x)
    assert decided(cluster, 1).keys() == {"node-0"}
    lost_commit = commits_only_to({"node-0"})

    def lost_commit_or_view_change(sender: str, to: str, message: Message) -> bool:
        is_lost_view_change = isinstance(message, ViewChange) and (sender, to) == ("node-3", "node-1")
        return is_lost_view_change or lost_commit(sender, to, message)

    cluster.drop = lost_commit_or_view_change
    cluster.time_out(BACKUPS)
    new_primary = cluster.replicas["node-1"]
    assert new_primary.view == 1 and not new_primary.is_view_changing
    assert new_primary.view_base == 1
    proposals = [r for r in cluster.records["node-1"] if r["type"] == "signed"]
    assert not any(
        isinstance(m, PrePrepare) and m.view == 1 and m.height <= 1
        for m in (decode_message(r["message"]) for r in proposals)
    )
    assert set(decided(cluster, 1).values()) == {cluster.apps["node-0"].blocks[0].hash()}
    sync_everyone(cluster, "node-0")
    cluster.offer(cluster.txs(2)[1:])
    heights = decided(cluster, 2)
    assert heights.keys() == set(cluster.apps) and len(set(heights.values())) == 1
    assert len(set(decided(cluster, 1).values())) == 1


def test_a_restarted_replica_still_reports_what_it_prepared():
    """Finding 2: three prepare, one decides, two restart; the next view must re-propose the prepared block."""
    cluster = Cluster.make(4)
    cluster.drop = commits_only_to({"node-0"})
    cluster.offer(cluster.txs(1))
    x = cluster.apps["node-0"].blocks[0].hash()
    cluster.drop = lambda sender, to, m: "node-0" in (sender, to) or isinstance(m, Commit)
    for vid in ("node-1", "node-2"):
        cluster.boot(vid)
    cluster.time_out(BACKUPS)
    new_view = cluster.replicas["node-1"]._new_view
    assert new_view is not None and new_view.view == 1
    view_changes = new_view.view_changes
    assert {vc.sender for vc in view_changes if vc.prepared is not None} >= {"node-1", "node-2"}
    assert all(vc.prepared.pre_prepare.block.hash() == x for vc in view_changes if vc.prepared is not None)
    cluster.drop = lambda sender, to, m: False
    cluster.fire(VIEW_TIMER, BACKUPS)
    assert set(decided(cluster, 1).values()) == {x}
    assert decided(cluster, 1).keys() == set(cluster.apps)


def test_a_head_reached_by_sync_is_proven_in_the_next_view_change():
    """Finding 2: a synced head's certificate comes from the store, so a view change can prove it."""
    cluster = Cluster.make(4)
    lagging = cluster.replicas.pop("node-3")
    cluster.offer(cluster.txs(2)[:1])
    cluster.replicas["node-3"] = lagging
    cluster.apps["node-3"].sync_from(cluster.apps["node-0"])
    cluster.perform("node-3", lagging.on_synced())
    rebooted = Replica(
        cluster.network.genesis,
        "node-3",
        cluster.network.keys["node-3"],
        cluster.apps["node-3"],
        cluster.records["node-3"],
    )
    cluster.replicas["node-3"] = rebooted
    for replica in (lagging, rebooted):
        actions = replica._start_view_change(replica.view + 1)
        (view_change,) = [a.message for a in actions if isinstance(a, Broadcast)]
        assert view_change.height == 1 and view_change.certificate is not None


def swap_body(block: Block, other: Block) -> Block:
    """The genuine header over another block's txs."""
    return dataclasses.replace(block, txs=other.txs)


def test_a_swapped_body_is_refused_and_the_genuine_block_still_prepared():
    """Finding 3: a header with a foreign body must not poison the verdict cached for the genuine block."""
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    txs = cluster.txs(2)
    maker = MemoryApp(genesis, "node-0")
    genuine, other = maker.make_block(1, 0, txs[:1]), maker.make_block(1, 0, txs[1:])
    liar = sign_message(PrePrepare(genesis.chain_id, 0, 1, swap_body(genuine, other), "node-0"), keys["node-0"])
    backup = cluster.replicas["node-1"]
    assert backup.on_message("node-0", liar) == []
    honest = sign_message(PrePrepare(genesis.chain_id, 0, 1, genuine, "node-0"), keys["node-0"])
    actions = backup.on_message("node-0", honest)
    assert [a.message.block_hash for a in actions if isinstance(a, Broadcast)] == [genuine.hash()]


def test_a_view_change_carrying_a_swapped_body_is_refused():
    """Finding 3: a prepared certificate whose block body was swapped under its header proves nothing."""
    cluster = Cluster.make(4)
    cluster.drop = commits_only_to(set())
    cluster.offer(cluster.txs(1))
    cluster.time_out(BACKUPS)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    honest = cluster.replicas["node-2"]._signed[("view_change", 1, 0)]
    assert isinstance(honest, ViewChange) and honest.prepared is not None
    forged_block = swap_body(honest.prepared.pre_prepare.block, MemoryApp(genesis, "x").make_block(1, 0, []))
    forged_pre_prepare = dataclasses.replace(honest.prepared.pre_prepare, block=forged_block)
    forged_prepared = dataclasses.replace(honest.prepared, pre_prepare=forged_pre_prepare)
    lie = sign_message(dataclasses.replace(honest, sender="node-3", prepared=forged_prepared), keys["node-3"])
    before = dict(cluster.replicas["node-0"]._view_changes)
    assert cluster.replicas["node-0"].on_message("node-3", lie) == []
    assert cluster.replicas["node-0"]._view_changes == before


def test_a_timestamp_refused_by_a_slow_clock_is_accepted_once_the_clock_catches_up():
    """Finding 4: a clock-dependent refusal is asked again, never cached for the height."""
    params = ConsensusParams(max_clock_skew_ms=1000)
    cluster = Cluster.make(4, params)
    now = {"ms": cluster.network.genesis.genesis_time_ms + 10_000}
    for vid, app in cluster.apps.items():
        app.clock = (lambda: now["ms"]) if vid == "node-0" else (lambda: now["ms"] - 1500)
    backup = cluster.replicas["node-1"]
    primary_actions = cluster.replicas["node-0"].on_batch(cluster.txs(1))
    (proposal,) = [a.message for a in primary_actions if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)]
    actions = backup.on_message("node-0", proposal)
    assert not any(isinstance(a, Broadcast) for a in actions)
    assert [a.delay_ms for a in actions if isinstance(a, SetTimer) and a.name == RECHECK_TIMER] == [500]
    now["ms"] += 600
    again = backup.on_timeout(RECHECK_TIMER)
    assert [type(a.message).__name__ for a in again if isinstance(a, Broadcast)] == ["Prepare"]


def test_a_frozen_block_time_is_not_prepared():
    """Finding 8: a primary that stamps a block far behind the replicas' clocks gets no prepare."""
    params = ConsensusParams(max_clock_skew_ms=1000)
    cluster = Cluster.make(4, params)
    now = cluster.network.genesis.genesis_time_ms + 60_000
    for vid, app in cluster.apps.items():
        app.clock = (lambda: now - 50_000) if vid == "node-0" else (lambda: now)
    actions = cluster.replicas["node-0"].on_batch(cluster.txs(1))
    (proposal,) = [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, PrePrepare)]
    for vid in BACKUPS:
        assert not any(isinstance(a, Broadcast) for a in cluster.replicas[vid].on_message("node-0", proposal))


def test_a_block_over_the_size_limits_is_neither_built_nor_prepared():
    """Findings 6 and 12: the primary cuts its batch to the limits; a backup refuses a proposal above them."""
    params = ConsensusParams(max_block_txs=50, max_block_bytes=2000)
    cluster = Cluster.make(4, params)
    txs = cluster.txs(40)
    cluster.offer(txs)
    sizes = [len(b.txs) for b in cluster.apps["node-1"].blocks]
    assert sizes and max(sizes) < 40
    for block in cluster.apps["node-1"].blocks:
        assert sum(len(tx.signing_bytes()) + len(tx.signature) for tx in block.txs) <= 2000
    genesis, keys = cluster.network.genesis, cluster.network.keys
    height = cluster.replicas["node-1"].height
    big = MemoryApp(genesis, "node-0")
    big.sync_from(cluster.apps["node-0"])
    oversized = big.make_block(height + 1, 0, cluster.txs(60)[40:])
    proposal = sign_message(PrePrepare(genesis.chain_id, 0, height + 1, oversized, "node-0"), keys["node-0"])
    assert cluster.replicas["node-1"].on_message("node-0", proposal) == []


def test_proposals_for_future_views_are_not_held():
    """Finding 7: a validator that is primary of many future views cannot make a replica store a block each."""
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    replica = cluster.replicas["node-2"]
    maker = MemoryApp(genesis, "node-1")
    before = replica.log_size
    for view in range(1, 200, 4):
        block = maker.make_block(1, view, cluster.txs(1))
        proposal = sign_message(PrePrepare(genesis.chain_id, view, 1, block, "node-1"), keys["node-1"])
        replica.on_message("node-1", proposal)
    assert replica.log_size == before


def test_a_stale_view_change_is_answered_with_the_new_view_once():
    """Finding 7: each peer stuck behind a view gets its NEW-VIEW once, however often it asks."""
    cluster = Cluster.make(4)
    cluster.offer(cluster.txs(1))
    cluster.time_out(BACKUPS)
    primary = cluster.replicas["node-1"]
    assert primary.view == 1 and not primary.is_view_changing
    stale = cluster.replicas["node-3"]._signed[("view_change", 1, 0)]
    answers = [primary.on_message("node-3", stale) for _ in range(5)]
    sent = [a for actions in answers for a in actions if isinstance(a, Send) and isinstance(a.message, NewView)]
    assert len(sent) == 1


def test_a_replica_that_lost_its_log_abstains_until_past_what_it_may_have_signed():
    """Finding 9: with its log gone, a validator votes at no height it may have voted at before."""
    cluster = Cluster.make(4)
    cluster.offer(cluster.txs(1))
    genesis, keys, app = cluster.network.genesis, cluster.network.keys, cluster.apps["node-3"]
    amnesiac = Replica(genesis, "node-3", keys["node-3"], app, [], mute_through=app.head()[0] + 1)
    cluster.replicas["node-3"] = amnesiac
    cluster.offer(cluster.txs(3)[1:2])
    assert amnesiac.height == 2 and amnesiac.last_voted_height == 0
    signed = [r for r in cluster.records["node-3"][-10:] if r["type"] == "signed"]
    assert all(decode_message(r["message"]).height != 2 for r in signed)
    cluster.offer(cluster.txs(3)[2:])
    assert amnesiac.height == 3 and amnesiac.last_voted_height == 3


def test_a_lone_replica_that_changed_view_returns_to_the_view_the_quorum_commits_in():
    """Finding 10: a replica stranded in a view change goes back and votes once it sees the quorum commit."""
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    stranded = cluster.replicas["node-3"]
    stranded.on_timeout(VIEW_TIMER)
    stranded.on_timeout(VIEW_TIMER)
    stranded.on_message("node-2", sign_message(Timeout(genesis.chain_id, 0, 1, "node-2"), keys["node-2"]))
    assert stranded.view == 1 and stranded.is_view_changing
    cluster.queue.clear()
    for round_ in range(3):
        cluster.offer(cluster.txs(4)[round_ : round_ + 1])
    assert stranded.height == 3 and stranded.view == 0 and not stranded.is_view_changing
    cluster.offer(cluster.txs(4)[3:])
    assert stranded.last_voted_height == 4
    assert stranded.view == cluster.replicas["node-0"].view


def test_a_lost_vote_is_resent_on_timeout_instead_of_costing_a_view_change():
    """Finding 12: the view timer's first expiry re-sends what each replica signed for the height."""
    cluster = Cluster.make(4)
    cluster.drop = lambda sender, to, message: isinstance(message, Commit)
    cluster.offer(cluster.txs(1))
    assert not decided(cluster, 1)
    cluster.drop = lambda sender, to, message: False
    cluster.fire(VIEW_TIMER)
    assert len(decided(cluster, 1)) == 4
    assert {r.view for r in cluster.replicas.values()} == {0}


def test_a_locked_replica_never_prepares_another_block_at_that_height():
    """The lock: a replica that prepared X refuses a NEW-VIEW's fresh block at X's height that no later
    prepared certificate justifies (what makes a stale VIEW-CHANGE harmless)."""
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    cluster.drop = commits_only_to(set())
    cluster.offer(cluster.txs(1))
    locked = cluster.replicas["node-2"]
    x = cluster.replicas["node-2"]._prepared
    assert x is not None
    view_changes = tuple(
        sign_message(ViewChange(genesis.chain_id, 1, 0, None, None, vid), keys[vid])
        for vid in ("node-0", "node-1", "node-3")
    )
    fresh = MemoryApp(genesis, "node-1").make_block(1, 1, cluster.txs(2)[1:])
    pre_prepare = sign_message(PrePrepare(genesis.chain_id, 1, 1, fresh, "node-1"), keys["node-1"])
    new_view = sign_message(NewView(genesis.chain_id, 1, view_changes, None, "node-1"), keys["node-1"])
    locked.on_message("node-1", new_view)
    assert locked.view == 1
    actions = locked.on_message("node-1", pre_prepare)
    assert not [a for a in actions if isinstance(a, Broadcast) and isinstance(a.message, Prepare)]
    assert not any(isinstance(a, Decide) for a in actions)
    assert encode_message(pre_prepare)


def test_a_re_proposed_block_is_prepared_however_old_its_timestamp_has_grown():
    """A prepared block the NEW-VIEW obliges was time-checked when first prepared; refusing it as old stalls."""
    params = ConsensusParams(max_clock_skew_ms=1000)
    cluster = Cluster.make(4, params)
    now = {"ms": cluster.network.genesis.genesis_time_ms + 10_000}
    for app in cluster.apps.values():
        app.clock = lambda: now["ms"]
    cluster.drop = commits_only_to(set())
    cluster.offer(cluster.txs(1))
    prepared = cluster.replicas["node-2"]._prepared
    assert prepared is not None
    now["ms"] += 60_000
    cluster.drop = lambda sender, to, message: isinstance(message, Commit) and message.view == 0
    cluster.time_out([*BACKUPS, "node-0"])
    assert {r.view for r in cluster.replicas.values()} == {1}
    assert set(decided(cluster, 1).values()) == {prepared.pre_prepare.block.hash()}
    assert decided(cluster, 1).keys() == set(cluster.apps)


def test_a_primary_that_never_includes_a_tx_is_replaced_once_f_plus_one_hold_it():
    """Finding 12: the view timer restarts at every commit, so censorship is suspected from the pool instead."""
    cluster = Cluster.make(4)
    censored, *others = cluster.txs(4)
    for round_, tx in enumerate(others):
        for vid, replica in cluster.replicas.items():
            pending = [tx] if vid == "node-0" else [censored, tx]
            cluster.perform(vid, replica.on_batch(pending))
        cluster.settle()
        assert cluster.replicas["node-1"].height == round_ + 1
    cluster.perform("node-1", cluster.replicas["node-1"].on_stuck_tx())
    cluster.settle()
    assert {r.view for r in cluster.replicas.values()} == {0}, "one node's stuck tx changes nothing alone"
    cluster.perform("node-2", cluster.replicas["node-2"].on_stuck_tx())
    cluster.settle()
    assert {r.view for r in cluster.replicas.values()} == {1}
    cluster.offer([censored])
    assert censored.id in {tx.id for tx in cluster.apps["node-3"].blocks[-1].txs}
