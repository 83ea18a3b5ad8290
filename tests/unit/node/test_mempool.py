"""The mempool: bounds overall and per signer, eviction by age and by window, and stuck txs (and only those)
offered to the peers again."""

from __future__ import annotations

import pytest

from ledger.block import WORK_BASE_BYTES, WORK_UNIT_BYTES
from ledger.idempotency import derive_keyed_nonce
from ledger.tx import MAX_TX_WINDOW, Tx, make_tx
from node.mempool import (
    MAX_RETRY_AFTER_S,
    RETRY_AFTER_S,
    Dropped,
    Mempool,
    MempoolFull,
    SignerOverQuota,
)
from tests.helpers.builders import make_network

NET = make_network(4)
AGE = 1000


def txs(count: int) -> list[Tx]:
    return [NET.tx("channel-1", "order.create", {"ref": f"M-{i}"}) for i in range(count)]


def test_on_an_idle_chain_waiting_txs_are_offered_again_oldest_first_once_per_period():
    pool = Mempool()
    early, late = txs(2)
    pool.add(early, 100, now_ms=0)
    pool.add(late, 100, now_ms=500)
    assert pool.take_unproposed(now_ms=999, room=0, age_ms=AGE, min_blocks=0, max_txs=10) == []
    assert pool.take_unproposed(now_ms=1000, room=0, age_ms=AGE, min_blocks=0, max_txs=10) == [early]
    assert pool.take_unproposed(now_ms=1400, room=0, age_ms=AGE, min_blocks=0, max_txs=10) == []
    assert pool.take_unproposed(now_ms=1500, room=0, age_ms=AGE, min_blocks=0, max_txs=10) == [late]
    assert pool.take_unproposed(now_ms=2000, room=0, age_ms=AGE, min_blocks=0, max_txs=10) == [early]


def test_a_long_pool_is_not_offered_again_until_blocks_with_room_pass_it_by():
    pool = Mempool()
    backlog = txs(5)
    for tx in backlog:
        pool.add(tx, 100, now_ms=0, room=10)
    assert pool.take_unproposed(now_ms=60_000, room=17, age_ms=AGE, min_blocks=8, max_txs=10) == []
    pool.remove([backlog[0].id])
    assert pool.take_unproposed(now_ms=60_000, room=18, age_ms=AGE, min_blocks=8, max_txs=3) == backlog[1:4]
    assert pool.take_unproposed(now_ms=60_000, room=18, age_ms=AGE, min_blocks=8, max_txs=3) == backlog[4:]


def test_one_signer_cannot_fill_the_pool():
    pool = Mempool(max_txs=8, signer_max_txs=3)
    flood = txs(4)
    for tx in flood[:3]:
        assert pool.add(tx, 100, now_ms=0)
    with pytest.raises(SignerOverQuota) as refused:
        pool.add(flood[3], 100, now_ms=0)
    assert (refused.value.http_status, refused.value.retry_after_s) == (429, RETRY_AFTER_S)
    other = NET.tx("operator-1", "sku.upsert", {"sku": "S"})
    assert pool.add(other, 100, now_ms=0), "another signer still finds room"
    pool.remove([flood[0].id])
    assert pool.add(flood[3], 100, now_ms=0), "a committed tx frees its signer's quota"
    assert pool.get_share("channel-1") == (3, 300) and pool.refused_over_quota == 1


def test_the_byte_quota_counts_too():
    pool = Mempool(max_bytes=10_000, signer_max_bytes=250)
    first, second = txs(2)
    pool.add(first, 200, now_ms=0)
    with pytest.raises(SignerOverQuota):
        pool.add(second, 100, now_ms=0)


def test_a_full_pool_refuses_with_retry_after_and_evicts_only_by_age():
    pool = Mempool(max_txs=2, signer_max_txs=3, ttl_ms=1000)
    old, young, late = txs(3)
    pool.add(old, 100, now_ms=0)
    pool.add(young, 100, now_ms=600)
    with pytest.raises(MempoolFull) as refused:
        pool.add(late, 100, now_ms=900)
    assert (refused.value.http_status, refused.value.retry_after_s) == (503, RETRY_AFTER_S)
    assert pool.add(late, 100, now_ms=1000), "the tx that waited ttl_ms made room"
    assert old.id not in pool and pool.evicted == 1
    pool.evict_stale(now_ms=1600)
    assert young.id not in pool and late.id in pool and pool.get_share("channel-1") == (1, 100)


def test_txs_whose_window_closed_are_dropped_after_a_block():
    pool = Mempool()
    NET.valid_until = 5
    short = txs(2)
    NET.valid_until = 9
    longer = txs(1)
    NET.valid_until = MAX_TX_WINDOW
    for tx in short + longer:
        pool.add(tx, 100, now_ms=0)
    pool.remove([short[0].id])
    pool.drop_expired(5)
    assert len(pool) == 2, "the committed tx is gone; the others may still be taken at height 5"
    pool.drop_expired(6)
    assert [tx.id in pool for tx in short + longer] == [False, False, True]
    assert pool.get_share("channel-1") == (1, 100) and pool.bytes == 100
    assert pool.dropped(short[1].id) == ("channel-1", Dropped.EXPIRED)
    assert pool.dropped(short[0].id) is None, "a committed tx is not reported as dropped"


