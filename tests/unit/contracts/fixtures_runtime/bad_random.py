"""Refused fixture: draws a random number."""

from __future__ import annotations

import random
from typing import Any

from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {"bad.run": frozenset({"store"})}


def process_bad_run(state: StateView, tx: Tx, ctx: Any) -> dict[str, Any]:
    return {"pick": random.randrange(10)}
