"""The OMS contracts on the real runtime, one tx per block, for rule tests and the property test.

`Ledger.submit` signs a tx, runs it as the only tx of a new block through
`load_contracts().execute_block` (version pins, `begin_block` hooks, role
checks, savepoints, step metering: everything a node runs) and commits the
block's writes; it returns the receipt as a dict (`ok`, `code`, `message`,
`result`). `begin_block` runs an empty block, to let block time pass.
Configuration changes go through `config.set` like any other tx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts import ContractSet, load_contracts
from contracts.context import BlockContext
from ledger.block import Receipt
from ledger.commitment import compute_commitment
from ledger.state import MemoryState, StateView
from ledger.tx import Tx
from tests.helpers.builders import Network, make_network

BLOCK_MS = 1_000
"""Block time advances this much per block unless told otherwise."""

_LOADED: list[ContractSet] = []


def get_contracts() -> ContractSet:
    """The contract set, loaded once per test process (loading checks and instruments every module)."""
    if not _LOADED:
        _LOADED.append(load_contracts())
    return _LOADED[0]


@dataclass
class Ledger:
    """Committed state plus the block height and time, driven one block at a time."""

    network: Network = field(default_factory=make_network)
    contracts: ContractSet = field(default_factory=get_contracts)
    base: MemoryState = field(default_factory=MemoryState)
    height: int = 0
    time_ms: int = 1_700_000_000_000
    most_steps: int = 0
    """Most steps any one tx took so far."""

    @property
    def state(self) -> StateView:
        """A read view of the committed state."""
        return StateView(self.base)

    @property
    def config(self) -> dict[str, Any]:
        """The effective configuration (defaults overlaid with what is set on the ledger)."""
        return self.contracts.get_config(self.state)

    def run_block(self, txs: list[Tx], advance_ms: int = BLOCK_MS) -> list[Receipt]:
        """Execute and commit one block of `txs`."""
        self.height += 1
        self.time_ms += advance_ms
        view = StateView(self.base)
        block = BlockContext(self.height, self.time_ms, self.network.genesis)
        receipts = self.contracts.execute_block(view, txs, block)
        if txs:
            self.most_steps = max(self.most_steps, self.contracts.meter.used)
        for key, value in view.writes().items():
            if value is None:
                self.base.entries.pop(key, None)
            else:
                self.base.entries[key] = value
        return receipts

    def begin_block(self, advance_ms: int = BLOCK_MS) -> None:
        """An empty block: only the `begin_block` hooks run."""
        self.run_block([], advance_ms)

    def submit(self, signer: str, kind: str, payload: dict[str, Any], advance_ms: int = BLOCK_MS) -> dict[str, Any]:
        [receipt] = self.run_block([self.network.tx(signer, kind, payload)], advance_ms)
        return {"ok": receipt.ok, "code": receipt.code, "message": receipt.message, "result": receipt.result}

    def set_config(self, key: str, value: Any) -> None:
        receipt = self.submit("operator-1", "config.set", {"key": key, "value": value})
        if not receipt["ok"]:
            raise ValueError(f"config.set {key}: {receipt['code']}: {receipt['message']}")

    def commitment(self) -> bytes:
        return compute_commitment(sorted(self.base.entries.items()))
