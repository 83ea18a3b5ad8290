"""Refused fixture: the order of a set reaches the result."""

from __future__ import annotations

from typing import Any

from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {"bad.run": frozenset({"store"})}


def process_bad_run(state: StateView, tx: Tx, ctx: Any) -> dict[str, Any]:
    listed = []
    for sku in set(tx.payload["skus"]):
        listed.append(sku)
    return {"skus": listed}
