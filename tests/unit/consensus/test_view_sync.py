"""View synchronisation: a replica that missed a view change learns the live view from ordinary traffic.

The view tests stage, with the synchronous cluster, a replica that heard nothing (or not the NEW-VIEW) while the
others moved to view 1, then let it hear the traffic of view 1 and check that it joins the view and votes there;
f validators alone, however loud, move it nowhere. Then: `is_voting` means a recent vote, a backup restarted
inside a view prepares the block the view re-proposes, and a primary cannot make a replica hold blocks far ahead.
"""

from __future__ import annotations

from consensus.actions import Broadcast
from consensus.messages import (
    Commit,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Timeout,
    ViewChange,
    encode_message,
    sign_message,
)
from consensus.replica import PROPOSALS_AHEAD, RECENT_VOTE_HEIGHTS, VIEW_TIMER
from tests.sim.cluster import Cluster

DEAF = "node-3"


def make_view_1_without(deaf: str) -> tuple[Cluster, list[tuple[str, str, Message]]]:
    """Nodes 0-2 leave view 0 (its proposal lost) and start view 1, whose proposal is lost too, while `deaf`
    hears nothing and says nothing; returns the cluster and the lost messages (sender, receiver, message)."""
    cluster = Cluster.make(4)
    lost: list[tuple[str, str, Message]] = []

    def drop(sender: str, to: str, message: Message) -> bool:
        if deaf in (sender, to) or isinstance(message, PrePrepare):
            lost.append((sender, to, message))
            return True
        return False

    cluster.drop = drop
    cluster.offer(cluster.txs(1))
    cluster.time_out(["node-0", "node-1", "node-2"])
    assert {cluster.replicas[v].view for v in ("node-0", "node-1", "node-2")} == {1}
    assert {app.head()[0] for app in cluster.apps.values()} == {0}
    cluster.drop = lambda sender, to, message: False
    return cluster, lost


def find(lost: list[tuple[str, str, Message]], kind: type, view: int, sender: str) -> Message:
    return next(m for _, _, m in lost if isinstance(m, kind) and m.view == view and m.sender == sender)


def sent(actions: list) -> list[Message]:
    return [a.message for a in actions if isinstance(a, Broadcast)]


def test_a_replica_that_sees_f_plus_1_validators_in_a_later_view_asks_for_it_and_votes_there():
    cluster, lost = make_view_1_without(DEAF)
    deaf = cluster.replicas[DEAF]
    assert deaf.view == 0
    pre_prepare = find(lost, PrePrepare, 1, "node-1")
    new_view = find(lost, NewView, 1, "node-1")
    genesis, keys = cluster.network.genesis, cluster.network.keys
    prepare = sign_message(Prepare(genesis.chain_id, 1, 1, pre_prepare.block.hash(), "node-0"), keys["node-0"])

    assert deaf.on_message("node-1", pre_prepare) == []
    asked = [m for m in sent(deaf.on_message("node-0", prepare)) if isinstance(m, ViewChange)]
    assert [m.view for m in asked] == [1] and deaf.is_view_changing

    actions = deaf.on_message("node-1", new_view)
    assert deaf.view == 1 and not deaf.is_view_changing and deaf.is_voting
    votes = [m for m in sent(actions) if isinstance(m, Prepare)]
    assert [(v.view, v.block_hash) for v in votes] == [(1, pre_prepare.block.hash())]


def test_a_lagging_replica_is_shown_the_new_view_and_the_block_commits_with_its_vote():
    """Node 2 is down and node 3 missed view 1: its proposal reaches nodes 0 and 3, and node 3 must be shown the
    NEW-VIEW and prepare at once; the primary's re-sent part (what node 3 lost) then commits the block."""
    cluster, lost = make_view_1_without(DEAF)
    cluster.muted.add("node-2")
    pre_prepare = find(lost, PrePrepare, 1, "node-1")
    for to in ("node-0", DEAF):
        cluster.queue.append(("node-1", to, encode_message(pre_prepare)))
    cluster.settle()
    assert cluster.replicas[DEAF].view == 1 and cluster.replicas[DEAF].last_voted_height == 1
    cluster.fire(VIEW_TIMER, ["node-1"])
    assert {cluster.apps[v].head()[0] for v in ("node-0", "node-1", DEAF)} == {1}
    certificate = cluster.apps["node-1"].head_certificate()
    assert certificate is not None and certificate.view == 1
    assert DEAF in {sender for sender, _ in certificate.signatures}


def test_f_validators_in_a_later_view_move_no_one():
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    replica = cluster.replicas["node-3"]
    liar = "node-1"
    for view in (5, 9, 40):
        prepare = sign_message(Prepare(genesis.chain_id, view, 1, b"\x01" * 32, liar), keys[liar])
        assert sent(replica.on_message(liar, prepare)) == []
    assert replica.view == 0 and not replica.is_view_changing


def test_a_replica_that_missed_the_new_view_joins_the_view_its_next_block_is_certified_in():
    """Node 3 asked for view 1 with the others but lost the NEW-VIEW; it decides block 1 from the commits of
    view 1, and must then vote in view 1: with node 2 down, block 2 commits only with node 3."""
    cluster = Cluster.make(4)
    cluster.drop = lambda sender, to, message: (
        (isinstance(message, PrePrepare) and message.view == 0) or (to == DEAF and isinstance(message, NewView))
    )
    cluster.offer(cluster.txs(1))
    cluster.time_out(["node-0", "node-1", "node-2", DEAF])
    deaf = cluster.replicas[DEAF]
    assert cluster.apps[DEAF].head()[0] == 1 and cluster.apps[DEAF].head_certificate().view == 1
    assert deaf.view == 1 and not deaf.is_view_changing
    cluster.muted.add("node-2")
    cluster.offer(cluster.txs(2)[1:])
    assert cluster.apps["node-1"].head()[0] == 2
    signers = {sender for sender, _ in cluster.apps["node-1"].head_certificate().signatures}
    assert DEAF in signers


