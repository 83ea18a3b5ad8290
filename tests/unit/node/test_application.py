"""The node's block time rules: the chain's (after the parent) and the clock's (within the skew, either way)."""

from __future__ import annotations

from pathlib import Path

from contracts import load_contracts
from ledger.genesis import ConsensusParams
from ledger.store import Store
from node.admission import Admission
from node.application import NodeApplication
from node.executor import Executor
from tests.helpers.builders import make_network

SKEW_MS = 1000


def make_app(tmp_path: Path, now: dict[str, int]) -> NodeApplication:
    network = make_network(4, consensus=ConsensusParams(max_clock_skew_ms=SKEW_MS))
    store = Store(tmp_path / "data")
    contracts = load_contracts()
    executor = Executor(store, contracts, network.genesis)
    admission = Admission(network.genesis, contracts, store)
    return NodeApplication(executor, admission, "node-0", lambda: now["ms"])


def test_the_clock_bounds_a_proposal_from_both_sides_and_is_asked_again(tmp_path: Path):
    now = {"ms": 1_700_000_100_000}
    app = make_app(tmp_path, now)
    block = app.build_block(1, 0, [])
    assert app.check_block(block) is None
    assert app.check_time(block) == 0
    now["ms"] -= SKEW_MS + 300
    assert app.check_time(block) == 300, "a block from the near future: wait, then ask again"
    now["ms"] += 10_000 + 300
    assert app.check_time(block) > 0, "a block stamped far behind the clock (frozen time) is not accepted"
    assert app.check_block(block) is None, "the chain's verdict does not change with the clock"
    app.executor.store.close()
