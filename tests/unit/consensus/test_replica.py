"""Replica behaviour driven by hand: n=1, the 4-node normal case, view change, backoff, restart."""

from __future__ import annotations

import pytest

from consensus.actions import Broadcast, Decide, Persist, RequestSync, SetTimer
from consensus.errors import ConsensusLogCorrupted
from consensus.messages import Prepare, PrePrepare, Timeout, sign_message
from consensus.replica import VIEW_TIMER, Replica
from ledger.block import verify_certificate
from ledger.genesis import ConsensusParams
from tests.sim.app import MemoryApp
from tests.sim.cluster import Cluster


def test_single_validator_commits_as_soon_as_it_proposes():
    cluster = Cluster.make(1)
    replica = cluster.replicas["node-0"]
    actions = replica.on_batch(cluster.txs(3))
    decides = [a for a in actions if isinstance(a, Decide)]
    assert len(decides) == 1
    block, certificate = decides[0].block, decides[0].certificate
    assert [tx.payload["value"] for tx in block.txs] == [0, 1, 2]
    verify_certificate(certificate, cluster.network.genesis, block.hash(), 1)
    first_persist = next(i for i, a in enumerate(actions) if isinstance(a, Persist))
    first_broadcast = next(i for i, a in enumerate(actions) if isinstance(a, Broadcast))
    assert first_persist < first_broadcast
    assert replica.height == 1


def test_four_validators_agree_on_every_block():
    cluster = Cluster.make(4)
    for round_ in range(3):
        cluster.offer(cluster.txs(2 + round_))
    heads = {app.head() for app in cluster.apps.values()}
    assert len(heads) == 1 and heads.pop()[0] == 3
    for app in cluster.apps.values():
        for block, certificate in zip(app.blocks, app.certificates, strict=True):
            verify_certificate(certificate, cluster.network.genesis, block.hash(), block.height)
            assert len(certificate.signatures) >= 3


def test_idle_network_makes_no_blocks():
    cluster = Cluster.make(4)
    for vid, replica in cluster.replicas.items():
        cluster.perform(vid, replica.start())
    cluster.settle()
    assert all(app.head()[0] == 0 for app in cluster.apps.values())
    assert all(VIEW_TIMER not in timers for timers in cluster.timers.values())


def test_silent_primary_is_replaced_and_the_timeout_backs_off_then_resets():
    cluster = Cluster.make(4)
    cluster.muted.add("node-0")
    txs = cluster.txs(2)
    cluster.offer(txs)
    assert all(app.head()[0] == 0 for app in cluster.apps.values())
    base = cluster.network.genesis.consensus.view_timeout_ms
    assert cluster.timers["node-1"][VIEW_TIMER] == base
    cluster.time_out(["node-1", "node-2", "node-3"])
    assert {cluster.replicas[v].view for v in ("node-1", "node-2", "node-3")} == {1}
    assert cluster.replicas["node-2"].primary == "node-1"
    cluster.offer(txs)
    assert {cluster.apps[v].head()[0] for v in ("node-1", "node-2", "node-3")} == {1}
    assert cluster.apps["node-1"].blocks[0].header.proposer == "node-1"
    cluster.offer(cluster.txs(1))
    assert cluster.timers["node-2"][VIEW_TIMER] == base


def test_timeouts_double_while_views_fail():
    cluster = Cluster.make(7)
    cluster.muted |= {"node-0", "node-1"}
    alive = [f"node-{i}" for i in range(2, 7)]
    cluster.offer(cluster.txs(1))
    base = cluster.network.genesis.consensus.view_timeout_ms
    cluster.time_out(alive)
    assert {cluster.replicas[v].view for v in alive} == {1}
    assert {cluster.timers[v][VIEW_TIMER] for v in alive} == {base * 2}
    cluster.time_out(alive)
    assert {cluster.replicas[v].view for v in alive} == {2}
    assert {cluster.apps[v].head()[0] for v in alive} == {1}
    assert cluster.apps["node-2"].blocks[0].header.proposer == "node-2"


def test_a_replica_alone_in_its_suspicion_keeps_voting_in_the_view():
    cluster = Cluster.make(4)
    replica = cluster.replicas["node-1"]
    replica.on_timeout(VIEW_TIMER)
    for _ in range(4):
        actions = replica.on_timeout(VIEW_TIMER)
        sent = [type(a.message).__name__ for a in actions if isinstance(a, Broadcast)]
        assert sent == ["Timeout"]
        assert replica.view == 0 and not replica.is_view_changing
    cluster.settle()
    cluster.offer(cluster.txs(1))
    assert {app.head()[0] for app in cluster.apps.values()} == {1}
    assert replica.last_voted_height == 1


