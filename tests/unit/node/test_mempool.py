"""The mempool: FIFO order, bounds, and waiting txs offered to the peers again."""

from __future__ import annotations

from ledger.tx import Tx
from node.mempool import Mempool
from tests.helpers.builders import make_network

NET = make_network(4)


def txs(count: int) -> list[Tx]:
    return [NET.tx("channel-1", "order.create", {"ref": f"M-{i}"}) for i in range(count)]


def test_waiting_txs_are_offered_again_oldest_first_once_per_period():
    pool = Mempool()
    early, late = txs(2)
    pool.add(early, 100, now_ms=0)
    pool.add(late, 100, now_ms=500)
    assert pool.take_unproposed(now_ms=999, age_ms=1000, max_txs=10) == []
    assert pool.take_unproposed(now_ms=1000, age_ms=1000, max_txs=10) == [early]
    assert pool.take_unproposed(now_ms=1400, age_ms=1000, max_txs=10) == []
    assert pool.take_unproposed(now_ms=1500, age_ms=1000, max_txs=10) == [late]
    assert pool.take_unproposed(now_ms=2000, age_ms=1000, max_txs=10) == [early]


def test_offering_again_is_bounded_per_call_and_skips_committed_txs():
    pool = Mempool()
    batch = txs(5)
    for tx in batch:
        pool.add(tx, 100, now_ms=0)
    pool.remove([batch[0].id])
    assert pool.take_unproposed(now_ms=5000, age_ms=1000, max_txs=3) == batch[1:4]
    assert pool.take_unproposed(now_ms=5000, age_ms=1000, max_txs=3) == batch[4:]
