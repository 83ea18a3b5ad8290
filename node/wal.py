"""The consensus log: what a replica signed, written before it is sent.

A file of records, each framed as length (4 bytes), CRC-32 (4 bytes) and the
canonical encoding. A record is flushed and fsynced before the driver sends
any message that depends on it, so a restarted replica never signs two
different things for the same view and height. On start the whole log is
read back. A damaged last frame (short, or failing its checksum, and ending
at the end of the file) is a write that a crash tore: its fsync never
returned, so nothing was sent on its strength, and it is cut off
(`recover_records`). Damage anywhere else (a bad checksum or undecodable
bytes followed by more records) stops the node with `CorruptLog` naming the
offset: it is never skipped.

Records pile up with every height, so the driver compacts the log from time
to time (`ConsensusLog.compact`): the records a restarted replica still needs
(`select_needed_records`) are written to a temporary file, fsynced, and
renamed over the log, so a crash leaves either the old log or the new one.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consensus.messages import Checkpoint, NewView, PrePrepare, ViewChange, decode_message
from consensus.records import read_view_record
from ledger.encoding import decode, encode
from ledger.errors import LedgerError

_HEADER = 8


class CorruptLog(LedgerError):
    """The consensus log cannot be read back exactly."""

    code = "corrupt_consensus_log"


def recover_records(path: Path) -> list[dict[str, Any]]:
    """Every record in the log, in order, after cutting off a torn last frame; `CorruptLog` on other damage."""
    if not path.exists():
        return []
    records, valid = load_records(path)
    if valid < path.stat().st_size:
        os.truncate(path, valid)
    return records


def load_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of the log in order, and how many bytes they take (less than the file if its last frame
    is torn); raises `CorruptLog` on damage that is not a torn last frame."""
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    while offset < len(data):
        if offset + _HEADER > len(data):
            return records, offset
        size = int.from_bytes(data[offset : offset + 4], "big")
        crc = int.from_bytes(data[offset + 4 : offset + 8], "big")
        body = data[offset + _HEADER : offset + _HEADER + size]
        if len(body) != size:
            return records, offset
        if zlib.crc32(body) != crc:
            if offset + _HEADER + size == len(data):
                return records, offset
            raise CorruptLog(f"{path}: checksum mismatch in record at byte {offset}")
        try:
            record = decode(body)
        except LedgerError as exc:
            raise CorruptLog(f"{path}: undecodable record at byte {offset}: {exc}") from exc
        if not isinstance(record, dict):
            raise CorruptLog(f"{path}: record at byte {offset} is not a map")
        records.append(record)
        offset += _HEADER + size
    return records, offset


def _frame(record: dict[str, Any]) -> bytes:
    body = encode(record)
    return len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big") + body


def select_needed_records(records: Sequence[dict[str, Any]], committed_height: int) -> list[dict[str, Any]]:
    """The records a replica restarted at `committed_height` still reads, in their original order.

    Kept: everything signed for a height above the committed head (any view);
    every view change and new view of the highest view signed in or entered,
    plus the last normal-case message of that view and the record of entering
    it (together they tell the restarted replica its view, where it started
    and whether it is changing view); prepared certificates above the head.
    Everything else only concerned decided heights or past views, which the
    replica never signs for again.
    """
    described = [_describe(record) for record in records]
    top_view = max((view for kind, view, _ in described if kind in ("signed", "view")), default=0)
    last_normal = -1
    for index, (kind, view, height) in enumerate(described):
        if kind == "signed" and view == top_view and height > 0:
            last_normal = index
    kept = []
    for index, (record, (kind, view, height)) in enumerate(zip(records, described, strict=True)):
        if kind == "signed":
            keep = height > committed_height or (view == top_view and height == 0) or index == last_normal
        elif kind == "prepared":
            keep = height > committed_height
        else:
            keep = view == top_view
        if keep:
            kept.append(record)
    return kept


def _describe(record: dict[str, Any]) -> tuple[str, int, int]:
    """(type, view, height) of a record; height 0 for view changes and new views, the start height for views."""
    kind = record.get("type")
    try:
        if kind == "signed":
            message = decode_message(record["message"])
            if isinstance(message, Checkpoint):
                raise CorruptLog("the consensus log holds a checkpoint, which is never persisted")
            if isinstance(message, ViewChange | NewView):
                return kind, message.view, 0
            return kind, message.view, message.height
        if kind == "prepared":
            pre_prepare = decode_message(record["pre_prepare"])
            if not isinstance(pre_prepare, PrePrepare):
                raise CorruptLog("a prepared record holds no pre-prepare")
            return kind, pre_prepare.view, pre_prepare.height
        if kind == "view":
            entry = read_view_record(record)
            return kind, entry.view, entry.height
    except (LedgerError, KeyError, TypeError) as exc:
        raise CorruptLog(f"consensus record of type {kind!r} is unreadable: {exc}") from exc
    raise CorruptLog(f"unknown consensus record type {kind!r}")


class ConsensusLog:
    """Appends records durably, and rewrites the file with only what is still needed."""

    def __init__(self, path: Path, records: Sequence[dict[str, Any]] = ()) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = list(records)
        """What the file holds (the records read at start, then every one appended)."""
        self.compactions = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write and fsync records in one go."""
        os.write(self._fd, b"".join(_frame(record) for record in records))
        os.fsync(self._fd)
        self.records.extend(records)

    def compact(self, committed_height: int) -> None:
        """Atomically replace the file by the records a replica at `committed_height` still needs."""
        kept = select_needed_records(self.records, committed_height)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(_frame(record) for record in kept))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.records = kept
        self.compactions += 1

    def close(self) -> None:
        os.close(self._fd)
