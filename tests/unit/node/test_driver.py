"""The consensus driver: its watch on the mempool's oldest tx (a censoring primary is suspected, a dead tx evicted),
and its halt when the consensus log cannot be written (nothing unpersisted leaves)."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from consensus.messages import Prepare, Timeout, decode_message, encode_message, sign_message
from node.driver import CONSENSUS_KIND, STUCK_AFTER_BLOCKS, ConsensusDriver
from node.mempool import Mempool
from node.wal import ConsensusLog, LogFile, LogWriteFailed, recover_records
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


class FullDisk(LogFile):
    """The real log file, on a disk that fills up: `fail` is "write" (half the bytes land, then ENOSPC) or "sync"
    (the bytes are written, fsync reports EIO). The file starts healthy; `broken` turns the fault on."""

    broken = False
    fail = "write"

    def write(self, data: bytes) -> None:
        if FullDisk.broken and FullDisk.fail == "write":
            super().write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(data)

    def sync(self) -> None:
        if FullDisk.broken and FullDisk.fail == "sync":
            raise OSError(errno.EIO, "Input/output error")
        super().sync()


@pytest.mark.parametrize("fail", ["write", "sync"])
def test_a_failed_consensus_log_write_halts_the_replica_and_nothing_leaves(
    tmp_path: Path, fail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = Cluster.make(4)
    path = tmp_path / "consensus.wal"
    transport = RecordingTransport()
    driver = ConsensusDriver(
        cluster.replicas["node-0"],
        ConsensusLog(path, opener=FullDisk),
        executor=None,  # type: ignore[arg-type]  # nothing is decided here
        mempool=Mempool(),
        transport=transport,  # type: ignore[arg-type]
        max_block_txs=10,
        batch_wait_ms=10,
        request_sync=lambda height: None,
    )
    monkeypatch.setattr(FullDisk, "fail", fail)
    monkeypatch.setattr(FullDisk, "broken", True)
    first, second = cluster.txs(2)

    async def propose_then_hear_votes() -> None:
        driver._run(cluster.replicas["node-0"].on_batch([first]))
        assert driver.halted is not None and "consensus.wal" in driver.halted
        driver._run(cluster.replicas["node-0"].on_batch([second]))
        vote = Prepare(cluster.network.genesis.chain_id, 0, 1, b"\x01" * 32, "node-1")
        prepare = sign_message(vote, cluster.network.keys["node-1"])
        driver.on_message("node-1", encode_message(prepare))
        driver.close()

    asyncio.run(propose_then_hear_votes())
    assert transport.sent == [], "a pre-prepare that was never persisted must not leave"
    assert driver.wal.failure is not None
    with pytest.raises(LogWriteFailed):
        driver.wal.append([])
    monkeypatch.setattr(FullDisk, "broken", False)
    # A torn write is cut at restart; a whole record whose fsync failed may stay (it was signed, never sent).
    assert len(recover_records(path)) == (0 if fail == "write" else 1)
