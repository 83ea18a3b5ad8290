"""The OMS contracts on the real runtime, one tx per block, for rule tests and the property test.

`Ledger.submit` signs a tx, runs it as the only tx of a new block through
`load_contracts().execute_block` (version pins, `begin_block` hooks, role
checks, savepoints, step metering: everything a node runs) and commits the
block's writes; it returns the receipt as a dict (`ok`, `code`, `message`,
`result`). `begin_block` runs an empty block, to let block time pass.
Configuration changes go through txs as on a node: `config.set` by the
operator, or for a governed key a governance proposal that the validators'
organisations approve (`set_config`).

`make_shop` is a small retailer on it: SKUs `TEE`, `MUG` and the virtual
`GIFT`, the pickup store `ST1` and the warehouses `WH1`, `WH2` of
organisation `org-0` (run by `store-1`), and `FOREIGN`, a store of `org-1`
(run by `store-2`; `psp-2` is the payment provider of `org-1`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from contracts import ContractSet, load_contracts, queries
from contracts.context import BlockContext
from ledger.block import Receipt
from ledger.commitment import compute_commitment
from ledger.genesis import Identity
from ledger.keys import PrivateKey
from ledger.state import MemoryState, StateView
from ledger.tx import Tx
from tests.helpers.builders import CHAIN_ID, Network, make_network

BLOCK_MS = 1_000
"""Block time advances this much per block unless told otherwise."""

Submit = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""Run one signed tx in a block of its own; its receipt as a dict (`Ledger.submit`, or a test's wrapper of it)."""

CUSTOMER = hashlib.sha256(b"customer:1").hexdigest()
"""The customer reference (as a channel hashes it) of the orders `create` places."""

_LOADED: list[ContractSet] = []


def get_contracts() -> ContractSet:
    """The contract set, loaded once per test process (loading checks and instruments every module)."""
    if not _LOADED:
        _LOADED.append(load_contracts())
    return _LOADED[0]


def make_oms_network(validators: int = 2) -> Network:
    """The default test identities (all of `org-0`) plus a store, `store-2`, and a payment provider, `psp-2`, of
    another organisation, `org-1`; validator `node-<i>` is the one of organisation `org-<i>`."""
    network = make_network(validators=validators)
    keys = {name: PrivateKey.from_seed_text(f"{CHAIN_ID}/{name}") for name in ("store-2", "psp-2")}
    others = (
        Identity("store-2", "org-1", keys["store-2"].public, frozenset({"store"})),
        Identity("psp-2", "org-1", keys["psp-2"].public, frozenset({"payment_provider"})),
    )
    genesis = replace(network.genesis, clients=(*network.genesis.clients, *others))
    return Network(genesis, {**network.keys, **keys})


@dataclass
class Ledger:
    """Committed state plus the block height and time, driven one block at a time."""

    network: Network = field(default_factory=make_oms_network)
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

    def try_tx(self, signer: str, kind: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[bytes, Any]]:
        """Run one tx on top of the committed state as the next block would (without its hooks), commit nothing:
        its receipt and the writes it would make. The signing nonce is left as it was, so what is submitted
        afterwards does not depend on what was tried."""
        nonce = self.network.nonce
        tx = self.network.tx(signer, kind, payload)
        self.network.nonce = nonce
        view = StateView(self.base)
        block = BlockContext(self.height + 1, self.time_ms + BLOCK_MS, self.network.genesis)
        receipt = self.contracts.execute_tx(view, tx, block, 0)
        result = {"ok": receipt.ok, "code": receipt.code, "message": receipt.message, "result": receipt.result}
        return result, dict(view.writes())

    def set_config(self, key: str, value: Any, submit: Submit | None = None) -> None:
        """Change one configuration key as the ledger allows it: `config.set` by `operator-1`, or, for a governed
        key, a proposal by the first validator approved by the others until it is executed (a block per tx)."""
        submit = submit or self.submit
        change = {"key": key, "value": value}
        if not self.contracts.settings[key].governed:
            receipt = submit("operator-1", "config.set", change)
        else:
            first, *others = [validator.id for validator in self.network.genesis.validators]
            receipt = submit(first, "governance.propose", {"action": "config.set", "params": change})
            for validator in others:
                if not receipt["ok"] or receipt["result"]["status"] == "executed":
                    break
                receipt = submit(validator, "governance.approve", {"proposal": receipt["result"]["proposal"]})
        if not receipt["ok"] or receipt["result"].get("status", "executed") != "executed":
            raise ValueError(f"config {key}: {receipt['code']}: {receipt['message'] or receipt['result']}")

    def commitment(self) -> bytes:
        return compute_commitment(sorted(self.base.entries.items()))


