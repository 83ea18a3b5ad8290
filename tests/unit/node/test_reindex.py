"""A node that joined by state sync rebuilds the lists and the money per day that its blocks would have written.

Two LevelDB stores run the real contracts through the real executor: `full`
commits every block of a retailer's two days (orders placed, paid, partly
cancelled, cancelled by the ledger for want of payment, shipped from two
organisations' locations, delivered, returned, credited and refunded);
`synced` loads `full`'s state at the end (as state sync does) and rebuilds.
Their order index entries, per-day totals and orders and analytics totals must
be the same bytes, and stay the same as both commit the blocks that follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts import ContractSet, load_contracts
from ledger.block import Block
from ledger.encoding import decode, encode
from ledger.store import Head, Store
from node.executor import Executor
from node.reindex import mark_rebuild, needs_rebuild, rebuild_derived
from tests.helpers.builders import Network
from tests.helpers.chain import certify
from tests.helpers.contracts import make_oms_network

DAY_MS = 86_400_000

DERIVED = (b"o/", b"om/", b"fd/", b"fo/", b"lt/", b"fb/", b"ls/", b"an/")
"""Prefixes of the order lists and the last changes of orders, the day totals, the orders of each day, the lot index,
the fulfilment backlog per location, the SKUs below their safety stock, and the analytics totals."""


@dataclass
class Chain:
    network: Network
    full: Executor
    time_ms: int

    def commit(self, signer: str, kind: str, payload: dict[str, Any], advance_ms: int = 1_000) -> dict[str, Any]:
        """One tx in a block of its own; its result (the tx must succeed)."""
        self.time_ms += advance_ms
        height = self.full.store.height + 1
        tx = self.network.tx(signer, kind, payload)
        block = self.full.build_block(height, 0, "node-0", self.time_ms, [tx])
        (receipt,) = self.full.commit(block, certify(self.network, block))
        assert receipt.ok, (kind, receipt.code, receipt.message)
        return dict(receipt.result)

    def last_block(self) -> Block:
        block = self.full.store.get_block(self.full.store.height)
        assert block is not None
        return block

    def fulfilment(self, order_id: str) -> str:
        raw = self.full.store.get_state(f"order/{order_id}".encode())
        assert raw is not None
        return str(decode(raw)["fulfilments"][-1])


def place(chain: Chain, ref: str, sku: str, qty: int, terms: str = "on_account") -> str:
    payload = {
        "external_ref": ref,
        "customer_hash": hashlib.sha256(ref.encode()).hexdigest(),
        "currency": "EUR",
        "payment_terms": terms,
        "lines": [{"sku": sku, "qty": qty}],
        "delivery": {"region": "NL", "lat": 52_000_000, "lon": 4_900_000},
    }
    return str(chain.commit("channel-1", "order.create", payload)["order_id"])


def ship(chain: Chain, order_id: str, by: str = "store-1") -> str:
    fulfilment = chain.fulfilment(order_id)
    chain.commit(by, "fulfilment.pick", {"fulfilment_id": fulfilment})
    chain.commit(by, "fulfilment.ship", {"fulfilment_id": fulfilment, "carrier": "PostNL", "tracking": order_id})
    return fulfilment


def return_one(chain: Chain, order_id: str) -> list[str]:
    """Deliver the order, take one unit back; the credit notes."""
    chain.commit("operator-1", "fulfilment.deliver", {"fulfilment_id": chain.fulfilment(order_id)})
    request = {"order_id": order_id, "lines": [{"sku": "TEE", "qty": 1}], "reference": f"RMA-{order_id}"}
    returned = chain.commit("channel-1", "return.request", request)
    received = chain.commit("store-1", "return.receive", {"return_id": returned["return_id"], "location": "WH1"})
    return list(received["credit_notes"])


def derived(store: Store) -> dict[bytes, bytes]:
    return {key: value for prefix in DERIVED for key, value in store.scan_derived(prefix, prefix[:-1] + b"0")}


def run_two_days(chain: Chain) -> dict[str, str]:
    """The orders of a retailer's two days, by what became of them (the unpaid prepaid one is cancelled by the
    ledger, its payment time over, when the second day begins)."""
    setup = [
        ("operator-1", "sku.upsert", {"sku": "TEE", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
        ("operator-1", "sku.upsert", {"sku": "MUG", "price": 899, "currency": "EUR", "tax_class": "reduced"}),
        (
            "store-1",
            "stock.receive",
            {"location": "WH1", "lines": [{"sku": "TEE", "qty": 20, "lot": "L1"}], "document": "PO-1"},
        ),
        ("store-2", "stock.receive", {"location": "FOREIGN", "lines": [{"sku": "MUG", "qty": 5}], "document": "PO-2"}),
    ]
    for name, org in (("WH1", "org-0"), ("FOREIGN", "org-1")):
        place_payload = {"location": name, "type": "warehouse", "org": org, "region": "NL", "lat": 52_000_000}
        chain.commit("operator-1", "location.upsert", {**place_payload, "lon": 4_900_000})
    for signer, kind, payload in setup:
        chain.commit(signer, kind, payload)
    orders = {
        "returned": place(chain, "A", "TEE", 2),
        "refunded": place(chain, "B", "TEE", 2, terms="prepaid"),
        "foreign": place(chain, "C", "MUG", 1),
        "partly_cancelled": place(chain, "D", "TEE", 3),
        "cancelled": place(chain, "E", "TEE", 1),
        "timed_out": place(chain, "F", "TEE", 1, terms="prepaid"),
    }
    paid = chain.commit(
        "channel-1", "payment.capture", {"order_id": orders["refunded"], "amount": 2 * 1999, "reference": "PSP-B"}
    )
    assert paid["status"] == "released"
    chain.commit(
        "channel-1", "order.cancel", {"order_id": orders["partly_cancelled"], "lines": [{"line": 0, "qty": 1}]}
    )
    chain.commit("channel-1", "order.cancel", {"order_id": orders["cancelled"], "reason": "changed mind"})
    ship(chain, orders["returned"])
    ship(chain, orders["foreign"], by="store-2")
    chain.time_ms += DAY_MS
    return_one(chain, orders["returned"])
    ship(chain, orders["refunded"])
    (note,) = return_one(chain, orders["refunded"])
    refund = {"order_id": orders["refunded"], "amount": 1999, "reference": "PSP-B-R", "credit_note": note}
    chain.commit("channel-1", "payment.refund", refund)
    chain.commit("store-2", "stock.safety", {"location": "FOREIGN", "sku": "MUG", "qty": 1_000})
    return orders


@pytest.fixture(scope="module")
def contracts() -> ContractSet:
    return load_contracts()


@pytest.fixture
def chain(tmp_path: Path, contracts: ContractSet) -> Iterator[Chain]:
    network = make_oms_network()
    full = Executor(Store(tmp_path / "full"), contracts, network.genesis)
    yield Chain(network, full, network.genesis.genesis_time_ms)
    full.store.close()


def load_snapshot(chain: Chain, path: Path, contracts: ContractSet, *extra: tuple[bytes, bytes]) -> Executor:
    """A store loaded with `full`'s state at its head (and `extra` entries), marked for a rebuild as a node
    marks it."""
    synced = Executor(Store(path), contracts, chain.network.genesis)
    block = chain.last_block()
    head = Head(block.height, block.hash(), block.header.state_root, block.header.timestamp_ms)
    mark_rebuild(synced.store)
    entries = sorted([*chain.full.store.iter_state(), *extra])
    synced.store.load_state(iter(entries), head, block, chain.full.store.get_certificate(block.height))
    return synced


def test_a_synced_store_rebuilds_the_lists_and_money_per_day_of_a_full_one(
    chain: Chain, tmp_path: Path, contracts: ContractSet
) -> None:
    orders = run_two_days(chain)
    synced = load_snapshot(chain, tmp_path / "synced", contracts)
    assert needs_rebuild(synced.store) and derived(synced.store) == {}
    report = rebuild_derived(synced.store)
    assert (report.orders, report.documents) == (len(orders), 5)  # 3 invoices, 2 credit notes
    assert report.movements == sum(1 for _ in chain.full.store.scan_state(b"journal/"))
    assert not needs_rebuild(synced.store)
    expected = derived(chain.full.store)
    assert {key[:3] for key in expected} >= {b"o/*", b"o/o", b"om/", b"fd/", b"fo/", b"lt/", b"fb/", b"ls/"}
    assert any(b"org-1" in key for key in expected), "an order served by another organisation is in its lists"
    assert derived(synced.store) == expected

    ship(chain, place(chain, "G", "TEE", 1))
    ship(chain, orders["partly_cancelled"])
    for height in range(synced.store.height + 1, chain.full.store.height + 1):
        block = chain.full.store.get_block(height)
        assert block is not None
        synced.commit(block, certify(chain.network, block))
    assert derived(synced.store) == derived(chain.full.store)
    synced.store.close()


def test_a_rebuild_cut_short_runs_again_to_the_same_entries(
    chain: Chain, tmp_path: Path, contracts: ContractSet
) -> None:
    """A node stopped during the rebuild finds the mark at its next start and rebuilds: the day totals are
    written afresh, not added twice."""
    run_two_days(chain)
    synced = load_snapshot(chain, tmp_path / "synced", contracts)
    rebuild_derived(synced.store)
    mark_rebuild(synced.store)
    assert needs_rebuild(synced.store)
    rebuild_derived(synced.store)
    assert derived(synced.store) == derived(chain.full.store)
    synced.store.close()


def test_a_record_this_node_cannot_read_is_left_out_of_the_lists_not_fatal(
    chain: Chain, tmp_path: Path, contracts: ContractSet
) -> None:
    run_two_days(chain)
    other_shape = (b"order/SO-ELSEWHERE", encode({"order_id": "SO-ELSEWHERE", "state": "new"}))
    not_msgpack = (b"order/SO-GARBLED", b"\xc1")
    synced = load_snapshot(chain, tmp_path / "synced", contracts, other_shape, not_msgpack)
    report = rebuild_derived(synced.store)
    assert report.skipped == 2 and not needs_rebuild(synced.store)
    assert derived(synced.store) == derived(chain.full.store)
    synced.store.close()


def test_lists_of_the_earlier_layout_are_deleted_and_rebuilt_when_the_node_starts(chain: Chain) -> None:
    """An entry per order and list, each order's last change as a map and its part of the analytics, as a node
    wrote them before lists kept an entry per block: found, deleted and rebuilt to what the blocks give."""
    orders = run_two_days(chain)
    store = chain.full.store
    expected = derived(store)
    assert not needs_rebuild(store)
    earlier: dict[bytes, bytes | None] = {}
    for order_id in orders.values():
        for key in (b"o/*\x00created\x00\x00" + bytes(8) + b"\x00" + order_id.encode(), b"om/" + order_id.encode()):
            earlier[key] = b"" if key.startswith(b"o/") else encode({"keys": [], "orgs": [], "updated_ms": 0})
        earlier[b"am/" + order_id.encode()] = encode([])
    store.write_derived(earlier)
    assert needs_rebuild(store)
    rebuild_derived(store)
    assert not needs_rebuild(store)
    assert derived(store) == expected
    assert not list(store.scan_derived(b"am/", b"am0"))
