"""Turning blocks and receipts into JSON maps (bytes as hex, via the same `to_json` as the queries)."""

from __future__ import annotations

from typing import Any

from contracts.queries import to_json
from ledger.block import Block, CommitCertificate, Receipt


def render_receipt(receipt: Receipt) -> dict[str, Any]:
    return to_json(receipt.to_wire())


def render_block(block: Block, certificate: CommitCertificate | None, receipts: list[Receipt | None]) -> dict[str, Any]:
    """The block with each tx's receipt beside it (`receipts[i]` is tx i's)."""
    return {
        "height": block.height,
        "hash": block.hash().hex(),
        "header": to_json(block.header.to_wire()),
        "txs": [{"id": tx.id.hex(), **to_json(tx.to_wire())} for tx in block.txs],
        "receipts": [None if receipt is None else render_receipt(receipt) for receipt in receipts],
        "certificate": to_json(certificate.to_wire()) if certificate else None,
    }