def ok(receipt: dict[str, Any]) -> dict[str, Any]:
    assert receipt["ok"], receipt
    result: dict[str, Any] = receipt["result"]
    return result


def refused(receipt: dict[str, Any], code: str) -> None:
    assert not receipt["ok"] and receipt["code"] == code, receipt


def make_shop(validators: int = 2) -> Ledger:
    """A ledger with the catalogue and locations described above, and no stock."""
    ledger = Ledger(network=make_oms_network(validators))
    for sku, price, tax_class, virtual in (
        ("TEE", 1999, "standard", False),
        ("MUG", 899, "reduced", False),
        ("GIFT", 2500, "zero", True),
    ):
        payload = {"sku": sku, "price": price, "currency": "EUR", "tax_class": tax_class, "virtual": virtual}
        ok(ledger.submit("operator-1", "sku.upsert", payload))
    for name, lat, priority, pickup, org in (
        ("ST1", 52_370_000, 50, True, "org-0"),
        ("WH1", 52_090_000, 10, False, "org-0"),
        ("WH2", 51_920_000, 10, False, "org-0"),
        ("FOREIGN", 50_850_000, 90, True, "org-1"),
    ):
        payload = {
            "location": name,
            "type": "store" if pickup else "warehouse",
            "region": "NL",
            "lat": lat,
            "lon": 4_900_000,
            "priority": priority,
            "pickup_allowed": pickup,
            "org": org,
        }
        ok(ledger.submit("operator-1", "location.upsert", payload))
    return ledger


def receive(ledger: Ledger, location: str, sku: str, qty: int, lot: str | None = None) -> dict[str, Any]:
    """Receive goods at a location of `org-0` against a document of its own."""
    line: dict[str, Any] = {"sku": sku, "qty": qty} | ({"lot": lot} if lot else {})
    payload = {"location": location, "lines": [line], "document": f"PO-{ledger.height}"}
    return ok(ledger.submit("store-1", "stock.receive", payload))


def create(ledger: Ledger, ref: str, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Place an order by `channel-1` (delivered in region NL unless told otherwise); the receipt."""
    payload: dict[str, Any] = {"external_ref": ref, "customer_hash": CUSTOMER, "currency": "EUR", "lines": lines}
    payload.setdefault("delivery", {"region": "NL", "lat": 51_930_000, "lon": 4_900_000})
    return ledger.submit("channel-1", "order.create", payload | extra)


def get_order(ledger: Ledger, order_id: str) -> dict[str, Any]:
    """The order as the API shows it (fulfilments in full, invoice numbers)."""
    order = queries.get_order(ledger.state, order_id)
    assert order is not None, order_id
    return order


def pay(ledger: Ledger, order_id: str) -> dict[str, Any]:
    """Capture what the order has due, with a reference of its own."""
    order = get_order(ledger, order_id)
    amount = order["total"] - order["payment"]["cancelled"] - order["payment"]["captured"]
    payload = {"order_id": order_id, "amount": amount, "reference": f"PSP-{order_id}-{ledger.height}"}
    return ok(ledger.submit("channel-1", "payment.capture", payload))


def stock(ledger: Ledger, location: str, sku: str) -> dict[str, Any]:
    return queries.list_inventory(ledger.state, location, sku)[0]
