"""Refused fixture: reads the clock."""

from __future__ import annotations

import time
from typing import Any

from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {"bad.run": frozenset({"store"})}


def process_bad_run(state: StateView, tx: Tx, ctx: Any) -> dict[str, Any]:
    return {"now": time.time_ns()}