def test_a_replica_that_lost_the_new_view_of_a_live_view_asks_again_instead_of_moving_on():
    """Node 3 sent its view change for view 1 and lost the NEW-VIEW; nodes 0 and 1 are seen voting in view 1.
    When its timer fires it must re-send its view change (and be shown the NEW-VIEW), not ask for view 2 alone."""
    cluster = Cluster.make(4)
    cluster.drop = lambda sender, to, message: (
        (isinstance(message, PrePrepare) and message.view <= 1) or (to == DEAF and isinstance(message, NewView))
    )
    cluster.offer(cluster.txs(1))
    cluster.time_out(["node-0", "node-1", "node-2", DEAF])
    deaf = cluster.replicas[DEAF]
    assert deaf.view == 1 and deaf.is_view_changing
    cluster.drop = lambda sender, to, message: False
    genesis, keys = cluster.network.genesis, cluster.network.keys
    for sender in ("node-0", "node-2"):
        prepare = sign_message(Prepare(genesis.chain_id, 1, 1, b"\x02" * 32, sender), keys[sender])
        cluster.perform(DEAF, deaf.on_message(sender, prepare))
    actions = deaf.on_timeout(VIEW_TIMER)
    assert deaf.view == 1 and [m.view for m in sent(actions) if isinstance(m, ViewChange)] == [1]
    cluster.perform(DEAF, actions)
    cluster.settle()
    cluster.fire(VIEW_TIMER, ["node-0", DEAF])
    assert deaf.view == 1 and not deaf.is_view_changing and deaf.is_voting


def test_a_replica_that_only_follows_by_sync_is_not_voting_until_it_votes_again():
    cluster = Cluster.make(4)
    follower = cluster.replicas.pop(DEAF)
    for _ in range(RECENT_VOTE_HEIGHTS + 1):
        cluster.offer(cluster.txs(1))
    leader = cluster.apps["node-0"]
    for block, certificate in zip(leader.blocks, leader.certificates, strict=True):
        cluster.apps[DEAF].apply(block, certificate)
    follower.on_synced()
    cluster.replicas[DEAF] = follower
    assert follower.height == RECENT_VOTE_HEIGHTS + 1 and follower.last_voted_height == 0
    assert not follower.is_voting
    cluster.offer(cluster.txs(1))
    assert follower.last_voted_height == RECENT_VOTE_HEIGHTS + 2 and follower.is_voting


def test_a_restarted_replica_reports_the_last_vote_its_log_holds():
    cluster = Cluster.make(4)
    cluster.offer(cluster.txs(1))
    cluster.boot(DEAF)
    assert cluster.replicas[DEAF].last_voted_height == 1 and cluster.replicas[DEAF].is_voting


def test_a_backup_restarted_inside_a_view_prepares_the_block_that_view_re_proposes():
    """Block 1 is prepared in view 0 and not committed; view 1 re-proposes it. Node 3 enters view 1 and crashes
    before its PREPARE is written; once restarted, the primary's re-sent proposal must be enough for it to prepare
    the block: with node 2 down, block 1 commits only with node 3."""
    cluster = Cluster.make(4)
    cluster.drop = lambda sender, to, message: (
        isinstance(message, Commit) or (isinstance(message, Prepare) and message.view == 1)
    )
    cluster.offer(cluster.txs(1))
    cluster.time_out()
    assert {r.view for r in cluster.replicas.values()} == {1} and cluster.apps["node-0"].head()[0] == 0
    records = cluster.records[DEAF]
    entered = max(i for i, record in enumerate(records) if record["type"] == "view")
    cluster.records[DEAF] = records[: entered + 1]
    cluster.boot(DEAF)
    assert cluster.replicas[DEAF].view == 1
    cluster.drop = lambda sender, to, message: False
    cluster.muted.add("node-2")
    cluster.queue.clear()
    cluster.fire(VIEW_TIMER, ["node-0", "node-1"])
    assert {cluster.apps[v].head()[0] for v in ("node-0", "node-1", DEAF)} == {1}
    signers = {sender for sender, _ in cluster.apps["node-1"].head_certificate().signatures}
    assert cluster.apps["node-1"].head_certificate().view == 1 and DEAF in signers


def test_a_primary_cannot_make_a_replica_hold_blocks_far_ahead_and_a_view_change_drops_those_held():
    cluster = Cluster.make(4)
    genesis, key = cluster.network.genesis, cluster.network.keys["node-0"]
    replica = cluster.replicas["node-3"]
    app = cluster.apps["node-0"]
    batch = cluster.txs(1)
    for height in range(2, 40):
        block = app.build_block(height, 0, batch)
        replica.on_message("node-0", sign_message(PrePrepare(genesis.chain_id, 0, height, block, "node-0"), key))
    assert replica.log_size == PROPOSALS_AHEAD
    wishes = [sign_message(Timeout(genesis.chain_id, 0, 1, v), cluster.network.keys[v]) for v in ("node-1", "node-2")]
    for wish in wishes:
        replica.on_message(wish.sender, wish)
    assert replica.view == 1 and replica.is_view_changing
    # Left: the two TIMEOUTs, and its own VIEW-CHANGE (as signed, and as counted for view 1).
    assert replica.log_size == 2 + 2
