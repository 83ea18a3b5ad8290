"""What a replica persists, and reading it back after a restart.

Three kinds of record: every message the replica signs that could conflict
with another (`signed`: pre-prepare, prepare, commit, view change, new view),
each prepared certificate it forms before it votes to commit (`prepared`),
and the commit certificate of each block it decides (`certificate`). From
these a restarted replica knows its view, what it already signed for each
(view, height), and what it must report in a view change. A record that
cannot be read is a `ConsensusLogCorrupted`: the replica refuses to start.
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
from ledger.block import CommitCertificate
from ledger.errors import LedgerError


def make_signed_record(message: Message) -> dict[str, Any]:
    return {"type": "signed", "message": encode_message(message)}


def make_prepared_record(prepared: PreparedCertificate) -> dict[str, Any]:
    return {
        "type": "prepared",
        "pre_prepare": encode_message(prepared.pre_prepare),
        "prepares": [encode_message(p) for p in prepared.prepares],
    }


def make_certificate_record(certificate: CommitCertificate) -> dict[str, Any]:
    return {"type": "certificate", "certificate": certificate.to_wire()}


@dataclass
class Restored:
    """Records read back, in the order they were written."""

    signed: list[Message] = field(default_factory=list)
    prepared: list[PreparedCertificate] = field(default_factory=list)
    certificates: list[CommitCertificate] = field(default_factory=list)


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
    elif kind == "certificate":
        restored.certificates.append(CommitCertificate.from_wire(record["certificate"]))
    else:
        raise ConsensusLogCorrupted(f"unknown record type {kind!r}")
