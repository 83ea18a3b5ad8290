"""The state commitment: incremental updates equal a recomputation from a full dump."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.commitment import StateAccumulator, compute_commitment
from ledger.state import MemoryState
from ledger.store import update_commitment

keys = st.binary(min_size=1, max_size=6)
values = st.binary(max_size=6)
write_batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=8), max_size=8)


@given(st.dictionaries(keys, values, max_size=10), write_batches)
def test_incremental_equals_recomputed(initial: dict[bytes, bytes], batches: list[dict[bytes, bytes | None]]) -> None:
    state = MemoryState(dict(initial))
    acc = StateAccumulator()
    for key, value in initial.items():
        acc.add(key, value)
    for writes in batches:
        update_commitment(acc, state.get_state, writes)
        for key, value in writes.items():
            if value is None:
                state.entries.pop(key, None)
            else:
                state.entries[key] = value
        assert acc.digest() == compute_commitment(state.entries.items())


@given(st.dictionaries(keys, values, min_size=1, max_size=10))
def test_order_does_not_matter_but_content_does(entries: dict[bytes, bytes]) -> None:
    items = list(entries.items())
    assert compute_commitment(items) == compute_commitment(reversed(items))
    key, value = items[0]
    changed = dict(entries)
    changed[key] = value + b"\x00"
    assert compute_commitment(changed.items()) != compute_commitment(items)


def test_key_value_boundary_is_unambiguous() -> None:
    assert compute_commitment([(b"ab", b"c")]) != compute_commitment([(b"a", b"bc")])


def test_accumulator_bytes_round_trip() -> None:
    acc = StateAccumulator()
    acc.add(b"k", b"v")
    assert StateAccumulator.from_bytes(acc.to_bytes()).digest() == acc.digest()
