"""Configuration schema: every ledger-wide setting declares its type, range and default, and who may change it.

A contract module declares its settings in `SETTINGS`, a tuple of `Setting`,
next to its `ROLES` and `PAYLOADS`; the runtime adds its own (step budgets,
call depth) and refuses at load a key declared twice or a default that does
not fit its own spec. A setting's spec is a payload field
(`contracts.payload`) named by the key, with the default as its default, so
a value is checked as a payload field is: its type, its bounds, and the
shape and bounds of nested tables and lists, in one pass.

A change (`config.set`, or a governance proposal of one) names a declared
key, or is refused with `unknown_config_key`; its value fits the key's spec,
or is refused with `bad_config_value` and the rule it breaks (`tax.rates.
standard.NL must be an integer in [0, 10000]`); null restores the default.
So no value reaches a rule that the rule could not read.

A setting is `governed` when it moves money (tax, invoicing), opens the
review gate (the review limits that hold orders for everyone) or bounds the
work of one tx or block (step budgets, allocation limits, batch sizes,
creation limits): only a governance proposal approved by a quorum of
organisations changes it (`contracts.governance`), and `config.set` refuses
it with `protected_config`. An operator sets the other settings alone. A setting that `names_customers`
is kept from API tokens without the customers scopes (`node.api.access`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.errors import Rejected
from contracts.payload import Field, describe, read_value

MAX_DURATION_MS = 366 * 86_400_000
"""Longest duration a setting may hold, in block-time milliseconds (a year)."""


@dataclass(frozen=True)
class Setting:
    """One ledger-wide configuration key."""

    spec: Field
    """The value's type and bounds, named by the key, with the value that holds when none is set as default."""
    governed: bool = False
    """Changed only by a governance proposal approved by a quorum of organisations."""
    names_customers: bool = False
    """Its values name customers (customer hashes, as the blocked list of the review gate): a node shows them,
    and proposes changes to them, only for API tokens with the customers scopes."""


def read_setting(setting: Setting, value: Any) -> Any:
    """`value` checked against the setting's spec; or `bad_config_value`, saying what it must be."""
    try:
        return read_value(setting.spec, value)
    except Rejected as refused:
        raise Rejected("bad_config_value", refused.message) from None


def describe_setting(setting: Setting) -> dict[str, Any]:
    """A setting as plain data: its spec (`contracts.payload.describe`) and whether it is governed."""
    return {**describe(setting.spec), "governed": setting.governed}
