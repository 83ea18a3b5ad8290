"""The state commitment: a sparse Merkle tree over the world state, which proves single entries.

Each state entry sits at the path `sha256(key)` (256 bits) of a binary tree;
its leaf hash is `sha256(0x00 || path || sha256(value))`. The tree is the
binary trie of all paths with every subtree that holds one entry replaced by
that entry's leaf (so an entry sits just below the point where its path
parts from every other, about log2(n) levels down), an empty subtree hashes
to 32 zero bytes, and an inner node to `sha256(0x01 || left || right)`. The
shape is a function of the set of keys alone, so every node computes the
same root from the same state whatever the order of writes; the 32-byte root
is the header's `state_root`. docs/adr/0013-state-commitment-merkle-tree.md
records why it replaced the additive hash of ADR 0002.

A node keeps the tree's nodes beside the state (`Store`, keyed by their
place: depth and path prefix, `node_key`) and updates it per block from the
block's writes alone (`update_tree`): a write costs the nodes on its path,
read and hashed again. The proof of an entry is the sibling hashes on its
path from the root (`compute_state_path`); whoever holds the key, the value
and a certified state root checks it (`is_valid_state_path`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, NamedTuple, Protocol

EMPTY = bytes(32)
"""The hash of an empty subtree, and the root of an empty state."""

DEPTH = 256
"""Bits of a path."""

_LEAF = b"\x00"
_INNER = b"\x01"

ReadNode = Callable[[bytes], "bytes | None"]
"""Reads the stored record of a tree node by its `node_key` (None: no node there, an empty subtree)."""


class NodeSink(Protocol):
    """Where new node records go (None: the node there is gone)."""

    def __setitem__(self, key: bytes, record: bytes | None) -> None: ...


class _Node(NamedTuple):
    """A node while the tree is updated: its hash, and its stored record (empty bytes for an empty subtree, or
    for one left untouched and not read)."""

    hash: bytes
    record: bytes

    @property
    def is_leaf(self) -> bool:
        return self.record[:1] == _LEAF

    @property
    def is_inner(self) -> bool:
        return self.record[:1] == _INNER


_EMPTY_NODE = _Node(EMPTY, b"")


@dataclass(frozen=True)
class TreeUpdate:
    """A block's change of the tree: the new root, and the node records to write (None: delete)."""

    root: bytes
    nodes: dict[bytes, bytes | None] = field(default_factory=dict)


def compute_path(key: bytes) -> bytes:
    """Where the entry of `key` lies in the tree."""
    return hashlib.sha256(key).digest()


def compute_leaf_hash(path: bytes, value: bytes) -> bytes:
    """The leaf of the entry at `path` holding `value`."""
    return hashlib.sha256(_LEAF + path + hashlib.sha256(value).digest()).digest()


def _inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_INNER + left + right).digest()


def _bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def node_key(depth: int, path: bytes) -> bytes:
    """The place of the node at `depth` on `path`: the depth, then the path's first `depth` bits."""
    size, spare = (depth + 7) >> 3, depth & 7
    prefix = bytearray(path[:size])
    if spare:
        prefix[-1] &= (0xFF << (8 - spare)) & 0xFF
    return depth.to_bytes(2, "big") + bytes(prefix)


def _with_bit(path: bytes, depth: int, bit: int) -> bytes:
    """`path` with its bit at `depth` set to `bit` (a path into that child of the node above)."""
    index, mask = depth >> 3, 1 << (7 - (depth & 7))
    byte = path[index] | mask if bit else path[index] & ~mask
    return path[:index] + bytes([byte]) + path[index + 1 :]


def _leaf_node(path: bytes, leaf: bytes) -> _Node:
    return _Node(leaf, _LEAF + path + leaf)


def _inner_node(left: bytes, right: bytes) -> _Node:
    return _Node(_inner_hash(left, right), _INNER + left + right)


def _load(read: ReadNode, depth: int, path: bytes, known: bytes | None = None) -> _Node:
    """The node at `depth` on `path`; `known` is its hash as its parent's record gives it, so that a node is
    hashed once per update (when it changes), and an empty child is not read at all."""
    if known == EMPTY:
        return _EMPTY_NODE
    record = read(node_key(depth, path))
    if record is None:
        return _EMPTY_NODE
    if record[:1] == _LEAF:
        return _Node(record[33:], record)
    return _Node(known or _inner_hash(record[1:33], record[33:]), record)


def _build(out: NodeSink, depth: int, path: bytes, leaves: list[tuple[bytes, bytes]]) -> _Node:
    """The subtree at `depth` on `path` holding exactly `leaves` (sorted by path), its records sent to `out`."""
    place = node_key(depth, path)
    if not leaves:
        out[place] = None
        return _EMPTY_NODE
    if len(leaves) == 1:
        node = _leaf_node(*leaves[0])
    else:
        split = next((i for i, (p, _) in enumerate(leaves) if _bit(p, depth)), len(leaves))
        left = _build(out, depth + 1, _with_bit(path, depth, 0), leaves[:split])
        right = _build(out, depth + 1, _with_bit(path, depth, 1), leaves[split:])
        node = _inner_node(left.hash, right.hash)
    out[place] = node.record
    return node


