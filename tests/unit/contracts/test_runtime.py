"""The contract runtime: dispatch, role checks, savepoints, the step budget and configuration."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import CONTRACT_MODULES, ContractSet, load_contracts
from contracts.context import BlockContext
from contracts.runtime import CONTRACTS_DIR
from ledger.block import Receipt
from ledger.encoding import decode
from ledger.state import MemoryState, StateView
from ledger.tx import Tx
from tests.helpers.builders import Network, make_network

FIXTURES = Path(__file__).parent / "fixtures_runtime"


def load_counter() -> ContractSet:
    return load_contracts(("governance", "counter"), search_path=(FIXTURES, CONTRACTS_DIR))


@pytest.fixture(scope="module")
def contracts() -> ContractSet:
    return load_counter()


@pytest.fixture
def net() -> Network:
    return make_network()


def execute(contracts: ContractSet, net: Network, txs: list[Tx]) -> tuple[list[Receipt], dict[str, Any]]:
    """Run `txs` as block 1 on an empty state; return the receipts and the decoded writes."""
    view = StateView(MemoryState())
    receipts = contracts.execute_block(view, txs, BlockContext(1, 1_700_000_001_000, net.genesis))
    writes = {key.decode(): None if value is None else decode(value) for key, value in view.writes().items()}
    return receipts, writes


def test_the_real_contract_modules_pass_the_check_and_load() -> None:
    loaded = load_contracts()
    assert set(CONTRACT_MODULES) <= set(loaded.versions())
    assert loaded.required_roles("config.set") == frozenset({"operator"})
    assert loaded.required_roles("no.such.kind") is None


def test_versions_are_the_sha256_of_each_source(contracts: ContractSet) -> None:
    versions = contracts.versions()
    assert versions["counter"] == hashlib.sha256((FIXTURES / "counter.py").read_bytes()).hexdigest()
    assert versions["counter_store"] == hashlib.sha256((FIXTURES / "counter_store.py").read_bytes()).hexdigest()
    assert versions["governance"] == hashlib.sha256((CONTRACTS_DIR / "governance.py").read_bytes()).hexdigest()


def test_an_accepted_tx_writes_and_returns_its_result(contracts: ContractSet, net: Network) -> None:
    tx = net.tx("store-1", "counter.add", {"name": "a", "amount": 3})
    receipts, writes = execute(contracts, net, [tx, net.tx("operator-1", "counter.add", {"name": "a", "amount": 4})])
    assert receipts[0] == Receipt(tx.id, True, "ok", "", {"total": 3})
    assert receipts[1].result == {"total": 7}
    assert writes["counter/a"] == 7
    assert writes["counter/blocks"] == 1, "the begin_block hook ran once"


def test_a_rejected_tx_changes_nothing(contracts: ContractSet, net: Network) -> None:
    add_a = net.tx("store-1", "counter.add", {"name": "a", "amount": 1})
    fail = net.tx("store-1", "counter.fail", {"name": "a"})
    add_b = net.tx("store-1", "counter.add", {"name": "b", "amount": 1})
    receipts, writes = execute(contracts, net, [add_a, fail, add_b])
    assert receipts[1] == Receipt(fail.id, False, "counter_refused", "counter a refuses", {})
    assert [r.ok for r in receipts] == [True, False, True]
    assert execute(contracts, net, [add_a, add_b])[1] == writes


@pytest.mark.parametrize(
    ("signer", "kind", "code"),
    [
        ("mallory", "counter.add", "unknown_signer"),
        ("store-1", "counter.nothing", "unknown_kind"),
        ("channel-1", "counter.add", "forbidden_role"),
        ("operator-1", "counter.fail", "forbidden_role"),
    ],
)
def test_signer_kind_and_role_are_checked_before_the_rule(
    contracts: ContractSet, net: Network, signer: str, kind: str, code: str
) -> None:
    tx = Tx(net.genesis.chain_id, kind, signer, 1, {"name": "a", "amount": 1}, net.valid_until, b"", b"x" * 32)
    receipts, writes = execute(contracts, net, [tx])
    assert (receipts[0].ok, receipts[0].code) == (False, code)
    assert "counter/a" not in writes


def test_a_bug_in_a_rule_rejects_with_the_exception_type_only(contracts: ContractSet, net: Network) -> None:
    receipts, writes = execute(contracts, net, [net.tx("store-1", "counter.bug", {"name": "a"})])
    assert (receipts[0].code, receipts[0].message) == ("contract_error", "KeyError")
    assert "counter/a" not in writes


def test_a_float_made_at_run_time_cannot_reach_the_receipt(contracts: ContractSet, net: Network) -> None:
    receipts, _ = execute(contracts, net, [net.tx("store-1", "counter.float", {"a": 2, "b": -1})])
    assert (receipts[0].code, receipts[0].message) == ("contract_error", "EncodingError")


def test_a_tx_that_loops_forever_fails_on_the_step_budget_and_leaves_no_write(
    contracts: ContractSet, net: Network
) -> None:
    spin = net.tx("store-1", "counter.spin", {"name": "a"})
    after = net.tx("store-1", "counter.add", {"name": "b", "amount": 1})
    receipts, writes = execute(contracts, net, [spin, after])
    assert (receipts[0].ok, receipts[0].code) == (False, "step_budget_exceeded")
    assert "200000" in receipts[0].message
    assert "counter/a" not in writes
    assert receipts[1].ok and writes["counter/b"] == 1


def test_steps_are_counted_exactly_so_the_budget_boundary_is_the_same_everywhere(net: Network) -> None:
    tx = net.tx("store-1", "counter.sum", {"name": "a", "n": 1000})
    contracts = load_counter()
    assert execute(contracts, net, [tx])[0][0].ok
    used = contracts.meter.used
    assert 1000 < used < 1100, "one step per comprehension item plus a few calls"
    assert execute(contracts, net, [tx])[0][0].ok and contracts.meter.used == used

    def with_budget(budget: int) -> Receipt:
        change = {"action": "config.set", "params": {"key": "step_budget", "value": budget}}
        receipts, _ = execute(contracts, net, [net.tx("node-0", "governance.propose", change), tx])
        assert receipts[0].result["status"] == "executed"
        return receipts[1]

    assert with_budget(used).ok
    assert with_budget(used - 1).code == "step_budget_exceeded"


def test_a_rule_cannot_swallow_the_budget_failure(contracts: ContractSet, net: Network) -> None:
    receipts, writes = execute(contracts, net, [net.tx("store-1", "counter.swallow", {"name": "a", "n": 10**9})])
    assert receipts[0].code == "step_budget_exceeded"
    assert "counter/a" not in writes


def test_deep_recursion_fails_on_the_call_depth_not_on_the_interpreter(contracts: ContractSet, net: Network) -> None:
    shallow = net.tx("store-1", "counter.recurse", {"n": 50})
    deep = net.tx("store-1", "counter.recurse", {"n": 5000})
    receipts, _ = execute(contracts, net, [shallow, deep])
    assert receipts[0].result == {"depth": 50}
    assert (receipts[1].code, receipts[1].message) == ("call_depth_exceeded", "tx nested calls deeper than 100")


def test_config_set_changes_ctx_config_for_later_txs(contracts: ContractSet, net: Network) -> None:
    txs = [
        net.tx("store-1", "counter.add", {"name": "a"}),
        net.tx("operator-1", "config.set", {"key": "counter_step", "value": 5}),
        net.tx("store-1", "counter.config", {"key": "counter_step"}),
        net.tx("store-1", "counter.add", {"name": "a"}),
        net.tx("operator-1", "config.set", {"key": "counter_step", "value": None}),
        net.tx("store-1", "counter.add", {"name": "a"}),
    ]
    receipts, writes = execute(contracts, net, txs)
    assert [r.code for r in receipts] == ["ok"] * 6
    assert [receipts[i].result for i in (0, 2, 3, 5)] == [{"total": 1}, {"value": 5}, {"total": 6}, {"total": 7}]
    assert writes["config"] == {}


def test_config_set_takes_declared_keys_and_values_that_fit_and_leaves_governed_keys_to_governance(
    contracts: ContractSet, net: Network
) -> None:
    txs = [
        net.tx("operator-1", "config.set", {"key": "counter_step", "value": "five"}),
        net.tx("operator-1", "config.set", {"key": "counter_step", "value": 11}),
        net.tx("operator-1", "config.set", {"key": "step_budget", "value": 1_000}),
        net.tx("operator-1", "config.set", {"key": "tax_rates", "value": {"std": 2000}}),
        net.tx("operator-1", "config.set", {"key": "counter_step", "value": -2}),
    ]
    receipts, writes = execute(contracts, net, txs)
    codes = ["bad_config_value", "bad_config_value", "protected_config", "unknown_config_key", "ok"]
    assert [r.code for r in receipts] == codes
    assert receipts[1].message == "counter_step must be an integer in [-10, 10]"
    assert writes["config"] == {"counter_step": -2}


OPERATIONS = st.one_of(
    st.tuples(
        st.just("counter.add"), st.fixed_dictionaries({"name": st.sampled_from("abc"), "amount": st.integers(-5, 5)})
    ),
    st.tuples(st.just("counter.add"), st.fixed_dictionaries({"name": st.sampled_from("abc")})),
    st.tuples(st.just("counter.fail"), st.fixed_dictionaries({"name": st.sampled_from("abc")})),
    st.tuples(st.just("counter.bug"), st.fixed_dictionaries({"name": st.sampled_from("abc")})),
    st.tuples(
        st.just("counter.sum"), st.fixed_dictionaries({"name": st.sampled_from("abc"), "n": st.integers(0, 300)})
    ),
    st.tuples(
        st.just("config.set"), st.fixed_dictionaries({"key": st.just("counter_step"), "value": st.integers(-3, 3)})
    ),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(OPERATIONS, max_size=25))
def test_the_same_tx_sequence_gives_the_same_writes_and_receipts_twice(operations: list[tuple[str, dict]]) -> None:
    net = make_network()
    signers = {"config.set": "operator-1"}
    txs = [net.tx(signers.get(kind, "store-1"), kind, payload) for kind, payload in operations]
    first = execute(load_counter(), net, txs)
    second = execute(load_counter(), net, txs)
    assert first == second
    totals = [r.result["total"] for r in first[0] if r.ok and "total" in r.result]
    assert len(totals) == sum(1 for kind, _ in operations if kind in ("counter.add", "counter.sum"))
