"""Binary Merkle trees with inclusion proofs (RFC 6962 shape).

Leaves are hashed with a 0x00 prefix and inner nodes with 0x01, so a leaf can
never pass for an inner node. A tree of n leaves splits at the largest power
of two below n, which gives every leaf a proof of at most ceil(log2 n) hashes.
The root of no leaves is sha256 of the empty string.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.encoding import sha256

EMPTY_ROOT = sha256(b"")
"""Root of a tree with no leaves."""


def hash_leaf(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def hash_node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def compute_root(leaves: Sequence[bytes]) -> bytes:
    """Merkle root over the given leaf data."""
    if not leaves:
        return EMPTY_ROOT
    return _root_of_hashes([hash_leaf(leaf) for leaf in leaves])


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return hash_node(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def compute_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf `index`: sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} out of range for {len(leaves)} leaves")
    hashes = [hash_leaf(leaf) for leaf in leaves]
    path: list[bytes] = []
    _collect_path(hashes, index, path)
    return path


def _collect_path(hashes: Sequence[bytes], index: int, path: list[bytes]) -> None:
    if len(hashes) == 1:
        return
    k = _split(len(hashes))
    if index < k:
        _collect_path(hashes[:k], index, path)
        path.append(_root_of_hashes(hashes[k:]))
    else:
        _collect_path(hashes[k:], index - k, path)
        path.append(_root_of_hashes(hashes[:k]))


def is_valid_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Check that `leaf` is leaf `index` of a `size`-leaf tree with `root`."""
    if not 0 <= index < size:
        return False
    try:
        computed = _root_from_path(hash_leaf(leaf), index, size, list(proof))
    except IndexError:
        return False
    return computed == root


def _root_from_path(node: bytes, index: int, size: int, proof: list[bytes]) -> bytes:
    if size == 1:
        if proof:
            raise IndexError("proof too long")
        return node
    k = _split(size)
    sibling = proof.pop()
    if index < k:
        return hash_node(_root_from_path(node, index, k, proof), sibling)
    return hash_node(sibling, _root_from_path(node, index - k, size - k, proof))
