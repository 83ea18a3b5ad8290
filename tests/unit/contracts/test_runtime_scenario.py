"""The real contracts through the real runtime: the devnet demo walk-through, checked and step-counted."""

from __future__ import annotations

from typing import Any

from contracts import load_contracts, queries
from contracts.context import BlockContext
from devnet.scenario import run_demo
from ledger.state import MemoryState, StateView
from tests.helpers.builders import make_network
from tests.helpers.contracts import BLOCK_MS, Ledger
from tests.unit.contracts.test_scenario import make_query


class RuntimeLedger:
    """One tx per block through `load_contracts().execute_block`, committing each block's writes."""

    def __init__(self) -> None:
        self.network = make_network()
        self.contracts = load_contracts()
        self.base = MemoryState()
        self.height = 0
        self.time_ms = 1_700_000_000_000
        self.most_steps = 0

    @property
    def state(self) -> StateView:
        return StateView(self.base)

    def submit(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.height += 1
        self.time_ms += BLOCK_MS
        view = StateView(self.base)
        tx = self.network.tx(signer, kind, payload)
        [receipt] = self.contracts.execute_block(
            view, [tx], BlockContext(self.height, self.time_ms, self.network.genesis)
        )
        self.most_steps = max(self.most_steps, self.contracts.meter.used)
        for key, value in view.writes().items():
            if value is None:
                self.base.entries.pop(key, None)
            else:
                self.base.entries[key] = value
        return {"ok": receipt.ok, "code": receipt.code, "message": receipt.message, "result": receipt.result}


def get_statuses(state: StateView) -> dict[str, str]:
    return {order["external_ref"]: order["status"] for _, order in state.scan("order/")}


def test_the_demo_through_the_runtime_reaches_the_same_outcomes_as_the_rules_run_directly() -> None:
    direct = Ledger()
    run_demo(direct.submit, make_query(direct), lambda line: None)
    ledger = RuntimeLedger()
    run_demo(ledger.submit, make_query(ledger), lambda line: None)  # type: ignore[arg-type]
    assert get_statuses(ledger.state) == get_statuses(direct.state)
    assert len(get_statuses(ledger.state)) >= 5
    assert all(row["available"] >= 0 for row in queries.list_inventory(ledger.state))
    assert 0 < ledger.most_steps < ledger.contracts.defaults["step_budget"] // 10, "the default budget has headroom"
