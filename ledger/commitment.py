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
read and hashed again. The writes are sorted by path once, so the writes
under a node are a range of that list, parted between its children by one
bisection; a node is written only if its record changes, and a place is
deleted only when a node leaves it. The proof of an entry is the sibling hashes on its
path from the root (`compute_state_path`); whoever holds the key, the value
and a certified state root checks it (`is_valid_state_path`).
"""

from __future__ import annotations

import hashlib
import tempfile
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import IO, Protocol

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


def _hash(record: bytes) -> bytes:
    """The hash of the node whose record is `record`: a leaf's is in its record, an inner node's is its record's."""
    if not record:
        return EMPTY
    return record[33:] if record[:1] == _LEAF else hashlib.sha256(record).digest()


def _inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_INNER + left + right).digest()


def _place(depth: int, point: int) -> bytes:
    """`node_key` of the node at `depth` on the path whose number is `point`, built in one integer."""
    size = (depth + 7) >> 3
    prefix = point >> (DEPTH - depth) << (-depth & 7)
    return ((depth << (size << 3)) | prefix).to_bytes(size + 2, "big")


def node_key(depth: int, path: bytes) -> bytes:
    """The place of the node at `depth` on `path`: the depth (2 bytes), then the path's first `depth` bits (the
    last byte padded with zero bits)."""
    return _place(depth, int.from_bytes(path, "big"))


def _child(depth: int, point: int, side: int) -> int:
    """A path number under the child on `side` (0 left, 1 right) of the node at `depth` above `point`."""
    shift = DEPTH - 1 - depth
    return ((point >> shift) & ~1 | side) << shift


_Entry = tuple[int, bytes, "bytes | None"]
"""An entry while the tree is built or updated: its path as a number (to sort and bisect on), the path, and its
leaf hash (None: the entry is deleted). A subtree's entries are a range of a sorted list, split by bisection."""

_POINT = itemgetter(0)


def _sort_entries(leaves: Iterable[tuple[bytes, bytes | None]]) -> list[_Entry]:
    """The entries of (path, leaf) pairs (each path once), sorted by path."""
    return sorted((int.from_bytes(path, "big"), path, leaf) for path, leaf in leaves)


def _split(entries: list[_Entry], depth: int, lo: int, hi: int) -> int:
    """The first index in `lo..hi` (paths sharing their first `depth` bits) of a path whose bit `depth` is 1."""
    shift = DEPTH - 1 - depth
    if hi - lo == 1:  # most nodes a block reaches lie on the path of one write only
        return hi - ((entries[lo][0] >> shift) & 1)
    return bisect_left(entries, ((entries[lo][0] >> shift) | 1) << shift, lo, hi, key=_POINT)


def _build(out: NodeSink, depth: int, entries: list[_Entry], lo: int, hi: int) -> tuple[bytes, bytes]:
    """The subtree at `depth` holding exactly the entries `lo..hi` (at least one, none deleted): its hash and
    record, its records sent to `out` (an empty child has none)."""
    point, path, leaf = entries[lo]
    if hi - lo == 1:
        assert leaf is not None
        record = _LEAF + path + leaf
        out[_place(depth, point)] = record
        return leaf, record
    split = _split(entries, depth, lo, hi)
    left = _build(out, depth + 1, entries, lo, split)[0] if split > lo else EMPTY
    right = _build(out, depth + 1, entries, split, hi)[0] if split < hi else EMPTY
    record = _INNER + left + right
    out[_place(depth, point)] = record
    return hashlib.sha256(record).digest(), record


def _build_all(out: NodeSink, depth: int, entries: list[_Entry]) -> tuple[bytes, bytes]:
    """The subtree at `depth` holding exactly `entries` (b"" for the record of an empty one)."""
    return _build(out, depth, entries, 0, len(entries)) if entries else (EMPTY, b"")


_Child = tuple[bytes, "bytes | None"]
"""A child during an update: its hash, and its record (None: untouched and not read)."""


def _update(
    read: ReadNode, out: NodeSink, depth: int, entries: list[_Entry], lo: int, hi: int, known: bytes | None
) -> tuple[bytes, bytes]:
    """The subtree at `depth` whose hash was `known` (as its parent's record gives it; None for the root) after
    the writes `lo..hi` (at least one, all under it): its hash and record. Only the written paths are read and
    walked; a child no write reaches keeps its hash, and an empty child is not read."""
    point = entries[lo][0]
    place = _place(depth, point)
    stored = b"" if known == EMPTY else read(place) or b""
    if stored[:1] != _INNER:
        return _rebuild(out, depth, place, entries, lo, hi, stored)
    split = _split(entries, depth, lo, hi)
    left: _Child = (stored[1:33], None)
    right: _Child = (stored[33:], None)
    if split > lo:
        left = _update(read, out, depth + 1, entries, lo, split, left[0])
    if split < hi:
        right = _update(read, out, depth + 1, entries, split, hi, right[0])
    return _join(read, out, depth, point, place, stored, left, right)


def _rebuild(
    out: NodeSink, depth: int, place: bytes, entries: list[_Entry], lo: int, hi: int, stored: bytes
) -> tuple[bytes, bytes]:
    """The subtree at `depth` (at `place`), a leaf or empty (`stored`, its record, b"" when empty), after the
    writes `lo..hi`: built again from the written entries and the stored leaf unless a write replaces it."""
    kept = [entry for entry in entries[lo:hi] if entry[2] is not None]
    if stored:
        point = int.from_bytes(stored[1:33], "big")
        at = bisect_left(entries, point, lo, hi, key=_POINT)
        if at == hi or entries[at][0] != point:
            insort(kept, (point, stored[1:33], stored[33:]))
    if len(kept) > 1:
        return _build(out, depth, kept, 0, len(kept))
    if not kept:
        if stored:
            out[place] = None
        return EMPTY, b""
    _, path, leaf = kept[0]
    assert leaf is not None
    record = _LEAF + path + leaf
    if record != stored:
        out[place] = record
    return leaf, record


