"""The contracts on a real LevelDB store through the node's own executor, one tx per block (or many).

`ExecutedLedger.submit` signs a tx (`commit_block` many), builds a block of it with `Executor.build_block` (as a
primary does), certifies it and commits it with `Executor.commit`, so everything a node derives at commit (the
change feed, the list indexes, the money per day) is written as on a node. Block time advances `BLOCK_MS` per block.
`query` answers the demo scenario's reads from the committed state, as the API does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contracts import queries
from ledger.block import Receipt
from ledger.state import StateView
from ledger.store import Store
from ledger.tx import Tx
from node.executor import Executor
from tests.helpers.chain import certify
from tests.helpers.contracts import BLOCK_MS, get_contracts, make_oms_network


class ExecutedLedger:
    """A store, its executor and the test network's keys."""

    def __init__(self, path: Path) -> None:
        self.network = make_oms_network()
        self.store = Store(path)
        self.executor = Executor(self.store, get_contracts(), self.network.genesis)
        self.time_ms = 1_700_000_000_000

    def close(self) -> None:
        self.store.close()

    @property
    def state(self) -> StateView:
        return StateView(self.store)

    def submit(self, signer: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Commit one tx in a block of its own; its receipt as a dict (`ok`, `code`, `message`, `result`)."""
        return self.commit(self.network.tx(signer, kind, payload))

    def commit(self, tx: Tx) -> dict[str, Any]:
        """Commit a signed tx in a block of its own; its receipt as `submit` answers it."""
        self.time_ms += BLOCK_MS
        block = self.executor.build_block(self.store.height + 1, 0, "node-0", self.time_ms, [tx])
        [receipt] = self.executor.commit(block, certify(self.network, block))
        return {"ok": receipt.ok, "code": receipt.code, "message": receipt.message, "result": receipt.result}

    def commit_block(self, txs: list[tuple[str, str, dict[str, Any]]], step_ms: int = BLOCK_MS) -> list[Receipt]:
        """Commit `(signer, kind, payload)` txs in one block, `step_ms` after the last; their receipts."""
        self.time_ms += step_ms
        signed = [self.network.tx(signer, kind, payload) for signer, kind, payload in txs]
        block = self.executor.build_block(self.store.height + 1, 0, "node-0", self.time_ms, signed)
        return self.executor.commit(block, certify(self.network, block))

    def query(self, path: str, params: dict[str, Any] | None) -> Any:
        """A GET of the demo scenario, answered from the committed state."""
        params = params or {}
        state = self.state
        if path.startswith("/v1/orders/"):
            return queries.get_order(state, path.rsplit("/", 1)[1])
        if path == "/v1/inventory":
            return queries.list_inventory(state, params.get("location"), params.get("sku"))
        if path == "/v1/journal":
            return queries.list_journal(state, params.get("location"), params.get("sku"))
        if path == "/v1/invoices":
            return queries.list_invoices(state, params.get("order_id"))
        raise KeyError(path)
