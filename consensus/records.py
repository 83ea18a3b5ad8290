"""What a replica persists, and reading it back after a restart.

Three kinds of record: every message the replica signs that could conflict
with another (`signed`: pre-prepare, prepare, commit, view change, new view),
each prepared certificate it forms before it votes to commit (`prepared`),
and each view it enters, with the height its NEW-VIEW showed certified and
the block it obliged (`view`). From these a restarted replica knows its
view and where it started, what it already signed for each (view, height),
and what it must report in a view change; the commit certificate of its
head it reads from the node's store. A record that cannot be read is a
`ConsensusLogCorrupted`: the replica refuses to start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from consensus.errors import ConsensusLogCorrupted
from consensus.messages import (
    Message,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    decode_message,
    encode_message,
)
from ledger.errors import LedgerError


@dataclass(frozen=True)
class ViewEntry:
    """Where a view started: what its NEW-VIEW obliges every replica in it to respect."""

    view: int
    height: int
    """The highest height the NEW-VIEW's view changes prove certified: nothing is proposed at or below it."""
    block_hash: bytes | None
    """The block the NEW-VIEW re-proposes at `height + 1`, if any: no other may be prepared there in this view."""
    prepared_view: int | None = None
    """The view in which that block was prepared: a replica locked on another block in an earlier view may
    unlock for it."""


def make_signed_record(message: Message) -> dict[str, Any]:
    return {"type": "signed", "message": encode_message(message)}


def make_prepared_record(prepared: PreparedCertificate) -> dict[str, Any]:
    return {
        "type": "prepared",
        "pre_prepare": encode_message(prepared.pre_prepare),
        "prepares": [encode_message(p) for p in prepared.prepares],
    }


def make_view_record(entry: ViewEntry) -> dict[str, Any]:
    return {
        "type": "view",
        "view": entry.view,
        "height": entry.height,
        "block_hash": entry.block_hash,
        "prepared_view": entry.prepared_view,
    }


@dataclass
class Restored:
    """Records read back, in the order they were written."""

    signed: list[Message] = field(default_factory=list)
    prepared: list[PreparedCertificate] = field(default_factory=list)
    views: list[ViewEntry] = field(default_factory=list)


def load_records(records: Sequence[dict[str, Any]]) -> Restored:
    """Read persisted records back; raise `ConsensusLogCorrupted` on the first one that does not parse."""
    restored = Restored()
    for index, record in enumerate(records):
        try:
            _load_record(record, restored)
        except (LedgerError, KeyError, TypeError) as exc:
            raise ConsensusLogCorrupted(f"consensus record {index} is unreadable: {exc}") from exc
    return restored


def _load_record(record: Any, restored: Restored) -> None:
    kind = record["type"] if isinstance(record, dict) else None
    if kind == "signed":
        restored.signed.append(decode_message(record["message"]))
    elif kind == "prepared":
        pre_prepare = decode_message(record["pre_prepare"])
        prepares = tuple(decode_message(p) for p in record["prepares"])
        if not isinstance(pre_prepare, PrePrepare) or not all(isinstance(p, Prepare) for p in prepares):
            raise ConsensusLogCorrupted("a prepared record holds other messages")
        restored.prepared.append(PreparedCertificate(pre_prepare, prepares))  # type: ignore[arg-type]
    elif kind == "view":
        restored.views.append(read_view_record(record))
    else:
        raise ConsensusLogCorrupted(f"unknown record type {kind!r}")


def read_view_record(record: dict[str, Any]) -> ViewEntry:
    """The `ViewEntry` of a `view` record; `ConsensusLogCorrupted` if it is malformed."""
    view, height, block_hash = record.get("view"), record.get("height"), record.get("block_hash")
    prepared_view = record.get("prepared_view")
    if type(view) is not int or type(height) is not int or view < 0 or height < 0:
        raise ConsensusLogCorrupted("a view record needs a view and a height")
    if block_hash is not None and type(block_hash) is not bytes:
        raise ConsensusLogCorrupted("a view record's block hash must be bytes")
    if prepared_view is not None and type(prepared_view) is not int:
        raise ConsensusLogCorrupted("a view record's prepared view must be an int")
    return ViewEntry(view, height, block_hash, prepared_view)