def test_the_pool_holds_the_work_of_max_wait_at_the_commit_rate():
    pool = Mempool(max_txs=10_000, max_wait_ms=2_000, min_txs=5, signer_max_txs=10_000)
    assert pool.limit(now_ms=0) == 5, "an idle network, whose rate says nothing, still takes min_txs"
    for second in range(10):
        pool.on_committed(100, now_ms=second * 1000)
    assert pool.limit(now_ms=10_000) == 200, "900 txs in the 9 s since the window's first commit, times 2 s"
    batch = txs(201)
    for tx in batch[:200]:
        pool.add(tx, 10, now_ms=10_000)
    with pytest.raises(MempoolFull) as refused:
        pool.add(batch[200], 10, now_ms=10_000)
    assert refused.value.retry_after_s == 1, "one tx over the bound drains in well under a second"
    assert pool.limit(now_ms=25_000) == 5, "a rate older than the window no longer counts"
    with pytest.raises(MempoolFull) as refused:
        pool.add(batch[200], 10, now_ms=25_000)
    assert refused.value.retry_after_s == RETRY_AFTER_S, "with no rate the pool asks for its default wait"
    pool.on_committed(400, now_ms=30_000)
    assert pool.limit(now_ms=30_100) == 800, "after a pause, one block is a rate over a second, not the window"


def test_the_retry_after_grows_with_what_is_over_the_bound():
    pool = Mempool(max_txs=10_000, max_wait_ms=1_000, min_txs=1_000, signer_max_txs=10_000)
    *batch, late = txs(151)
    for tx in batch:
        pool.add(tx, 10, now_ms=0)
    pool.min_txs = 1
    pool.on_committed(10, now_ms=1)
    with pytest.raises(MempoolFull) as refused:
        pool.add(late, 10, now_ms=2)
    assert refused.value.retry_after_s == MAX_RETRY_AFTER_S, "141 over at 10 tx/s: never asked to wait > the cap"
    pool.max_wait_ms = 14_000
    with pytest.raises(MempoolFull) as refused:
        pool.add(late, 10, now_ms=2)
    assert refused.value.retry_after_s == 2, "11 txs over a bound of 140 at 10 tx/s"
    pool.max_wait_ms = 20_000
    assert pool.add(late, 10, now_ms=2), "a longer wait bound makes room"


def test_a_stale_tx_is_remembered_as_dropped_until_it_is_sent_again():
    pool = Mempool(ttl_ms=1000)
    (tx,) = txs(1)
    pool.add(tx, 100, now_ms=0)
    pool.evict_stale(now_ms=1000)
    assert tx.id not in pool and pool.dropped(tx.id) == ("channel-1", Dropped.STALE)
    assert pool.add(tx, 100, now_ms=1001)
    assert pool.dropped(tx.id) is None


def test_a_proposal_weighs_large_txs_as_several():
    pool = Mempool()
    small, large, after = txs(3)
    pool.add(small, 300, now_ms=0)
    pool.add(large, WORK_BASE_BYTES + 3 * WORK_UNIT_BYTES + 1, now_ms=0)
    pool.add(after, 300, now_ms=0)
    assert pool.batch(5) == [small, large], "1 + 4 units fill a block of 5"
    assert pool.batch(6) == [small, large, after]
    assert pool.batch(1) == [small]
    pool.remove([small.id])
    assert pool.batch(1) == [large], "a tx heavier than a whole block still goes alone"


def test_a_tx_gossiped_by_a_peer_is_held_whatever_the_work_bound():
    pool = Mempool(max_txs=3, max_wait_ms=1_000, min_txs=1, signer_max_txs=10)
    mine, gossiped, more, over = txs(4)
    pool.add(mine, 10, now_ms=0)
    with pytest.raises(MempoolFull):
        pool.add(gossiped, 10, now_ms=0)
    assert pool.add(gossiped, 10, now_ms=0, from_peer=True) and pool.add(more, 10, now_ms=0, from_peer=True)
    with pytest.raises(MempoolFull):
        pool.add(over, 10, now_ms=0, from_peer=True)
    assert len(pool) == 3, "max_txs still bounds what peers send"


def keyed_tx(key: str, valid_until: int) -> Tx:
    nonce = derive_keyed_nonce("channel-1", key)
    return make_tx(
        NET.genesis.chain_id,
        "order.create",
        "channel-1",
        nonce,
        {"ref": key},
        NET.keys["channel-1"],
        valid_until=valid_until,
    )


def test_the_waiting_tx_of_an_idempotency_key_is_found_until_it_leaves():
    pool = Mempool()
    first, second, plain = keyed_tx("k", 50), keyed_tx("k", 60), txs(1)[0]
    for tx in (first, second, plain):
        pool.add(tx, 100, now_ms=0)
    nonce = derive_keyed_nonce("channel-1", "k")
    assert pool.find_keyed("channel-1", nonce) == first
    assert pool.find_keyed("channel-1", plain.nonce) is None and pool.find_keyed("store-1", nonce) is None
    pool.remove([second.id])
    assert pool.find_keyed("channel-1", nonce) == first
    pool.drop(first.id, Dropped.STALE)
    assert pool.find_keyed("channel-1", nonce) is None


def test_the_work_bound_weighs_a_bulk_tx_as_the_units_it_fills_a_block_with():
    pool = Mempool(max_txs=1_000, max_wait_ms=1_000, min_txs=10)
    bulk_size = WORK_BASE_BYTES + 4 * WORK_UNIT_BYTES  # four units of work each
    first, second, third, single = txs(4)
    assert pool.add(first, bulk_size, now_ms=0) and pool.add(second, bulk_size, now_ms=0)
    assert pool.work == 8 and len(pool) == 2
    with pytest.raises(MempoolFull):
        pool.add(third, bulk_size, now_ms=0)  # 12 units over a bound of 10, though only 3 txs
    assert pool.add(single, 100, now_ms=0), "two more single units still fit"
    pool.remove([first.id])
    assert pool.work == 5 and pool.add(third, bulk_size, now_ms=0)
    pool.on_committed(4_000, now_ms=1)
    assert pool.limit(now_ms=1_000) == 1_000, "the rate is learnt in units too: 4,000 in a second, capped"
