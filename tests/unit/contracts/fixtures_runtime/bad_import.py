"""Refused fixture: imports a module outside the allow-list (json is pure, but not listed)."""

from __future__ import annotations

import json
from typing import Any

from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {"bad.run": frozenset({"store"})}


def process_bad_run(state: StateView, tx: Tx, ctx: Any) -> dict[str, Any]:
    return {"text": json.dumps(tx.payload)}
