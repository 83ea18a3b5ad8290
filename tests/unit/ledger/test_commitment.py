"""The state commitment: a Merkle tree updated per block equals the tree built from a full dump, node for node,
and proves each entry."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.commitment import (
    EMPTY,
    TreeBuilder,
    build_tree,
    compute_commitment,
    compute_leaf,
    compute_leaf_hash,
    compute_path,
    compute_root,
    compute_state_path,
    is_valid_state_path,
    update_tree,
)

keys = st.binary(min_size=1, max_size=6)
values = st.binary(max_size=6)
write_batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=8), max_size=8)


def apply(nodes: dict[bytes, bytes], state: dict[bytes, bytes], writes: dict[bytes, bytes | None]) -> bytes:
    """Update the stored tree `nodes` and the state by one block's writes; the new root."""
    update = update_tree(nodes.get, writes)
    for place, record in update.nodes.items():
        if record is None:
            nodes.pop(place, None)
        else:
            nodes[place] = record
    for key, value in writes.items():
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return update.root


def built(state: dict[bytes, bytes]) -> dict[bytes, bytes]:
    nodes: dict[bytes, bytes | None] = {}
    build_tree((compute_leaf(key, value) for key, value in state.items()), nodes)
    return {place: record for place, record in nodes.items() if record is not None}


class SpillEarly(TreeBuilder):
    SPILL_AT = 3


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, values, max_size=200))
def test_the_spooling_builder_builds_the_same_tree(state: dict[bytes, bytes]) -> None:
    spooled: dict[bytes, bytes | None] = {}
    with SpillEarly() as builder:
        for key, value in state.items():
            builder.add(key, value)
        root = builder.finish(spooled)
    assert root == compute_root(compute_leaf(key, value) for key, value in state.items())
    assert {place: record for place, record in spooled.items() if record is not None} == built(state)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=10), write_batches)
def test_a_tree_updated_block_by_block_is_the_tree_built_from_scratch(
    initial: dict[bytes, bytes], batches: list[dict[bytes, bytes | None]]
) -> None:
    state: dict[bytes, bytes] = {}
    nodes: dict[bytes, bytes] = {}
    apply(nodes, state, dict(initial))
    for writes in batches:
        root = apply(nodes, state, writes)
        assert root == compute_commitment(state.items())
        assert nodes == built(state), "no stale or missing node is left behind"
        for key, value in state.items():
            siblings = compute_state_path(nodes.get, key)
            assert siblings is not None and is_valid_state_path(key, value, siblings, root)


def test_an_empty_state_has_the_empty_root_and_deleting_everything_returns_to_it() -> None:
    assert compute_commitment([]) == EMPTY
    state: dict[bytes, bytes] = {}
    nodes: dict[bytes, bytes] = {}
    entries = {f"order/{n}".encode(): b"v%d" % n for n in range(50)}
    assert apply(nodes, state, dict(entries)) != EMPTY
    assert apply(nodes, state, dict.fromkeys(entries)) == EMPTY
    assert nodes == {}


def test_one_entry_is_its_own_leaf() -> None:
    assert compute_commitment([(b"k", b"v")]) == compute_leaf_hash(compute_path(b"k"), b"v")


@given(st.dictionaries(keys, values, min_size=1, max_size=20), st.randoms(use_true_random=False))
def test_order_does_not_matter_but_content_does(entries: dict[bytes, bytes], rng: random.Random) -> None:
    items = list(entries.items())
    rng.shuffle(items)
    assert compute_commitment(items) == compute_commitment(sorted(entries.items()))
    key = items[0][0]
    changed = {**entries, key: entries[key] + b"!"}
    assert compute_commitment(changed.items()) != compute_commitment(entries.items())


def test_a_state_path_proves_only_its_own_entry() -> None:
    state = {f"stock/LOC-{n}/SKU".encode(): b"%d" % n for n in range(200)}
    nodes = built(state)
    root = compute_commitment(state.items())
    key = b"stock/LOC-7/SKU"
    siblings = compute_state_path(nodes.get, key)
    assert siblings is not None and is_valid_state_path(key, b"7", siblings, root)
    assert not is_valid_state_path(key, b"8", siblings, root)
    assert not is_valid_state_path(b"stock/LOC-8/SKU", b"7", siblings, root)
    assert not is_valid_state_path(key, b"7", siblings[1:], root)
    assert not is_valid_state_path(key, b"7", (*siblings, EMPTY), root)
    for index in range(len(siblings)):
        flipped = bytes([siblings[index][0] ^ 1]) + siblings[index][1:]
        assert not is_valid_state_path(key, b"7", (*siblings[:index], flipped, *siblings[index + 1 :]), root)
    assert compute_state_path(nodes.get, b"stock/LOC-999/SKU") is None


def test_key_value_boundary_is_unambiguous() -> None:
    assert compute_commitment([(b"ab", b"c")]) != compute_commitment([(b"a", b"bc")])