def _join(read: ReadNode, out: NodeSink, depth: int, path: bytes, left: _Node, right: _Node) -> _Node:
    """The node above `left` and `right`: a lone leaf under an empty sibling moves up into its parent's place."""
    place = node_key(depth, path)
    for side, alone, other in ((0, left, right), (1, right, left)):
        if other.hash != EMPTY:
            continue
        if alone.hash == EMPTY:
            out[place] = None
            return _EMPTY_NODE
        child = _with_bit(path, depth, side)
        if not alone.record:  # untouched: read it to see whether it is a leaf
            alone = _load(read, depth + 1, child, alone.hash)
        if alone.is_leaf:
            out[node_key(depth + 1, child)] = None
            out[place] = alone.record
            return alone
    node = _inner_node(left.hash, right.hash)
    out[place] = node.record
    return node


def _update(
    read: ReadNode, out: NodeSink, depth: int, path: bytes, node: _Node, items: list[tuple[bytes, bytes | None]]
) -> _Node:
    """The subtree at `depth` on `path`, now `node`, after `items` (path, leaf or None to delete; sorted, not
    empty, all under this subtree)."""
    if not node.is_inner:
        merged = dict(items)
        if node.is_leaf and node.record[1:33] not in merged:
            merged[node.record[1:33]] = node.hash
        leaves = sorted((p, leaf) for p, leaf in merged.items() if leaf is not None)
        return _build(out, depth, path, leaves)
    split = next((i for i, (p, _) in enumerate(items) if _bit(p, depth)), len(items))
    children = []
    for side, part, stored in ((0, items[:split], node.record[1:33]), (1, items[split:], node.record[33:])):
        child = _with_bit(path, depth, side)
        if part:
            children.append(_update(read, out, depth + 1, child, _load(read, depth + 1, child, stored), part))
        else:
            children.append(_Node(stored, b""))
    return _join(read, out, depth, path, children[0], children[1])


def update_tree(read: ReadNode, writes: Mapping[bytes, bytes | None]) -> TreeUpdate:
    """The tree after `writes` (key -> new value, None: deleted) to the state whose tree `read` reads, without
    changing it: the new root and the node records to store."""
    out: dict[bytes, bytes | None] = {}
    root = _load(read, 0, EMPTY)
    if writes:
        items = sorted(
            (path, None if value is None else compute_leaf_hash(path, value))
            for path, value in ((compute_path(key), value) for key, value in writes.items())
        )
        root = _update(read, out, 0, items[0][0], root, items)
    return TreeUpdate(root.hash, out)


def compute_leaf(key: bytes, value: bytes) -> tuple[bytes, bytes]:
    """The path and the leaf hash of one entry."""
    path = compute_path(key)
    return path, compute_leaf_hash(path, value)


def build_tree(leaves: Iterable[tuple[bytes, bytes]], out: NodeSink) -> bytes:
    """The root of the tree over a whole state given as its leaves (`compute_leaf` of each entry, each key once,
    in any order), its node records sent to `out`; see `TreeBuilder` for a state too large for memory."""
    return _build(out, 0, EMPTY, sorted(leaves)).hash


class _Discard:
    def __setitem__(self, key: bytes, record: bytes | None) -> None:
        pass


