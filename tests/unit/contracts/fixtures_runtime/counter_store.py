"""Fixture helper contract: where the counters live (imported by `counter`, so loaded and pinned as a helper)."""

from __future__ import annotations

from ledger.state import StateView

PREFIX = "counter/"
"""State prefix of the counters."""


def get_counter(state: StateView, name: str) -> int:
    value = state.get(PREFIX + name)
    return 0 if value is None else value


def add_to_counter(state: StateView, name: str, amount: int) -> int:
    total = get_counter(state, name) + amount
    state.put(PREFIX + name, total)
    return total
