"""The consensus log: what a replica signed, written before it is sent.

An append-only file of records, each framed as length (4 bytes), CRC-32 (4
bytes) and the canonical encoding. A record is flushed and fsynced before
the driver sends any message that depends on it, so a restarted replica
never signs two different things for the same view and height. On start the
whole log is read back; a bad checksum, a short frame or undecodable bytes
stop the node with `CorruptLog` naming the offset: it is never skipped.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

from ledger.encoding import decode, encode
from ledger.errors import LedgerError

_HEADER = 8


class CorruptLog(LedgerError):
    """The consensus log cannot be read back exactly."""

    code = "corrupt_consensus_log"


def load_records(path: Path) -> list[dict[str, Any]]:
    """Every record in the log, in order; raises `CorruptLog` on any damage."""
    if not path.exists():
        return []
    data = path.read_bytes()
    records = []
    offset = 0
    while offset < len(data):
        if offset + _HEADER > len(data):
            raise CorruptLog(f"{path}: truncated record header at byte {offset} of {len(data)}")
        size = int.from_bytes(data[offset : offset + 4], "big")
        crc = int.from_bytes(data[offset + 4 : offset + 8], "big")
        body = data[offset + _HEADER : offset + _HEADER + size]
        if len(body) != size:
            raise CorruptLog(f"{path}: truncated record at byte {offset}: {len(body)} of {size} bytes")
        if zlib.crc32(body) != crc:
            raise CorruptLog(f"{path}: checksum mismatch in record at byte {offset}")
        try:
            record = decode(body)
        except LedgerError as exc:
            raise CorruptLog(f"{path}: undecodable record at byte {offset}: {exc}") from exc
        if not isinstance(record, dict):
            raise CorruptLog(f"{path}: record at byte {offset} is not a map")
        records.append(record)
        offset += _HEADER + size
    return records


def _frame(record: dict[str, Any]) -> bytes:
    body = encode(record)
    return len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big") + body


class ConsensusLog:
    """Appends records durably."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Write and fsync records in one go."""
        os.write(self._fd, b"".join(_frame(record) for record in records))
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
