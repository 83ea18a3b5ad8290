"""Idempotency keys expire: a retry within a day answers as the first request, after it the key is free, and
expired keys are swept a bounded number at a time, reading only what is due. On a LevelDB store, with a clock
the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.store import Store
from node.idempotency import KEEP_MS, IdempotencyKeys

HOUR_MS = 3_600_000


class FakeClock:
    def __init__(self) -> None:
        self.now_ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "store")
    yield store
    store.close()


def kept_keys(store: Store) -> list[bytes]:
    return [key for key, _ in store.scan_local(b"idem/", b"idem0")]


def due_entries(store: Store) -> int:
    return len(list(store.scan_local(b"idem-due/", b"idem-due0")))


def test_a_key_answers_as_its_first_use_for_a_day_then_is_free(store: Store) -> None:
    clock = FakeClock()
    keys = IdempotencyKeys(store, clock)
    first = keys.remember("channel-1", "web-1", b"first", [b"tx-1"], 100)
    assert first["expires_ms"] == clock.now_ms + KEEP_MS
    clock.now_ms += KEEP_MS - 1
    assert keys.recall("channel-1", "web-1") == first
    assert keys.remember("channel-1", "web-1", b"other", [b"tx-2"], 200) == first, "the first answer stands"
    assert keys.recall("channel-2", "web-1") is None, "keys are per identity"
    clock.now_ms += 1
    assert keys.recall("channel-1", "web-1") is None
    again = keys.remember("channel-1", "web-1", b"other", [b"tx-2"], 200)
    assert (again["request"], again["tx_ids"], again["valid_until"]) == (b"other", [b"tx-2"], 200)
    assert keys.recall("channel-1", "web-1") == again


def test_expired_keys_are_swept_oldest_first_a_bounded_number_per_write(store: Store) -> None:
    clock = FakeClock()
    keys = IdempotencyKeys(store, clock)
    for n in range(5):
        keys.remember("channel-1", f"early-{n}", b"r", [b"t"], 1)
    clock.now_ms += 10 * HOUR_MS
    for n in range(3):
        keys.remember("channel-1", f"late-{n}", b"r", [b"t"], 1)
    assert len(kept_keys(store)) == due_entries(store) == 8
    clock.now_ms += KEEP_MS - 10 * HOUR_MS
    assert keys.sweep(limit=2) == 2, "a sweep reads only what is due, at most its limit"
    assert len(kept_keys(store)) == 6
    assert keys.sweep() == 3
    assert sorted(kept_keys(store)) == [f"idem/channel-1/late-{n}".encode() for n in range(3)]
    assert keys.sweep() == 0
    clock.now_ms += 10 * HOUR_MS
    keys.remember("channel-1", "next", b"r", [b"t"], 1)
    assert kept_keys(store) == [b"idem/channel-1/next"] and due_entries(store) == 1, "each write sweeps what is due"


def test_a_key_used_again_after_it_expired_outlives_the_sweep_of_its_first_use(store: Store) -> None:
    clock = FakeClock()
    keys = IdempotencyKeys(store, clock)
    keys.remember("channel-1", "web-1", b"first", [b"tx-1"], 1)
    clock.now_ms += KEEP_MS
    second = keys.remember("channel-1", "web-1", b"again", [b"tx-2"], 2)
    assert second["request"] == b"again"
    assert due_entries(store) == 1, "the sweep took the first use's index entry, and left the new record"
    assert keys.recall("channel-1", "web-1") == second
