"""An in-process ledger for testing the OMS rules without the runtime: one tx per block.

`Ledger.submit` checks the signer's role from the module's `ROLES`, runs the
modules' `begin_block` housekeeping, then the rule inside a savepoint, and
returns a receipt-like dict (`ok`, `code`, `message`, `result`); a rejected tx
is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from contracts import allocation, catalogue, fulfilment, inventory, invoicing, orders, payments, returns, review
from contracts.context import BlockContext, TxContext
from contracts.errors import Rejected
from ledger.commitment import compute_commitment
from ledger.state import MemoryState, StateView
from tests.helpers.builders import Network, make_network

DOMAIN_MODULES: tuple[ModuleType, ...] = (
    catalogue,
    inventory,
    orders,
    review,
    allocation,
    payments,
    fulfilment,
    returns,
    invoicing,
)
"""Every module that handles tx kinds, in the order their `begin_block` runs."""

BLOCK_MS = 1_000
"""Block time advances this much per block unless told otherwise."""


def default_config() -> dict[str, Any]:
    config: dict[str, Any] = {}
    for module in DOMAIN_MODULES:
        config.update(getattr(module, "DEFAULTS", {}))
    return config


def find_rule(kind: str) -> tuple[frozenset[str], Any]:
    for module in DOMAIN_MODULES:
        if kind in module.ROLES:
            return module.ROLES[kind], getattr(module, "process_" + kind.replace(".", "_"))
    raise KeyError(kind)


@dataclass
class Ledger:
    """A state view plus the block height and time, driven one tx per block."""

    network: Network = field(default_factory=make_network)
    state: StateView = field(default_factory=lambda: StateView(MemoryState()))
    config: dict[str, Any] = field(default_factory=default_config)
    height: int = 0
    time_ms: int = 1_700_000_000_000

    def begin_block(self, advance_ms: int = BLOCK_MS) -> None:
        self.height += 1
        self.time_ms += advance_ms
        block = BlockContext(self.height, self.time_ms, self.network.genesis)
        for module in DOMAIN_MODULES:
            hook = getattr(module, "begin_block", None)
            if hook is not None:
                self.state.begin()
                hook(self.state, block)
                self.state.commit()

    def submit(self, signer: str, kind: str, payload: dict[str, Any], advance_ms: int = BLOCK_MS) -> dict[str, Any]:
        self.begin_block(advance_ms)
        return self.apply(signer, kind, payload, tx_index=0)

    def apply(self, signer: str, kind: str, payload: dict[str, Any], tx_index: int = 0) -> dict[str, Any]:
        """Run one tx in the current block."""
        if kind == "config.set":
            self.config[payload["key"]] = payload["value"]
            return {"ok": True, "code": "", "message": "", "result": {}}
        tx = self.network.tx(signer, kind, payload)
        identity = self.network.genesis.identity(signer)
        if identity is None:
            raise KeyError(signer)
        roles, rule = find_rule(kind)
        if not roles & identity.roles:
            return {"ok": False, "code": "forbidden_role", "message": f"{signer} may not send {kind}", "result": {}}
        ctx = TxContext(self.height, self.time_ms, tx_index, tx.id, identity, dict(self.config), self.network.genesis)
        self.state.begin()
        try:
            result = rule(self.state, tx, ctx)
        except Rejected as refusal:
            self.state.rollback()
            return {"ok": False, "code": refusal.code, "message": refusal.message, "result": {}}
        self.state.commit()
        return {"ok": True, "code": "", "message": "", "result": result}

    def commitment(self) -> bytes:
        return compute_commitment((key, value) for key, value in self.state.writes().items() if value is not None)
