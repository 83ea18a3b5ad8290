"""Refused fixture: reads the environment."""

from __future__ import annotations

import os
from typing import Any

from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {"bad.run": frozenset({"store"})}


def process_bad_run(state: StateView, tx: Tx, ctx: Any) -> dict[str, Any]:
    return {"home": os.environ.get("HOME", "")}