def test_a_replica_alone_in_a_view_change_asks_again_instead_of_moving_on():
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    replica = cluster.replicas["node-1"]
    replica.on_timeout(VIEW_TIMER)
    replica.on_timeout(VIEW_TIMER)
    wish = sign_message(Timeout(genesis.chain_id, 0, 1, "node-2"), keys["node-2"])
    replica.on_message("node-2", wish)
    assert replica.view == 1 and replica.is_view_changing
    views, delays = [], []
    for _ in range(4):
        actions = replica.on_timeout(VIEW_TIMER)
        views.append(replica.view)
        delays += [a.delay_ms for a in actions if isinstance(a, SetTimer) and a.name == VIEW_TIMER]
        resent = [a.message for a in actions if isinstance(a, Broadcast)]
        assert [type(m).__name__ for m in resent] == ["ViewChange"] and resent[0].view == 1
    base = cluster.network.genesis.consensus.view_timeout_ms
    assert views == [1, 1, 1, 1]
    assert delays == [base * 2] * 4
    cluster.queue.clear()
    cluster.time_out(["node-0", "node-2", "node-3"])
    assert {r.view for r in cluster.replicas.values()} == {1}
    assert not any(r.is_view_changing for r in cluster.replicas.values())


def test_a_lagging_replica_syncs_instead_of_suspecting_the_primary():
    cluster = Cluster.make(4)
    txs = cluster.txs(3)
    lagging = cluster.replicas.pop("node-3")
    cluster.offer(txs[:1])
    cluster.offer(txs[1:2])
    cluster.replicas["node-3"] = lagging
    cluster.offer(txs[2:])
    assert lagging.height == 0 and cluster.apps["node-0"].head()[0] == 3
    assert cluster.syncs == [("node-3", 2)]
    actions = lagging.on_timeout(VIEW_TIMER)
    assert lagging.view == 0 and not lagging.is_view_changing
    assert [a for a in actions if isinstance(a, RequestSync)] == [RequestSync(2)]
    assert [a.name for a in actions if isinstance(a, SetTimer)] == [VIEW_TIMER]


def test_restart_never_signs_a_conflicting_prepare():
    cluster = Cluster.make(4)
    genesis, keys = cluster.network.genesis, cluster.network.keys
    primary_app = MemoryApp(genesis, "node-0")
    txs = cluster.txs(2)
    first = primary_app.make_block(1, 0, txs[:1])
    second = primary_app.make_block(1, 0, txs[1:])
    backup = cluster.replicas["node-1"]
    actions = cluster.inject(
        "node-0", "node-1", sign_message(PrePrepare(genesis.chain_id, 0, 1, first, "node-0"), keys["node-0"])
    )
    cluster.perform("node-1", actions)
    prepares = [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, Prepare)]
    assert [p.block_hash for p in prepares] == [first.hash()]
    assert backup.height == 0

    cluster.boot("node-1")
    restarted = cluster.replicas["node-1"]
    assert restarted is not backup
    conflicting = sign_message(PrePrepare(genesis.chain_id, 0, 1, second, "node-0"), keys["node-0"])
    after = cluster.inject("node-0", "node-1", conflicting)
    signed = [a.message for a in after if isinstance(a, Broadcast) and isinstance(a.message, Prepare)]
    assert signed == []
    resent = restarted.start()
    assert [a.message.block_hash for a in resent if isinstance(a, Broadcast)] == [first.hash()]


def test_corrupt_records_are_refused_loudly():
    cluster = Cluster.make(1)
    cluster.offer(cluster.txs(1))
    records = cluster.records["node-0"]
    genesis, key, app = cluster.network.genesis, cluster.network.keys["node-0"], cluster.apps["node-0"]
    truncated = [*records[:-1], {"type": "signed", "message": records[0]["message"][:-3]}]
    with pytest.raises(ConsensusLogCorrupted):
        Replica(genesis, "node-0", key, app, truncated)
    with pytest.raises(ConsensusLogCorrupted):
        Replica(genesis, "node-0", key, app, [{"type": "mystery"}])


def test_checkpoints_become_stable_and_the_log_stays_flat():
    cluster = Cluster.make(4, ConsensusParams(checkpoint_interval=3, max_block_txs=2))
    sizes = []
    for round_ in range(24):
        cluster.offer(cluster.txs(1) if round_ % 2 else cluster.txs(2))
        sizes.append(max(r.log_size for r in cluster.replicas.values()))
    assert {app.head()[0] for app in cluster.apps.values()} == {24}
    assert {r.stable_height for r in cluster.replicas.values()} == {24}
    assert max(sizes[12:]) <= max(sizes[:12])


def test_lagging_replica_asks_for_sync():
    cluster = Cluster.make(4, ConsensusParams(checkpoint_interval=2))
    cluster.muted.add("node-3")
    isolated = cluster.replicas.pop("node-3")
    for _ in range(3):
        cluster.offer(cluster.txs(1))
    cluster.replicas["node-3"] = isolated
    cluster.muted.discard("node-3")
    cluster.offer(cluster.txs(1))
    assert ("node-3", 3) in cluster.syncs or ("node-3", 2) in cluster.syncs
    app = cluster.apps["node-3"]
    app.sync_from(cluster.apps["node-0"])
    cluster.perform("node-3", isolated.on_synced())
    assert isolated.height == cluster.apps["node-0"].head()[0]
