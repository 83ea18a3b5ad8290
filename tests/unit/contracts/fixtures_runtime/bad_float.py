"""Refused fixture: a float literal (half the amount)."""

from __future__ import annotations

from typing import Any

from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {"bad.run": frozenset({"store"})}


def process_bad_run(state: StateView, tx: Tx, ctx: Any) -> dict[str, Any]:
    return {"half": tx.payload["amount"] * 0.5}
