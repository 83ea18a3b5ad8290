"""The analytics routes agree with a recount of the raw orders of a ledger built through the executor.

The same ledger as the benchmark's (`tests.helpers.order_ledger`: cancelled,
intercepted, split, shipped, delivered and returned orders over two
organisations), of a few hundred orders, so that every run of the suite
recounts the routes for an operator and for a store.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.executed import ExecutedLedger
from tests.helpers.order_ledger import build, check_recount

ORDERS = 300


def test_the_routes_agree_with_a_recount_of_every_order(tmp_path: Path) -> None:
    ledger = ExecutedLedger(tmp_path / "db")
    try:
        build(ledger, ORDERS)
        counts = check_recount(ledger)
    finally:
        ledger.close()
    assert counts["operator"]["orders"] == ORDERS
