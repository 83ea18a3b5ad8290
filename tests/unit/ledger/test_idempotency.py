"""Idempotency keys in the world state, through the real contract runtime: one action per signer and keyed nonce,
whatever the tx's id; a repeat answers the first tx, another request under the key is a conflict."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ledger.idempotency import (
    DUPLICATE_REQUEST,
    IDEMPOTENCY_CONFLICT,
    KEEP_MS,
    PRUNE_MAX,
    derive_keyed_nonce,
    is_keyed,
)
from ledger.keys import PrivateKey
from ledger.tx import Tx, make_tx
from tests.helpers.contracts import Ledger, make_shop

SKU = {"sku": "HAT", "price": 500, "currency": "EUR", "tax_class": "standard"}


def keyed_tx(ledger: Ledger, key: str, payload: dict[str, Any], valid_until: int = 5_000) -> Tx:
    """`sku.upsert` of `operator-1` under `key`; another `valid_until` makes another tx id for the same request."""
    network = ledger.network
    signing_key: PrivateKey = network.keys["operator-1"]
    nonce = derive_keyed_nonce("operator-1", key)
    return make_tx(
        network.genesis.chain_id, "sku.upsert", "operator-1", nonce, payload, signing_key, valid_until=valid_until
    )


@given(st.text(max_size=40), st.text(max_size=200))
def test_a_keyed_nonce_is_negative_and_the_same_for_the_same_signer_and_key(signer: str, key: str) -> None:
    nonce = derive_keyed_nonce(signer, key)
    assert is_keyed(nonce) and nonce == derive_keyed_nonce(signer, key)
    assert nonce != derive_keyed_nonce(signer + "x", key)


def test_the_same_request_signed_twice_under_one_key_is_one_action() -> None:
    ledger = make_shop()
    first, second = keyed_tx(ledger, "k1", SKU, 5_000), keyed_tx(ledger, "k1", SKU, 5_001)
    assert first.id != second.id
    [done] = ledger.run_block([first])
    assert done.ok
    [repeat] = ledger.run_block([second])
    assert (repeat.ok, repeat.code, repeat.result) == (False, DUPLICATE_REQUEST, {"tx_id": first.id.hex()})


def test_another_request_under_a_used_key_is_a_conflict_and_changes_nothing() -> None:
    ledger = make_shop()
    ledger.run_block([keyed_tx(ledger, "k1", SKU)])
    before = ledger.state.get("sku/HAT")
    [other] = ledger.run_block([keyed_tx(ledger, "k1", SKU | {"price": 900})])
    assert (other.ok, other.code) == (False, IDEMPOTENCY_CONFLICT)
    assert ledger.state.get("sku/HAT") == before


def test_two_txs_of_one_key_in_one_block_run_once() -> None:
    ledger = make_shop()
    first, second = keyed_tx(ledger, "k1", SKU, 5_000), keyed_tx(ledger, "k1", SKU | {"price": 1}, 5_001)
    done, other = ledger.run_block([first, second])
    assert done.ok and other.code == IDEMPOTENCY_CONFLICT
    assert ledger.state.get("sku/HAT")["price"] == 500


def test_a_refused_first_request_stays_refused_for_its_key() -> None:
    ledger = make_shop()
    bad = SKU | {"currency": "??"}
    [refused] = ledger.run_block([keyed_tx(ledger, "k1", bad, 5_000)])
    assert not refused.ok and refused.code not in (DUPLICATE_REQUEST, IDEMPOTENCY_CONFLICT)
    [repeat] = ledger.run_block([keyed_tx(ledger, "k1", bad, 5_001)])
    assert repeat.code == DUPLICATE_REQUEST


def test_txs_without_a_key_share_nothing() -> None:
    ledger = make_shop()
    first, second = (ledger.network.tx("operator-1", "sku.upsert", SKU) for _ in range(2))
    assert not is_keyed(first.nonce)
    assert [receipt.ok for receipt in ledger.run_block([first, second])] == [True, True]


def records_left(ledger: Ledger, nonces: list[int]) -> int:
    return sum(ledger.state.get(f"idem/operator-1/{nonce}") is not None for nonce in nonces)


def test_a_key_is_free_again_once_it_expired() -> None:
    ledger = make_shop()
    ledger.run_block([keyed_tx(ledger, "k1", SKU, 5_000)])
    [again] = ledger.run_block([keyed_tx(ledger, "k1", SKU | {"price": 700}, 6_000)], advance_ms=KEEP_MS)
    assert again.ok and ledger.state.get("sku/HAT")["price"] == 700


def test_expired_records_are_pruned_a_bounded_number_per_block() -> None:
    ledger = make_shop()
    count = PRUNE_MAX + 5
    txs = [keyed_tx(ledger, f"k{i}", SKU | {"sku": f"S{i}"}) for i in range(count)]
    ledger.run_block(txs)
    nonces = [tx.nonce for tx in txs]
    ledger.begin_block(advance_ms=KEEP_MS + 60_000)
    left = [records_left(ledger, nonces)]
    while left[-1] and len(left) < 100:
        ledger.begin_block()
        left.append(records_left(ledger, nonces))
    assert left[-1] == 0 and count - PRUNE_MAX in left
    assert all(before - after <= PRUNE_MAX for before, after in pairwise(left))
