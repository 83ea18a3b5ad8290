"""The consensus log: compaction keeps what a restarted replica needs, atomically, and the file stays bounded; a torn
tail is cut back, damage mid-log refuses to start, a format-1 log is migrated."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.actions import Broadcast
from consensus.messages import Prepare, PrePrepare, encode_message, sign_message
from consensus.replica import Replica
from ledger.encoding import encode
from ledger.genesis import ConsensusParams
from node.config import DAMAGED_WAL_FILE, WAL_FILE
from node.home import create_network
from node.node import Node
from node.wal import (
    FILE_MAGIC,
    FRAME_HEADER,
    ConsensusLog,
    CorruptLog,
    LogWriteFailed,
    load_records,
    make_full_disk_opener,
    recover_records,
    select_needed_records,
)
from tests.sim.app import MemoryApp
from tests.sim.cluster import Cluster


def restored(cluster: Cluster, vid: str, records: list[dict[str, Any]]) -> tuple[Any, ...]:
    """What a replica restarted from `records` knows that bears on what it may sign next."""
    replica = Replica(cluster.network.genesis, vid, cluster.network.keys[vid], cluster.apps[vid], records)
    signed = {key: encode_message(message) for key, message in replica._signed.items()}
    prepared = None if replica._prepared is None else encode_message(replica._prepared.pre_prepare)
    certificate = None if replica._certificate is None else replica._certificate.to_wire()
    return replica.view, replica.is_view_changing, signed, prepared, certificate


def test_log_stays_bounded_over_hundreds_of_heights_and_restarts_the_same(tmp_path: Path):
    cluster = Cluster.make(1, ConsensusParams(checkpoint_interval=10, max_block_txs=1))
    path = tmp_path / "consensus.log"
    wal = ConsensusLog(path)
    written = 0
    sizes = []
    for height in range(1, 301):
        cluster.offer(cluster.txs(1))
        records = cluster.records["node-0"]
        wal.append(records[written:])
        written = len(records)
        if height % 10 == 0:
            wal.compact(cluster.apps["node-0"].head()[0])
        sizes.append(path.stat().st_size)
    assert cluster.apps["node-0"].head()[0] == 300
    assert wal.compactions == 30
    full_size = sum(len(frame) for frame in map(encode, cluster.records["node-0"]))
    assert max(sizes[200:]) < 1.2 * max(sizes[:20]) < full_size / 10
    assert len(recover_records(path)) < 40 < len(cluster.records["node-0"])
    wal.close()
    assert restored(cluster, "node-0", recover_records(path)) == restored(cluster, "node-0", cluster.records["node-0"])

    cluster.records["node-0"] = recover_records(path)
    cluster.boot("node-0")
    cluster.offer(cluster.txs(1))
    assert cluster.apps["node-0"].head()[0] == 301


def test_compaction_mid_height_keeps_the_prepare_and_the_view():
    cluster = Cluster.make(4, ConsensusParams(checkpoint_interval=3))
    for _ in range(4):
        cluster.offer(cluster.txs(1))
    cluster.muted.add("node-0")
    cluster.time_out(["node-1", "node-2", "node-3"])
    cluster.muted.discard("node-0")
    cluster.offer(cluster.txs(1))
    cluster.offer(cluster.txs(1))
    assert cluster.replicas["node-2"].view == 1
    height = cluster.apps["node-2"].head()[0]

    genesis, keys = cluster.network.genesis, cluster.network.keys
    primary_app = MemoryApp(genesis, "node-1")
    primary_app.sync_from(cluster.apps["node-1"])
    txs = cluster.txs(2)
    first = primary_app.make_block(height + 1, 1, txs[:1])
    second = primary_app.make_block(height + 1, 1, txs[1:])
    cluster.perform(
        "node-2",
        cluster.inject(
            "node-1",
            "node-2",
            sign_message(PrePrepare(genesis.chain_id, 1, height + 1, first, "node-1"), keys["node-1"]),
        ),
    )
    full = cluster.records["node-2"]
    compacted = select_needed_records(full, height)
    assert len(compacted) < len(full)
    assert restored(cluster, "node-2", compacted) == restored(cluster, "node-2", full)

    cluster.records["node-2"] = compacted
    cluster.boot("node-2")
    conflicting = sign_message(PrePrepare(genesis.chain_id, 1, height + 1, second, "node-1"), keys["node-1"])
    after = cluster.inject("node-1", "node-2", conflicting)
    assert [a for a in after if isinstance(a, Broadcast) and isinstance(a.message, Prepare)] == []
    resent = cluster.replicas["node-2"].start()
    assert [a.message.block_hash for a in resent if isinstance(a.message, Prepare)] == [first.hash()]


def test_compaction_during_a_view_change_keeps_the_view_change(tmp_path: Path):
    cluster = Cluster.make(4)
    cluster.offer(cluster.txs(1))
    cluster.muted |= {"node-0", "node-3"}
    cluster.time_out(["node-1", "node-2"])
    assert cluster.replicas["node-1"].is_view_changing
    full = cluster.records["node-1"]
    compacted = select_needed_records(full, 1)
    state = restored(cluster, "node-1", compacted)
    assert state == restored(cluster, "node-1", full)
    assert state[:2] == (1, True)


def test_a_crash_before_the_rename_leaves_the_old_log(tmp_path: Path):
    cluster = Cluster.make(1)
    for _ in range(5):
        cluster.offer(cluster.txs(1))
    path = tmp_path / "consensus.log"
    wal = ConsensusLog(path)
    wal.append(cluster.records["node-0"])
    wal.close()
    (tmp_path / "consensus.log.tmp").write_bytes(b"half a rewrite")
    assert recover_records(path) == cluster.records["node-0"]
    reopened = ConsensusLog(path, recover_records(path))
    reopened.compact(5)
    reopened.append([])
    reopened.close()
    assert recover_records(path) == select_needed_records(cluster.records["node-0"], 5)


def test_unknown_records_are_refused_by_compaction():
    with pytest.raises(CorruptLog):
        select_needed_records([{"type": "mystery"}], 0)


def _written_log(tmp_path: Path, records: list[dict[str, Any]]) -> tuple[Path, list[int]]:
    """A log holding `records`, and the byte offset where each frame ends."""
    path = tmp_path / "consensus.wal"
    path.unlink(missing_ok=True)
    wal = ConsensusLog(path)
    ends = []
    for record in records:
        wal.append([record])
        ends.append(path.stat().st_size)
    wal.close()
    return path, ends


def _some_records(count: int) -> list[dict[str, Any]]:
    cluster = Cluster.make(1)
    for _ in range(count):
        cluster.offer(cluster.txs(1))
    return cluster.records["node-0"][:count]


RECORDS = _some_records(4)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_log_cut_anywhere_reads_back_its_whole_records_and_is_cut_there(tmp_path: Path, data: st.DataObject):
    path, ends = _written_log(tmp_path, RECORDS)
    cut = data.draw(st.integers(0, ends[-1]), label="cut")
    with path.open("r+b") as file:
        file.truncate(cut)
    whole = sum(1 for end in ends if end <= cut)
    assert recover_records(path) == RECORDS[:whole]
    kept = max([len(FILE_MAGIC)] + [end for end in ends if end <= cut])
    assert path.stat().st_size == (kept if cut else 0)
    wal = ConsensusLog(path, RECORDS[:whole])
    wal.append(RECORDS[whole:])
    wal.close()
    assert recover_records(path) == RECORDS, "a log cut back takes appends again"


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_flipped_byte_before_the_last_record_refuses_to_start_and_in_the_last_one_is_a_torn_tail(
    tmp_path: Path, data: st.DataObject
):
    path, ends = _written_log(tmp_path, RECORDS)
    where = data.draw(st.integers(len(FILE_MAGIC), ends[-1] - 1), label="where")
    flip = data.draw(st.integers(1, 255), label="xor")
    damaged = bytearray(path.read_bytes())
    damaged[where] ^= flip
    path.write_bytes(bytes(damaged))
    if where < ends[-2]:
        with pytest.raises(CorruptLog, match="followed by whole records"):
            recover_records(path)
        assert path.read_bytes() == bytes(damaged), "a damaged log is left as it is for the operator"
    else:
        assert recover_records(path) == RECORDS[:-1]


@pytest.mark.parametrize("field_byte", [FRAME_HEADER - 16 + 4, FRAME_HEADER - 16 + 7])
def test_a_flipped_length_mid_log_refuses_to_start_the_node(tmp_path: Path, field_byte: int):
    home = tmp_path / "node-0"
    create_network([home, tmp_path / "node-1", tmp_path / "node-2", tmp_path / "node-3"], [0] * 4, tmp_path / "c")
    path, ends = _written_log(home, RECORDS)
    assert path == home / WAL_FILE
    damaged = bytearray(path.read_bytes())
    damaged[ends[0] + field_byte] ^= 0x01  # the length field of the second record
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptLog, match=r"damaged record at byte \d+, followed by whole records"):
        Node(home)


def test_a_format_1_log_is_migrated_at_start_and_its_torn_tail_cut(tmp_path: Path):
    path = tmp_path / "consensus.wal"
    bodies = [encode(record) for record in RECORDS]
    frames = [len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big") + body for body in bodies]
    path.write_bytes(b"".join(frames) + frames[0][:5])
    assert recover_records(path) == RECORDS
    assert path.read_bytes().startswith(FILE_MAGIC)
    assert load_records(path) == (RECORDS, path.stat().st_size)


def test_a_log_torn_inside_its_file_magic_starts_empty(tmp_path: Path):
    path = tmp_path / "consensus.wal"
    path.write_bytes(FILE_MAGIC[:3])
    assert recover_records(path) == []
    assert path.read_bytes() == FILE_MAGIC


def test_a_full_disk_fails_the_log_stop_and_it_stays_failed_once_the_disk_has_room(tmp_path: Path) -> None:
    full = [False]
    log = ConsensusLog(tmp_path / WAL_FILE, [], make_full_disk_opener(lambda: full[0]))
    log.append([{"kind": "view", "view": 1}])
    full[0] = True
    with pytest.raises(LogWriteFailed, match="No space left"):
        log.append([{"kind": "view", "view": 2}])
    full[0] = False
    with pytest.raises(LogWriteFailed, match="refused after an earlier failure"):
        log.append([{"kind": "view", "view": 3}])
    assert recover_records(tmp_path / WAL_FILE) == [{"kind": "view", "view": 1}]


def test_a_validator_repaired_as_the_spec_says_abstains_even_before_its_first_block(tmp_path: Path):
    """The repair moves the damaged log aside; the node then starts, and, though it has no block, signs nothing
    through height 1, where the records it lost may hold its votes. A new validator (no log set aside) votes."""
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / "c")
    path, ends = _written_log(homes[0], RECORDS)
    damaged = bytearray(path.read_bytes())
    damaged[ends[0] + 4] ^= 0x01
    path.write_bytes(bytes(damaged))
    path.rename(homes[0] / DAMAGED_WAL_FILE)
    repaired, new = Node(homes[0]), Node(homes[1])
    assert repaired.replica is not None and new.replica is not None
    assert (repaired.replica.mute_through, repaired.replica.is_muted) == (1, True)
    assert (new.replica.mute_through, new.replica.is_muted) == (0, False)
