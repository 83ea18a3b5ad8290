"""The mempool: stuck txs (and only those) are offered to the peers again."""

from __future__ import annotations

from ledger.tx import Tx
from node.mempool import Mempool
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
    assert pool.take_unproposed(now_ms=999, height=0, age_ms=AGE, min_blocks=0, max_txs=10) == []
    assert pool.take_unproposed(now_ms=1000, height=0, age_ms=AGE, min_blocks=0, max_txs=10) == [early]
    assert pool.take_unproposed(now_ms=1400, height=0, age_ms=AGE, min_blocks=0, max_txs=10) == []
    assert pool.take_unproposed(now_ms=1500, height=0, age_ms=AGE, min_blocks=0, max_txs=10) == [late]
    assert pool.take_unproposed(now_ms=2000, height=0, age_ms=AGE, min_blocks=0, max_txs=10) == [early]


def test_a_long_pool_on_a_busy_chain_is_not_offered_again_until_blocks_pass_it_by():
    pool = Mempool()
    backlog = txs(5)
    for tx in backlog:
        pool.add(tx, 100, now_ms=0, height=10)
    assert pool.take_unproposed(now_ms=60_000, height=17, age_ms=AGE, min_blocks=8, max_txs=10) == []
    pool.remove([backlog[0].id])
    assert pool.take_unproposed(now_ms=60_000, height=18, age_ms=AGE, min_blocks=8, max_txs=3) == backlog[1:4]
    assert pool.take_unproposed(now_ms=60_000, height=18, age_ms=AGE, min_blocks=8, max_txs=3) == backlog[4:]
