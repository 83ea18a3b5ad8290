"""The consensus log: what a replica signed, written before it is sent, and a halt when it cannot be.

The file starts with `FILE_MAGIC` (format 2) and holds frames, each a
16-byte header and a body: `FRAME_MAGIC`, the body's length, the body's
CRC-32, and the CRC-32 of those 12 bytes; the body is the record's canonical
encoding. A record is written and fsynced before the driver sends any
message that depends on it, so a restarted replica never signs two different
things for the same view and height.

Writing is fail-stop, as CometBFT's WAL and Diem's SafetyRules: an error
writing or syncing the file (a full or failing disk) raises `LogWriteFailed`
and the log refuses every later write, so the driver stops the replica from
signing (`ConsensusDriver.halted`) instead of sending a vote it never
persisted. All file access goes through one small layer (`LogFile`, opened by
an injectable `Opener`), which is where tests inject such errors.

On start the whole log is read back (`recover_records`). A frame that is not
whole and intact is a torn tail if no whole frame follows it anywhere in the
file: a crash tore the last write, whose fsync never returned, so nothing was
sent on its strength, and it is cut off. If a whole frame does follow, the
damage is in the middle of the log (a flipped length, a bad sector): cutting
there would lose records that were fsynced and acted on, so the node refuses
to start with `CorruptLog`, naming the offset and the repair (README,
docs/spec/consensus.md: *Repairing a damaged consensus log*). The header's own
checksum is what tells the two apart: a damaged length field can never send
the reader past the records that follow it.

A log in format 1 (frames of length, CRC-32 and body, no file magic) is
migrated at start: read with the old rules, then rewritten in format 2 as a
compaction is, and the migration logged.

Records pile up with every height, so the driver compacts the log from time
to time (`ConsensusLog.compact`): the records a restarted replica still needs
(`select_needed_records`) are written to a temporary file, fsynced, and
renamed over the log, so a crash leaves either the old log or the new one.
"""

from __future__ import annotations

import errno
import logging
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from consensus.messages import Checkpoint, NewView, PrePrepare, ViewChange, decode_message
from consensus.records import read_view_record
from ledger.encoding import decode, encode
from ledger.errors import LedgerError

log = logging.getLogger(__name__)

FILE_MAGIC = b"OMSWAL2\n"
"""The first bytes of a consensus log in format 2."""

FRAME_MAGIC = b"\xf7WAL"
"""The first bytes of every frame: where a reader looks for whole frames after damage."""

FRAME_HEADER = 16
"""Bytes before each record: frame magic, body length, body CRC-32, header CRC-32."""

_LEGACY_HEADER = 8
"""Bytes before each record in format 1: body length and body CRC-32."""


class CorruptLog(LedgerError):
    """The consensus log cannot be read back exactly."""

    code = "corrupt_consensus_log"


class LogWriteFailed(LedgerError):
    """Writing or syncing the consensus log failed: nothing it should hold may be sent."""

    code = "consensus_log_write_failed"


