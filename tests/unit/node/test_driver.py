"""The consensus driver: its watch on the mempool's oldest tx (forwarded to the primary, then a censoring primary is
suspected; a dead tx evicted),
and its halt when the consensus log cannot be written (nothing unpersisted leaves), and the loop time of each stage
of a round; how it carries out a replica's actions (the records of a stretch fsynced together) and offers the next
batch at once after a commit."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from consensus.actions import Action, CancelTimer, Decide, Persist, RequestSync, SetTimer
from consensus.messages import Prepare, PrePrepare, Timeout, decode_message, encode_message, sign_message
from consensus.replica import RESUME_TIMER, VIEW_TIMER
from ledger.block import Block, CommitCertificate, Receipt
from ledger.commitment import EMPTY as EMPTY_ROOT
from ledger.encoding import decode
from ledger.tx import Tx, decode_tx
from node.censorship import STUCK_AFTER_BLOCKS
from node.driver import CONSENSUS_KIND, ConsensusDriver, SyncDeferral, carry_out
from node.mempool import Mempool
from node.wal import ConsensusLog, LogFile, LogWriteFailed, recover_records
from p2p.gossip import TXS_KIND
from tests.helpers.builders import make_network
from tests.helpers.chain import make_block
from tests.sim.app import SET_KIND
from tests.sim.cluster import Cluster

NETWORK = make_network(4)


class RecordingTransport:
    """Keeps what the driver sends, with its peer (`*` for a broadcast)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []

    def send(self, peer_id: str, kind: str, body: bytes) -> None:
        self.sent.append((peer_id, kind, body))

    def broadcast(self, kind: str, body: bytes) -> None:
        self.sent.append(("*", kind, body))


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
    messages = [decode_message(body) for _, kind, body in transport.sent if kind == CONSENSUS_KIND]
    return [m for m in messages if isinstance(m, Timeout)]


def forwarded(transport: RecordingTransport) -> list[tuple[str, list[bytes]]]:
    """(peer, tx ids) of the tx batches sent to one peer."""
    return [
        (peer, [decode_tx(item).id for item in decode(body)]) for peer, kind, body in transport.sent if kind == TXS_KIND
    ]


def block_of(txs: list[Tx]) -> Block:
    return make_block(NETWORK, 1, b"\0" * 32, txs, [], EMPTY_ROOT, 1)


EMPTY = block_of([])
"""A block with room for any tx."""


def full_block(cluster: Cluster) -> Block:
    """A block whose few bulk txs fill its work (6 of 60 KiB: 360 of 400 units, no room for a 64 KiB tx)."""
    txs = [cluster.network.tx("channel-1", SET_KIND, {"key": f"k{i}", "value": "x" * 60_000}) for i in range(6)]
    return block_of(txs)


def test_a_valid_tx_passed_over_by_blocks_with_room_is_forwarded_to_the_primary_then_suspected(tmp_path: Path):
    cluster = Cluster.make(4)
    tx = cluster.txs(1)[0]
    driver, mempool, transport, _ = make_driver(tmp_path, {tx.id})
    mempool.add(tx, 100, now_ms=0)
    full = full_block(cluster)

    async def watch() -> None:
        driver._watch_oldest_tx(full)  # the watch takes up the oldest tx
        for _ in range(STUCK_AFTER_BLOCKS):
            driver._watch_oldest_tx(EMPTY)
            driver._watch_oldest_tx(full)
        assert forwarded(transport) == [("node-0", [tx.id])], "the first timeout sends the tx to the primary"
        for _ in range(STUCK_AFTER_BLOCKS - 1):
            driver._watch_oldest_tx(EMPTY)
            driver._watch_oldest_tx(full)
        assert timeouts(transport) == [], "full blocks say the primary is busy: they do not count"
        driver._watch_oldest_tx(EMPTY)
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
        driver._watch_oldest_tx(EMPTY)
    assert transport.sent == [] and dead.id not in mempool and alive.id in mempool
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
    # A torn write is cut at restart; whole records whose fsync failed may stay (signed, never sent): the
    # proposal and the primary's own PREPARE, written together.
    assert len(recover_records(path)) == (0 if fail == "write" else 2)


def test_a_view_timeout_waits_while_sync_moves_the_head_and_only_then():
    timeouts = SyncDeferral()
    assert timeouts.defers(VIEW_TIMER, is_syncing=True, height=5), "sync is moving the head: this node lags"
    assert timeouts.defers(VIEW_TIMER, is_syncing=True, height=9)
    assert not timeouts.defers(VIEW_TIMER, is_syncing=True, height=9), "a sync that moved nothing holds nothing back"
    assert not timeouts.defers(VIEW_TIMER, is_syncing=False, height=12)
    assert not timeouts.defers(RESUME_TIMER, is_syncing=True, height=20), "only the view timer waits"


