"""Why a contract refuses a tx: a machine-readable code and a human message.

A rule raises `Rejected` (or a subclass); the runtime rolls the tx's writes
back and records a receipt with `ok = False`, the code and the message.
"""

from __future__ import annotations

from ledger.errors import InvalidTransaction


class Rejected(InvalidTransaction):
    """A tx refused by a contract rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StepBudgetExceeded(Rejected):
    """A tx that ran more steps than the budget allows (the same on every node)."""

    def __init__(self, budget: int) -> None:
        super().__init__("step_budget_exceeded", f"tx exceeded the step budget of {budget} steps")
