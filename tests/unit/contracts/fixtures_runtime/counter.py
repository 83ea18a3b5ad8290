"""Fixture contract: counters that exercise dispatch, rollback, the step budget and configuration."""

from __future__ import annotations

from typing import Any

from contracts import counter_store
from contracts.context import BlockContext, TxContext
from contracts.errors import Rejected
from contracts.payload import integer
from contracts.settings import Setting
from ledger.state import StateView
from ledger.tx import Tx

ROLES: dict[str, frozenset[str]] = {
    "counter.add": frozenset({"store", "operator"}),
    "counter.fail": frozenset({"store"}),
    "counter.bug": frozenset({"store"}),
    "counter.spin": frozenset({"store"}),
    "counter.sum": frozenset({"store"}),
    "counter.swallow": frozenset({"store"}),
    "counter.recurse": frozenset({"store"}),
    "counter.config": frozenset({"store"}),
    "counter.float": frozenset({"store"}),
}

SETTINGS = (Setting(integer("counter_step", -10, 10, default=1, doc="what `counter.add` adds with no amount")),)
"""The configuration key of this contract."""


def begin_block(state: StateView, ctx: BlockContext) -> None:
    """Count the blocks, so that tests can see the hook ran."""
    counter_store.add_to_counter(state, "blocks", 1)


def process_counter_add(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    amount = tx.payload.get("amount", ctx.config["counter_step"])
    return {"total": counter_store.add_to_counter(state, tx.payload["name"], amount)}


def process_counter_fail(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    counter_store.add_to_counter(state, tx.payload["name"], 1)
    raise Rejected("counter_refused", f"counter {tx.payload['name']} refuses")


def process_counter_bug(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    counter_store.add_to_counter(state, tx.payload["name"], 1)
    missing: dict[str, int] = {}
    return {"total": missing["nothing"]}


def process_counter_spin(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    counter_store.add_to_counter(state, tx.payload["name"], 1)
    turns = 0
    while True:
        turns += 1


def process_counter_sum(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Sum 0..n-1 with a comprehension: costs about n steps."""
    total = sum([i for i in range(tx.payload["n"])])
    return {"total": counter_store.add_to_counter(state, tx.payload["name"], total)}


def process_counter_swallow(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Try to hide the budget failure from the runtime."""
    counter_store.add_to_counter(state, tx.payload["name"], 1)
    try:
        for _ in range(tx.payload["n"]):
            pass
    except Rejected:
        return {"total": -1}
    return {"total": 0}


def countdown(n: int) -> int:
    return 0 if n == 0 else 1 + countdown(n - 1)


def process_counter_recurse(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    return {"depth": countdown(tx.payload["n"])}


def process_counter_config(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Read a config value, then scribble on `ctx.config` (which must not leak into later txs)."""
    value = ctx.config.get(tx.payload["key"])
    ctx.config["counter_step"] = -1
    return {"value": value}


def process_counter_float(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """A negative exponent from the payload makes a float at run time; the canonical encoding refuses it."""
    return {"power": pow(tx.payload["a"], tx.payload["b"])}
