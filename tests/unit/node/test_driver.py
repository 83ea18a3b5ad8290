"""The consensus driver's watch on the mempool's oldest tx: a censoring primary is suspected, a dead tx evicted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from consensus.messages import Timeout, decode_message
from node.driver import CONSENSUS_KIND, STUCK_AFTER_BLOCKS, ConsensusDriver
from node.mempool import Mempool
from node.wal import ConsensusLog
from tests.sim.cluster import Cluster


class RecordingTransport:
    """Keeps what the driver broadcasts (the driver only sends through `send` and `broadcast` here)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, peer_id: str, kind: str, body: bytes) -> None:
        self.sent.append((kind, body))

    def broadcast(self, kind: str, body: bytes) -> None:
        self.sent.append((kind, body))


def make_driver(tmp_path: Path, admissible: set[bytes]) -> tuple[ConsensusDriver, Mempool, RecordingTransport, Cluster]:
    cluster = Cluster.make(4)
    mempool = Mempool()
    transport = RecordingTransport()
    driver = ConsensusDriver(
        cluster.replicas["node-1"],
        ConsensusLog(tmp_path / "consensus.wal"),
        executor=None,  # type: ignore[arg-type]  # the watch reads the mempool only
        mempool=mempool,
        transport=transport,  # type: ignore[arg-type]
        max_block_txs=10,
        batch_wait_ms=10,
        request_sync=lambda height: None,
        recheck=lambda tx: tx.id in admissible,
    )
    return driver, mempool, transport, cluster


def timeouts(transport: RecordingTransport) -> list[Timeout]:
    messages = [decode_message(body) for kind, body in transport.sent if kind == CONSENSUS_KIND]
    return [m for m in messages if isinstance(m, Timeout)]


def test_a_valid_tx_passed_over_by_many_blocks_makes_the_replica_suspect(tmp_path: Path):
    cluster = Cluster.make(4)
    tx = cluster.txs(1)[0]
    driver, mempool, transport, _ = make_driver(tmp_path, {tx.id})
    mempool.add(tx, 100, now_ms=0)

    async def watch() -> None:
        for _ in range(STUCK_AFTER_BLOCKS):
            driver._watch_oldest_tx(had_room=True)
            driver._watch_oldest_tx(had_room=False)
        assert timeouts(transport) == [], "full blocks say the primary is busy: they do not count"
        driver._watch_oldest_tx(had_room=True)
        driver.close()

    asyncio.run(watch())
    assert [t.sender for t in timeouts(transport)] == ["node-1"]
    assert tx.id in mempool


def test_a_tx_that_is_no_longer_admissible_is_evicted_not_blamed_on_the_primary(tmp_path: Path):
    cluster = Cluster.make(4)
    dead, alive = cluster.txs(2)
    driver, mempool, transport, _ = make_driver(tmp_path, {alive.id})
    mempool.add(dead, 100, now_ms=0)
    mempool.add(alive, 100, now_ms=1)
    for _ in range(STUCK_AFTER_BLOCKS + 1):
        driver._watch_oldest_tx(had_room=True)
    assert timeouts(transport) == [] and dead.id not in mempool and alive.id in mempool
    driver.close()
