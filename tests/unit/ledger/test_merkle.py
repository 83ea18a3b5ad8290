"""Merkle trees: every leaf has a proof, and no proof passes for the wrong leaf, index or root."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.merkle import EMPTY_ROOT, compute_proof, compute_root, hash_leaf, hash_node, is_valid_proof

leaves_st = st.lists(st.binary(min_size=1, max_size=8), min_size=1, max_size=40)


def test_small_trees_by_hand() -> None:
    a, b, c = b"a", b"b", b"c"
    assert compute_root([]) == EMPTY_ROOT
    assert compute_root([a]) == hash_leaf(a)
    assert compute_root([a, b]) == hash_node(hash_leaf(a), hash_leaf(b))
    assert compute_root([a, b, c]) == hash_node(hash_node(hash_leaf(a), hash_leaf(b)), hash_leaf(c))


@given(leaves_st, st.data())
def test_every_leaf_proves(leaves: list[bytes], data: st.DataObject) -> None:
    root = compute_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = compute_proof(leaves, index)
    assert is_valid_proof(leaves[index], index, len(leaves), proof, root)
    assert len(proof) <= max(1, (len(leaves) - 1).bit_length())


@given(leaves_st, st.data())
def test_proof_fails_for_other_leaf_index_or_root(leaves: list[bytes], data: st.DataObject) -> None:
    root = compute_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = compute_proof(leaves, index)
    assert not is_valid_proof(leaves[index] + b"!", index, len(leaves), proof, root)
    assert not is_valid_proof(leaves[index], index, len(leaves), proof, hash_leaf(root))
    if proof:
        assert not is_valid_proof(leaves[index], index, len(leaves), proof[:-1], root)


@given(st.lists(st.binary(min_size=1, max_size=8), min_size=2, max_size=40, unique=True), st.data())
def test_proof_is_bound_to_its_position(leaves: list[bytes], data: st.DataObject) -> None:
    root = compute_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    other = data.draw(st.integers(0, len(leaves) - 1).filter(lambda i: i != index))
    assert not is_valid_proof(leaves[index], other, len(leaves), compute_proof(leaves, index), root)


@given(leaves_st)
def test_changing_any_leaf_changes_the_root(leaves: list[bytes]) -> None:
    root = compute_root(leaves)
    for i in range(len(leaves)):
        changed = list(leaves)
        changed[i] = leaves[i] + b"x"
        assert compute_root(changed) != root


def test_leaf_cannot_pass_as_inner_node() -> None:
    a, b = hash_leaf(b"a"), hash_leaf(b"b")
    assert compute_root([a + b]) != hash_node(a, b)