class LogFile:
    """An open consensus-log file: whole writes and fsync over a raw descriptor, nothing buffered."""

    def __init__(self, path: Path, truncate: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
        self._fd = os.open(path, flags, 0o600)

    def write(self, data: bytes) -> None:
        """Write all of `data` (a short write is continued, an error raised)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        """Close the descriptor (once: a second call does nothing)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


Opener = Callable[[Path, bool], LogFile]
"""Opens a log file for appending (False) or empty for a rewrite (True)."""


def make_full_disk_opener(is_full: Callable[[], bool]) -> Opener:
    """An opener whose files fail every write with `ENOSPC` while `is_full()` (a fault test's full disk)."""

    class FullDiskLogFile(LogFile):
        def write(self, data: bytes) -> None:
            if is_full():
                raise OSError(errno.ENOSPC, "No space left on device (a fault test's full disk)")
            super().write(data)

    return FullDiskLogFile


def _sync_directory(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_frame(record: dict[str, Any]) -> bytes:
    """One record as a frame of format 2."""
    body = encode(record)
    header = FRAME_MAGIC + len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big")
    return header + zlib.crc32(header).to_bytes(4, "big") + body


def _body_at(data: bytes, offset: int) -> bytes | None:
    """The body of the whole, intact frame at `offset`, or None if there is none."""
    header = data[offset : offset + FRAME_HEADER]
    if len(header) < FRAME_HEADER or header[:4] != FRAME_MAGIC:
        return None
    if zlib.crc32(header[:12]) != int.from_bytes(header[12:16], "big"):
        return None
    size = int.from_bytes(header[4:8], "big")
    body = data[offset + FRAME_HEADER : offset + FRAME_HEADER + size]
    if len(body) != size or zlib.crc32(body) != int.from_bytes(header[8:12], "big"):
        return None
    return body


def _next_frame(data: bytes, start: int) -> int | None:
    """Where the first whole, intact frame at or after `start` begins, if any."""
    offset = data.find(FRAME_MAGIC, start)
    while offset != -1:
        if _body_at(data, offset) is not None:
            return offset
        offset = data.find(FRAME_MAGIC, offset + 1)
    return None


def _decode_record(path: Path, body: bytes, offset: int) -> dict[str, Any]:
    try:
        record = decode(body)
    except LedgerError as exc:
        raise CorruptLog(f"{path}: undecodable record at byte {offset}: {exc}") from exc
    if not isinstance(record, dict):
        raise CorruptLog(f"{path}: record at byte {offset} is not a map")
    return record


def load_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a format-2 log in order, and how many bytes they take (less than the file if its tail is
    torn); raises `CorruptLog` on damage followed by whole frames, and on a log of another format."""
    data = path.read_bytes()
    if not data.startswith(FILE_MAGIC):
        if FILE_MAGIC.startswith(data):
            return [], 0
        raise CorruptLog(f"{path}: not a consensus log of format 2 (it starts {data[:8]!r})")
    records: list[dict[str, Any]] = []
    offset = len(FILE_MAGIC)
    while offset < len(data):
        body = _body_at(data, offset)
        if body is None:
            following = _next_frame(data, offset + 1)
            if following is None:
                return records, offset
            raise CorruptLog(
                f"{path}: damaged record at byte {offset}, followed by whole records from byte {following}: "
                "the log was damaged after it was written, not torn by a crash; the node will not start on it "
                "(see 'Repairing a damaged consensus log')"
            )
        records.append(_decode_record(path, body, offset))
        offset += FRAME_HEADER + len(body)
    return records, offset


def load_legacy_records(path: Path) -> list[dict[str, Any]]:
    """The records of a format-1 log (length, CRC-32, body; a damaged last frame is a torn tail, damage before
    it `CorruptLog`), read once at start to migrate it."""
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    while offset + _LEGACY_HEADER <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        body = data[offset + _LEGACY_HEADER : offset + _LEGACY_HEADER + size]
        if len(body) != size:
            break
        if zlib.crc32(body) != int.from_bytes(data[offset + 4 : offset + 8], "big"):
            if offset + _LEGACY_HEADER + size == len(data):
                break
            raise CorruptLog(f"{path}: checksum mismatch in format-1 record at byte {offset}")
        records.append(_decode_record(path, body, offset))
        offset += _LEGACY_HEADER + size
    return records


def is_legacy_log(data: bytes) -> bool:
    """Is this a format-1 log? (Its first frame's length, under 16 MiB, starts with a zero byte; format 2 and a
    torn format-2 magic start with `FILE_MAGIC`'s first byte.)"""
    return bool(data) and data[:1] != FILE_MAGIC[:1]


def recover_records(path: Path, opener: Opener = LogFile) -> list[dict[str, Any]]:
    """Every record in the log, in order, after cutting off a torn tail and migrating a format-1 log;
    `CorruptLog` on other damage."""
    if not path.exists():
        return []
    with path.open("rb") as file:
        head = file.read(len(FILE_MAGIC))
    if is_legacy_log(head):
        records = load_legacy_records(path)
        write_log(path, records, opener)
        log.warning("consensus log %s migrated from format 1 to format 2 (%d records)", path, len(records))
        return records
    records, valid = load_records(path)
    if valid < path.stat().st_size:
        log.warning("consensus log %s: cut a torn tail of %d bytes", path, path.stat().st_size - valid)
        if valid == 0:
            write_log(path, [], opener)
        else:
            _truncate(path, valid)
    return records


def abstain_through(records: Sequence[dict[str, Any]], height: int, set_aside: bool = False) -> int:
    """The height through which a validator at committed `height` that read `records` from its log signs nothing
    (`Replica.mute_through`). With no record and blocks, or no record and a damaged log set aside (`set_aside`, even
    before its first block), it lost what it signed, so it votes again only from the height after its head's next;
    0 otherwise (a validator with neither blocks nor a log set aside is new)."""
    return height + 1 if not records and (height > 0 or set_aside) else 0


def write_log(path: Path, records: Sequence[dict[str, Any]], opener: Opener = LogFile) -> None:
    """Atomically replace the log at `path` by `records` (a temporary file, fsynced, renamed over it)."""
    tmp = path.with_name(path.name + ".tmp")
    file = opener(tmp, True)
    try:
        file.write(FILE_MAGIC + b"".join(encode_frame(record) for record in records))
        file.sync()
    finally:
        file.close()
    os.replace(tmp, path)
    _sync_directory(path.parent)


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
    """Appends records durably, rewrites the file with only what is still needed, and fails stop."""

    def __init__(self, path: Path, records: Sequence[dict[str, Any]] = (), opener: Opener = LogFile) -> None:
        """`records`: what `recover_records` read from `path` (a missing or empty file is started in format 2)."""
        self.path = path
        self.records: list[dict[str, Any]] = list(records)
        """What the file holds (the records read at start, then every one appended)."""
        self.compactions = 0
        self.failure: str | None = None
        """Why a write or sync failed, after which every write is refused; None while the log is sound."""
        self._opener = opener
        try:
            if not path.exists() or path.stat().st_size == 0:
                write_log(path, [], opener)
            self._file = opener(path, False)
        except OSError as exc:
            raise LogWriteFailed(f"{path}: cannot open the consensus log: {exc}") from exc

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write and fsync records in one go; `LogWriteFailed` if that fails now or failed before."""
        self._check_sound()
        try:
            self._file.write(b"".join(encode_frame(record) for record in records))
            self._file.sync()
        except OSError as exc:
            self._fail(f"writing {len(records)} records failed: {exc}")
        self.records.extend(records)

    def compact(self, committed_height: int) -> None:
        """Atomically replace the file by the records a replica at `committed_height` still needs."""
        self._check_sound()
        kept = select_needed_records(self.records, committed_height)
        try:
            write_log(self.path, kept, self._opener)
            self._file.close()
            self._file = self._opener(self.path, False)
        except OSError as exc:
            self._fail(f"compaction failed: {exc}")
        self.records = kept
        self.compactions += 1

    def _check_sound(self) -> None:
        if self.failure is not None:
            raise LogWriteFailed(f"{self.path}: refused after an earlier failure: {self.failure}")

    def _fail(self, reason: str) -> None:
        self.failure = reason
        raise LogWriteFailed(f"{self.path}: {reason}")

    def close(self) -> None:
        self._file.close()
