"""The state commitment: a Merkle tree updated per block equals the tree built from a full dump, node for node,
and proves each entry; its stored records keep their format byte for byte."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.commitment import (
    EMPTY,
    TreeBuilder,
    build_tree,
    combine_subtree_roots,
    compute_commitment,
    compute_leaf,
    compute_leaf_hash,
    compute_path,
    compute_prefix,
    compute_root,
    compute_state_path,
    compute_subtree_root,
    is_valid_state_path,
    node_key,
    update_tree,
)

keys = st.binary(min_size=1, max_size=6)
values = st.binary(max_size=6)
write_batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=8), max_size=8)


def apply(nodes: dict[bytes, bytes], state: dict[bytes, bytes], writes: dict[bytes, bytes | None]) -> bytes:
    """Update the stored tree `nodes` and the state by one block's writes; the new root. The update writes only
    records that change."""
    update = update_tree(nodes.get, writes)
    rewritten = [place for place, record in update.nodes.items() if record is not None and nodes.get(place) == record]
    assert rewritten == [], "a record is written again unchanged"
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


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=40), st.data())
def test_updates_that_delete_rewrite_and_add_keep_the_tree_built_from_scratch(
    initial: dict[bytes, bytes], data: st.DataObject
) -> None:
    state: dict[bytes, bytes] = {}
    nodes: dict[bytes, bytes] = {}
    apply(nodes, state, dict(initial))
    for _ in range(data.draw(st.integers(1, 5), label="blocks")):
        present = sorted(state)
        chosen = data.draw(st.lists(st.sampled_from(present), unique=True), label="existing") if present else []
        writes: dict[bytes, bytes | None] = data.draw(st.dictionaries(keys, st.none() | values, max_size=6))
        for n, key in enumerate(chosen):
            writes[key] = (None, state[key], state[key] + b"+")[n % 3]  # deleted, written unchanged, changed
        root = apply(nodes, state, writes)
        assert root == compute_commitment(state.items())
        assert nodes == built(state)


def test_a_larger_tree_updated_block_by_block_is_the_tree_built_from_scratch() -> None:
    rng = random.Random(24)
    state: dict[bytes, bytes] = {}
    nodes: dict[bytes, bytes] = {}
    apply(nodes, state, {b"order/%d" % n: b"v%d" % n for n in range(3000)})
    for block in range(4):
        existing = rng.sample(sorted(state), 400)
        writes: dict[bytes, bytes | None] = {key: None for key in existing[:150]}
        writes |= {key: state[key] + b"+" for key in existing[150:]}
        writes |= {b"order/new-%d-%d" % (block, n): b"n%d" % n for n in range(300)}
        writes |= {b"never/%d-%d" % (block, n): None for n in range(20)}
        root = apply(nodes, state, writes)
        assert root == compute_commitment(state.items())
        assert nodes == built(state)


def digest(records: dict[bytes, bytes]) -> str:
    """One hash over every (place, record), in place order."""
    hashed = hashlib.sha256()
    for place in sorted(records):
        hashed.update(len(place).to_bytes(1, "big") + place + records[place])
    return hashed.hexdigest()


def test_stored_records_are_those_of_the_format_byte_for_byte() -> None:
    """Pinned from the tree as first released: a node that stores a tree, or a store written by an earlier
    release, reads the same records at the same places."""
    state = {b"entry/%d" % n: b"value %d" % n for n in range(600)}
    nodes = built(state)
    assert compute_commitment(state.items()).hex() == (
        "0455a448a8db680991e049d6d0251f7ebb4fdabdea5c0a0196b5f7f7baa2a06d"
    )
    assert (len(nodes), digest(nodes)) == (1500, "30a0fb8650e1d565fb995e10576d5985473ed0dbf0ecee3070397b874f3f9742")
    writes = {b"entry/%d" % n: (None if n % 3 == 0 else b"changed %d" % n) for n in range(0, 900, 4)}
    root = apply(nodes, dict(state), writes)
    assert root.hex() == "385d4481fc97b09c1fa5c2aae88e8eec9223ea6b0dd3abfc7d0f0f48aed5e1e5"
    assert (len(nodes), digest(nodes)) == (1474, "05a0a4a72887b91f4500ee3aea5a35ec6cfbf790d0165f3a6ef80ed47725c45f")


@given(st.integers(0, 256), st.binary(min_size=32, max_size=32))
def test_a_node_key_is_the_depth_then_the_first_bits_of_the_path(depth: int, path: bytes) -> None:
    bits = "".join(f"{byte:08b}" for byte in path)[:depth]
    bits += "0" * (-len(bits) % 8)
    prefix = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
    assert node_key(depth, path) == depth.to_bytes(2, "big") + prefix


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(keys, values, max_size=60), st.integers(0, 4))
def test_the_subtrees_at_one_depth_combine_to_the_root(state: dict[bytes, bytes], bits: int) -> None:
    leaves = [compute_leaf(key, value) for key, value in state.items()]
    subtrees = [[leaf for leaf in leaves if compute_prefix(leaf[0], bits) == index] for index in range(1 << bits)]
    roots = [(compute_subtree_root(bits, subtree), len(subtree)) for subtree in subtrees]
    assert combine_subtree_roots(roots) == compute_root(leaves)