def _join(
    read: ReadNode,
    out: NodeSink,
    depth: int,
    point: int,
    place: bytes,
    stored: bytes,
    left: _Child,
    right: _Child,
) -> tuple[bytes, bytes]:
    """The node at `depth` on `point` (at `place`) above `left` and `right`, where `stored` was (b"": nothing): an
    inner node, or, when one side is empty, the other side's lone leaf moved up into this place."""
    if left[0] == EMPTY or right[0] == EMPTY:
        side, (alone, record) = (1, right) if left[0] == EMPTY else (0, left)
        if alone == EMPTY:
            if stored:
                out[place] = None
            return EMPTY, b""
        child = _place(depth + 1, _child(depth, point, side))
        if record is None:  # untouched: read it to see whether it is a leaf
            record = read(child) or b""
        if record[:1] == _LEAF:
            out[child] = None
            out[place] = record
            return alone, record
    record = _INNER + left[0] + right[0]
    if record != stored:
        out[place] = record
    return hashlib.sha256(record).digest(), record


def update_tree(read: ReadNode, writes: Mapping[bytes, bytes | None]) -> TreeUpdate:
    """The tree after `writes` (key -> new value, None: deleted) to the state whose tree `read` reads, without
    changing it: the new root and the node records to store (none for a node that stays as it is)."""
    if not writes:
        return TreeUpdate(_hash(read(_place(0, 0)) or b""))
    out: dict[bytes, bytes | None] = {}
    paths = [(compute_path(key), value) for key, value in writes.items()]
    entries = _sort_entries((path, None if value is None else compute_leaf_hash(path, value)) for path, value in paths)
    root, _ = _update(read, out, 0, entries, 0, len(entries), None)
    return TreeUpdate(root, out)


def compute_leaf(key: bytes, value: bytes) -> tuple[bytes, bytes]:
    """The path and the leaf hash of one entry."""
    path = compute_path(key)
    return path, compute_leaf_hash(path, value)


def build_tree(leaves: Iterable[tuple[bytes, bytes]], out: NodeSink) -> bytes:
    """The root of the tree over a whole state given as its leaves (`compute_leaf` of each entry, each key once,
    in any order), its node records sent to `out`; see `TreeBuilder` for a state too large for memory."""
    return _build_all(out, 0, _sort_entries(leaves))[0]


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
                _combine(sink, depth, pair, level[2 * pair], level[2 * pair + 1]) for pair in range(len(level) // 2)
            ]
        return level[0][0]

    def _build_bucket(self, out: NodeSink, bucket: int, depth: int) -> tuple[bytes, bytes]:
        spool = self._spools[bucket]
        spool.seek(0)
        data = spool.read()
        return _build_all(
            out, depth, _sort_entries((data[i : i + 32], data[i + 32 : i + 64]) for i in range(0, len(data), 64))
        )

    def close(self) -> None:
        for spool in self._spools:
            spool.close()
        self._spools = []
        self._leaves.clear()


_SPOOL_BUFFER = 1024
"""Write buffer of each spool file of a `TreeBuilder`."""


def _combine(out: NodeSink, depth: int, index: int, left: _Child, right: _Child) -> tuple[bytes, bytes]:
    """The node at `depth`, the `index`th of its level, above two complete subtrees (`_join` with no reads)."""
    point = index << (DEPTH - depth)
    return _join(_no_reads, out, depth, point, _place(depth, point), b"", left, right)


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
    return _build_all(_Discard(), depth, _sort_entries(leaves))[0]


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


def _bit(point: int, depth: int) -> int:
    """The bit at `depth` of the path whose number is `point` (0: left, 1: right)."""
    return (point >> (DEPTH - 1 - depth)) & 1


def compute_state_path(read: ReadNode, key: bytes) -> tuple[bytes, ...] | None:
    """The sibling hashes from the root down to the entry of `key`, or None if the state holds no such key."""
    path = compute_path(key)
    point = int.from_bytes(path, "big")
    siblings = []
    record = read(_place(0, point)) or b""
    depth = 0
    while record[:1] == _INNER:
        bit = _bit(point, depth)
        siblings.append(record[1:33] if bit else record[33:])
        child = record[33:] if bit else record[1:33]
        depth += 1
        record = b"" if child == EMPTY else read(_place(depth, point)) or b""
    if record[:1] != _LEAF or record[1:33] != path:
        return None
    return tuple(siblings)


def is_valid_state_path(key: bytes, value: bytes, siblings: tuple[bytes, ...], root: bytes) -> bool:
    """Whether the entry (`key`, `value`) lies in the tree of `root` with these siblings (root side first)."""
    if len(siblings) >= DEPTH or any(len(sibling) != 32 for sibling in siblings):
        return False
    path = compute_path(key)
    point = int.from_bytes(path, "big")
    node = compute_leaf_hash(path, value)
    for depth in range(len(siblings) - 1, -1, -1):
        sibling = siblings[depth]
        node = _inner_hash(sibling, node) if _bit(point, depth) else _inner_hash(node, sibling)
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
