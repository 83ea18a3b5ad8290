"""The configuration schema: every key declared, documented as declared, and changed only as it allows.

The configuration table of `docs/spec/transactions.md` (between the markers)
is rendered from `ContractSet.setting_specs()`; when a declaration changes,
rewrite it with `python -m tests.unit.contracts.test_settings`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts import load_contracts
from contracts.determinism import ContractRefused
from contracts.runtime import CONTRACTS_DIR
from tests.helpers.contracts import Ledger, create, get_contracts, get_order, make_shop, ok, receive, refused
from tests.unit.contracts.test_payload_spec import render_type

DOC = Path(__file__).resolve().parents[3] / "docs" / "spec" / "transactions.md"
"""The transaction reference."""

BEGIN = "<!-- configuration table: generated from the declared SETTINGS, do not edit by hand -->"
END = "<!-- end of configuration table -->"

MALFORMED_TAX_TABLES = [
    ({"standard": 2100}, "tax.rates.standard must be a map of 1-256 keys"),
    ({"standard": {"*": "21%"}}, "tax.rates.standard.* must be an integer in [0, 10000]"),
    ({"standard": {"*": 10_001}}, "tax.rates.standard.* must be an integer in [0, 10000]"),
    ({"standard": {"*": -1}}, "tax.rates.standard.* must be an integer in [0, 10000]"),
    ({"standard": {}}, "tax.rates.standard must be a map of 1-256 keys"),
    ({}, "tax.rates must be a map of 1-32 keys"),
    ([2100], "tax.rates must be a map of 1-32 keys"),
]
"""Tax tables that would have made every order fail, and what the refusal says."""


def render_table(specs: dict[str, dict[str, Any]]) -> str:
    """The configuration table, one row per key in key order, as the reference shows it."""
    rows = ["| key | type | default | changed by | meaning |", "|---|---|---|---|---|"]
    for key, spec in specs.items():
        default = json.dumps(spec["default"], separators=(", ", ": "))
        who = "governance" if spec["governed"] else "operator"
        rows.append(f"| `{key}` | {render_type(spec)} | `{default}` | {who} | {spec['doc']} |")
    return "\n".join([BEGIN, "", *rows, "", END])


def get_documented() -> str:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def rewrite_doc() -> None:
    text = DOC.read_text()
    DOC.write_text(text.replace(get_documented(), render_table(get_contracts().setting_specs())))


def test_the_reference_shows_the_declared_settings() -> None:
    expected = render_table(get_contracts().setting_specs())
    assert get_documented() == expected, "run `python -m tests.unit.contracts.test_settings` to rewrite it"


def test_every_setting_a_rule_reads_is_declared_with_a_default() -> None:
    contracts = get_contracts()
    assert set(contracts.defaults) == set(contracts.settings)
    assert {"tax.rates", "review.max_order_amount", "allocation.max_splits", "step_budget"} <= set(contracts.settings)


def test_money_the_review_gate_and_the_work_of_a_block_are_governed() -> None:
    governed = set(get_contracts().governed_keys())
    assert {key for key in get_contracts().settings if key.startswith(("tax.", "invoicing.", "allocation.max"))} <= (
        governed
    )
    assert {"review.max_order_amount", "review.max_line_qty", "review.repeat_window_ms"} <= governed
    assert {"step_budget", "block_step_budget", "max_call_depth", "allocation.resource_batch"} <= governed
    assert not governed & {"orders.unpaid_timeout_ms", "allocation.unservable", "review.blocked_customers"}


@pytest.mark.parametrize(("table", "message"), MALFORMED_TAX_TABLES)
def test_a_malformed_tax_table_is_refused_and_orders_go_on(table: Any, message: str) -> None:
    ledger = make_shop()
    receive(ledger, "WH1", "TEE", 5)
    change = {"action": "config.set", "params": {"key": "tax.rates", "value": table}}
    receipt = ledger.submit("node-0", "governance.propose", change)
    refused(receipt, "bad_config_value")
    assert receipt["message"].startswith(message), receipt["message"]
    assert ledger.config["tax.rates"] == ledger.contracts.defaults["tax.rates"]
    assert ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))["status"] == "allocated"


def test_a_single_operator_cannot_change_a_money_setting() -> None:
    ledger = make_shop()
    for key, value in (
        ("tax.rates", {"standard": {"*": 0}, "reduced": {"*": 0}, "zero": {"*": 0}}),
        ("tax.prices_include_tax", False),
        ("invoicing.mode", "order"),
        ("review.max_order_amount", 0),
        ("allocation.max_splits", 10),
    ):
        receipt = ledger.submit("operator-1", "config.set", {"key": key, "value": value})
        refused(receipt, "protected_config")
        assert receipt["message"] == f"config {key!r} changes only through a governance proposal"
    assert ledger.config == ledger.contracts.defaults


def test_a_quorum_of_organisations_changes_a_money_setting() -> None:
    ledger = make_shop(validators=4)
    receive(ledger, "WH1", "TEE", 5)
    rates = {"standard": {"*": 2100, "NL": 1900}, "reduced": {"*": 900}, "zero": {"*": 0}}
    change = {"action": "config.set", "params": {"key": "tax.rates", "value": rates}}
    proposal = ok(ledger.submit("node-0", "governance.propose", change))
    assert (proposal["approvals"], proposal["quorum"], proposal["status"]) == (1, 3, "open")
    refused(ledger.submit("node-0", "governance.approve", {"proposal": proposal["proposal"]}), "already_approved")
    assert ok(ledger.submit("node-1", "governance.approve", {"proposal": proposal["proposal"]}))["status"] == "open"
    assert ledger.config["tax.rates"] == ledger.contracts.defaults["tax.rates"], "two of four organisations: no change"
    assert ok(ledger.submit("node-2", "governance.approve", {"proposal": proposal["proposal"]}))["status"] == "executed"
    assert ledger.config["tax.rates"] == rates
    order = get_order(ledger, ok(create(ledger, "A", [{"sku": "TEE", "qty": 1}]))["order_id"])
    assert [line["tax_rate"] for line in order["lines"]] == [1900], "delivered in NL"


def test_an_undeclared_key_or_a_value_out_of_range_is_refused_with_what_it_must_be() -> None:
    ledger = Ledger()
    refused(ledger.submit("operator-1", "config.set", {"key": "tax_rates", "value": 1}), "unknown_config_key")
    receipt = ledger.submit("operator-1", "config.set", {"key": "orders.unpaid_timeout_ms", "value": 0})
    refused(receipt, "bad_config_value")
    assert receipt["message"] == "orders.unpaid_timeout_ms must be an integer in [1, 31622400000]"
    blocked = ledger.submit("operator-1", "config.set", {"key": "review.blocked_customers", "value": ["alice"]})
    assert blocked["message"] == "review.blocked_customers[0] must be a sha256 digest in lowercase hex"
    ok(ledger.submit("operator-1", "config.set", {"key": "orders.unpaid_timeout_ms", "value": 60_000}))
    ok(ledger.submit("operator-1", "config.set", {"key": "orders.unpaid_timeout_ms", "value": None}))
    assert ledger.config["orders.unpaid_timeout_ms"] == ledger.contracts.defaults["orders.unpaid_timeout_ms"]


def test_a_module_whose_default_does_not_fit_its_declaration_is_refused_at_load(tmp_path: Path) -> None:
    source = (CONTRACTS_DIR.parent / "tests/unit/contracts/fixtures_runtime/counter.py").read_text()
    (tmp_path / "counter.py").write_text(source.replace("default=1,", "default=11,"))
    fixtures = CONTRACTS_DIR.parent / "tests/unit/contracts/fixtures_runtime"
    with pytest.raises(ContractRefused, match="the default of config key 'counter_step' does not fit"):
        load_contracts(("governance", "counter"), search_path=(tmp_path, fixtures, CONTRACTS_DIR))


if __name__ == "__main__":
    rewrite_doc()
