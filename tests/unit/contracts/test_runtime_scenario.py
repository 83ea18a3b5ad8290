"""The devnet demo walk-through on the real runtime: every tx within a tenth of the default step budget."""

from __future__ import annotations

from contracts import queries
from devnet.scenario import run_demo
from tests.helpers.contracts import Ledger
from tests.unit.contracts.test_scenario import make_query


def test_the_demo_stays_well_within_the_step_budget() -> None:
    ledger = Ledger()
    run_demo(ledger.submit, make_query(ledger), lambda line: None)
    assert len(list(ledger.state.scan("order/"))) >= 5
    assert all(row["available"] >= 0 for row in queries.list_inventory(ledger.state))
    assert 0 < ledger.most_steps < ledger.contracts.defaults["step_budget"] // 10, "the default budget has headroom"
