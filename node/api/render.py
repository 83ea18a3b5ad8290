"""Turning ledger data into JSON: bytes become hex, blocks and receipts become maps."""

from __future__ import annotations

from typing import Any

from ledger.block import Block, CommitCertificate, Receipt


def to_json(value: Any) -> Any:
    """Ledger data with every bytes value as hex."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def render_receipt(receipt: Receipt) -> dict[str, Any]:
    return to_json(receipt.to_wire())


def render_block(block: Block, certificate: CommitCertificate | None) -> dict[str, Any]:
    return {
        "height": block.height,
        "hash": block.hash().hex(),
        "header": to_json(block.header.to_wire()),
        "txs": [{"id": tx.id.hex(), **to_json(tx.to_wire())} for tx in block.txs],
        "certificate": to_json(certificate.to_wire()) if certificate else None,
    }