def test_the_loop_time_of_each_round_stage_is_summed(tmp_path: Path) -> None:
    cluster = Cluster.make(4)
    mempool = Mempool()
    mempool.add(cluster.txs(1)[0], 100, now_ms=0)
    driver = ConsensusDriver(
        cluster.replicas["node-0"],
        ConsensusLog(tmp_path / "consensus.wal"),
        executor=None,  # type: ignore[arg-type]  # nothing is decided here
        mempool=mempool,
        transport=RecordingTransport(),  # type: ignore[arg-type]
        max_block_txs=10,
        batch_wait_ms=10,
        request_sync=lambda height: None,
    )

    async def propose() -> None:
        driver._offer_batch()
        driver.close()

    asyncio.run(propose())
    assert driver.stage_seconds["propose"] > 0, "the primary built and proposed its block"
    assert driver.stage_seconds["log_sync"] > 0, "and persisted what it signed"
    assert driver.stage_seconds["vote"] == 0 == driver.stage_seconds["commit"], "no message came, nothing was decided"


def test_a_stretch_of_actions_writes_its_records_together_first_and_none_across_a_decided_block() -> None:
    certificate = CommitCertificate(1, 0, EMPTY.hash(), ())
    actions: list[Action] = [
        Persist({"n": 1}),
        SetTimer(VIEW_TIMER, 100),
        Persist({"n": 2}),
        CancelTimer(RESUME_TIMER),
        Decide(EMPTY, certificate),
        Persist({"n": 3}),
        RequestSync(4),
        SetTimer(RESUME_TIMER, 0),
    ]
    writes: list[list[dict[str, int]]] = []
    done: list[Action] = []
    assert carry_out(actions, lambda records: writes.append(records) is None, done.append)
    assert writes == [[{"n": 1}, {"n": 2}], [{"n": 3}]], "one write a stretch; the decided block ends a stretch"
    assert done == [actions[1], actions[3], actions[4], actions[6], actions[7]], "the rest in order"
    writes.clear()
    done.clear()
    failing = iter([True, False])
    assert not carry_out(actions, lambda records: next(failing), done.append)
    assert done == [actions[1], actions[3], actions[4]], "nothing of the stretch whose write failed, nor after"


class CountingLogFile(LogFile):
    """The real log file, counting its fsyncs."""

    syncs = 0

    def sync(self) -> None:
        CountingLogFile.syncs += 1
        super().sync()


def primary_driver(tmp_path: Path, cluster: Cluster, mempool: Mempool, batch_wait_ms: int) -> ConsensusDriver:
    return ConsensusDriver(
        cluster.replicas["node-0"],
        ConsensusLog(tmp_path / "consensus.wal", opener=CountingLogFile),
        executor=CommittingExecutor(),  # type: ignore[arg-type]
        mempool=mempool,
        transport=RecordingTransport(),  # type: ignore[arg-type]
        max_block_txs=10,
        batch_wait_ms=batch_wait_ms,
        request_sync=lambda height: None,
    )


class CommittingExecutor:
    """Commits whatever it is given (the driver's own steps around a commit are what is tested)."""

    def commit(self, block: Block, certificate: CommitCertificate) -> list[Receipt]:
        return []


def test_a_primary_fsyncs_its_proposal_and_its_own_prepare_once_before_either_leaves(tmp_path: Path) -> None:
    cluster = Cluster.make(4)
    mempool = Mempool()
    mempool.add(cluster.txs(1)[0], 100, now_ms=0)
    driver = primary_driver(tmp_path, cluster, mempool, batch_wait_ms=10)
    CountingLogFile.syncs = 0

    async def propose() -> None:
        driver._offer_batch()
        driver.close()

    asyncio.run(propose())
    sent = [decode_message(body) for _, _, body in driver.transport.sent]  # type: ignore[attr-defined]
    assert [type(m) for m in sent] == [PrePrepare, Prepare]
    assert CountingLogFile.syncs == 1, "both records in one fsync"
    assert [r["type"] for r in recover_records(tmp_path / "consensus.wal")] == ["signed", "signed"]


def test_after_a_commit_the_waiting_txs_are_offered_at_once_and_a_new_tx_waits_for_its_batch(
    tmp_path: Path,
) -> None:
    cluster = Cluster.make(4)
    mempool = Mempool()
    driver = primary_driver(tmp_path, cluster, mempool, batch_wait_ms=60_000)
    certificate = CommitCertificate(1, 0, EMPTY.hash(), ())

    async def commit_with_txs_waiting() -> tuple[int, int]:
        mempool.add(cluster.txs(1)[0], 100, now_ms=0)
        driver.offer_batch_soon()
        for _ in range(3):
            await asyncio.sleep(0)
        waited = len(driver.transport.sent)  # type: ignore[attr-defined]
        driver._commit(EMPTY, certificate)
        for _ in range(3):
            await asyncio.sleep(0)
        offered = len(driver.transport.sent)  # type: ignore[attr-defined]
        driver.close()
        return waited, offered

    waited, offered = asyncio.run(commit_with_txs_waiting())
    assert waited == 0, "a tx that just came waits for its batch to fill"
    assert offered == 2, "after a commit the primary proposes what waited (and prepares it) on the next turn"
