"""The deterministic rules of the ledger and the runtime that loads, checks and runs them.

The node needs only `load_contracts()` and the `ContractSet` it returns
(`execute_block`, `required_roles`, `versions`); see `contracts.runtime`.
"""

from contracts.determinism import ContractRefused
from contracts.runtime import (
    CONTRACT_MODULES,
    ContractSet,
    ContractVersionMismatch,
    load_contracts,
)

__all__ = [
    "CONTRACT_MODULES",
    "ContractRefused",
    "ContractSet",
    "ContractVersionMismatch",
    "load_contracts",
]