def compute_root(leaves: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of the tree over a whole state given as its leaves, from scratch."""
    return build_tree(leaves, _Discard())


class TreeBuilder:
    """Builds the tree of a whole state streamed in any order, in memory bounded by a bucket, not the state.

    Up to `SPILL_AT` entries are kept in memory. Past that, each entry's path and leaf (64 bytes) go to one of
    `2**BUCKET_BITS` spool files by the first bits of its path, and `finish` builds each bucket's subtree from
    its sorted leaves, then the levels above them. Use it as a context manager, which closes the spool files.
    """

    BUCKET_BITS = 6
    """Bits of the path that choose a spool file: 64 files, each a 64th of the state."""

    SPILL_AT = 1024
    """Entries kept in memory (about 200 KB) before the builder spools them."""

    def __init__(self) -> None:
        self._leaves: list[tuple[bytes, bytes]] = []
        self._spools: list[IO[bytes]] = []

    def __enter__(self) -> TreeBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, key: bytes, value: bytes) -> None:
        self._leaves.append(compute_leaf(key, value))
        if len(self._leaves) >= self.SPILL_AT:
            self._spill()

    def _spill(self) -> None:
        if not self._spools:
            self._spools = [
                tempfile.TemporaryFile(buffering=_SPOOL_BUFFER)  # noqa: SIM115 - closed by `close`
                for _ in range(1 << self.BUCKET_BITS)
            ]
        for path, leaf in self._leaves:
            self._spools[path[0] >> (8 - self.BUCKET_BITS)].write(path + leaf)
        self._leaves.clear()

    def finish(self, out: NodeSink | None = None) -> bytes:
        """The root, the node records sent to `out`."""
        sink: NodeSink = _Discard() if out is None else out
        if not self._spools:
            return build_tree(self._leaves, sink)
        self._spill()
        depth = self.BUCKET_BITS
        level = [self._build_bucket(sink, bucket, depth) for bucket in range(len(self._spools))]
        while depth > 0:
            depth -= 1
            level = [
                _combine(sink, depth, bytes([pair << (8 - depth)]) + bytes(31), level[2 * pair], level[2 * pair + 1])
                for pair in range(len(level) // 2)
            ]
        return level[0].hash

    def _build_bucket(self, out: NodeSink, bucket: int, depth: int) -> _Node:
        spool = self._spools[bucket]
        spool.seek(0)
        data = spool.read()
        leaves = sorted((data[i : i + 32], data[i + 32 : i + 64]) for i in range(0, len(data), 64))
        return _build(out, depth, bytes([bucket << (8 - depth)]) + bytes(31), leaves)

    def close(self) -> None:
        for spool in self._spools:
            spool.close()
        self._spools = []
        self._leaves.clear()


_SPOOL_BUFFER = 1024
"""Write buffer of each spool file of a `TreeBuilder`."""


def _combine(out: NodeSink, depth: int, path: bytes, left: _Node, right: _Node) -> _Node:
    """The node above two complete subtrees, in canonical form (`_join` when neither needs reading)."""
    return _join(_no_reads, out, depth, path, left, right)


def _no_reads(place: bytes) -> bytes | None:
    raise AssertionError("a complete subtree is never read back")


def compute_commitment(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of the tree over a whole state dump (each key once), from scratch, in bounded memory."""
    with TreeBuilder() as builder:
        for key, value in entries:
            builder.add(key, value)
        return builder.finish()


def compute_prefix(path: bytes, bits: int) -> int:
    """The first `bits` (0 to 32) bits of `path` as a number: which subtree at depth `bits` holds the entry."""
    return int.from_bytes(path[:4], "big") >> (32 - bits)


def compute_subtree_root(depth: int, leaves: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The node at `depth` above exactly `leaves` (path and leaf hash, every path with the same first `depth`
    bits): in the tree of any state whose entries under that node are these, it has this hash."""
    ordered = sorted(leaves)
    return _build(_Discard(), depth, ordered[0][0] if ordered else EMPTY, ordered).hash


def combine_subtree_roots(subtrees: Sequence[tuple[bytes, int]]) -> bytes:
    """The root above the `2**k` subtrees at depth k, given in path order as their hash and the number of
    entries each holds (which says where a lone leaf moves up to)."""
    if len(subtrees) & (len(subtrees) - 1) or not subtrees:
        raise ValueError(f"{len(subtrees)} subtrees are not the nodes of one depth")
    level = list(subtrees)
    while len(level) > 1:
        level = [_combine_counted(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0][0]


def _combine_counted(left: tuple[bytes, int], right: tuple[bytes, int]) -> tuple[bytes, int]:
    count = left[1] + right[1]
    if count == 0:
        return EMPTY, 0
    if count == 1:  # the one entry's leaf stands in its parent's place
        return left if left[1] else right
    return _inner_hash(left[0], right[0]), count


def compute_state_path(read: ReadNode, key: bytes) -> tuple[bytes, ...] | None:
    """The sibling hashes from the root down to the entry of `key`, or None if the state holds no such key."""
    path = compute_path(key)
    siblings = []
    node = _load(read, 0, path)
    depth = 0
    while node.is_inner:
        bit = _bit(path, depth)
        siblings.append(node.record[1:33] if bit else node.record[33:])
        depth += 1
        node = _load(read, depth, path, node.record[33:] if bit else node.record[1:33])
    if not node.is_leaf or node.record[1:33] != path:
        return None
    return tuple(siblings)


def is_valid_state_path(key: bytes, value: bytes, siblings: tuple[bytes, ...], root: bytes) -> bool:
    """Whether the entry (`key`, `value`) lies in the tree of `root` with these siblings (root side first)."""
    if len(siblings) >= DEPTH or any(len(sibling) != 32 for sibling in siblings):
        return False
    path = compute_path(key)
    node = compute_leaf_hash(path, value)
    for depth in range(len(siblings) - 1, -1, -1):
        sibling = siblings[depth]
        node = _inner_hash(sibling, node) if _bit(path, depth) else _inner_hash(node, sibling)
    return node == root


__all__ = [
    "DEPTH",
    "EMPTY",
    "NodeSink",
    "ReadNode",
    "TreeBuilder",
    "TreeUpdate",
    "build_tree",
    "combine_subtree_roots",
    "compute_commitment",
    "compute_leaf",
    "compute_leaf_hash",
    "compute_path",
    "compute_prefix",
    "compute_root",
    "compute_state_path",
    "compute_subtree_root",
    "is_valid_state_path",
    "node_key",
    "update_tree",
]
