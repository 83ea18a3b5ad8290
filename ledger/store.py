"""The LevelDB store of one node.

Layout (one LevelDB, key prefixes):

    b/<height:8>        encoded block            h/<hash:32>   height
    c/<height:8>        commit certificate       t/<tx id:32>  (height, index)
    r/<height:8><i:4>   receipt                  s/<key>       world-state value
    m/head              (height, hash, state root, time)
    n/<place>           a node of the state's Merkle tree (`ledger.commitment.node_key`), kept with the state
    x/<...>             what the node derives from each block for its readers (change feed, list indexes);
                        not world state, not in the state commitment (after state sync, rebuilt from the state)
    l/<...>             this node's own records, written outside blocks (API idempotency keys, a pending
                        rebuild of what is derived)

`commit_block` writes a block, its certificate, receipts, state writes,
indexes, derived entries and the new head in one LevelDB write batch with
sync, so a node killed at any instant finds either the whole block or none
of it, and what readers see always matches the state.

Reads decode through the bounded decoder and the types' strict `from_wire`;
bytes that do not read back as what was written raise `StoreCorrupted`, and a
height outside what a key can hold reads as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import plyvel

from ledger.block import Block, CommitCertificate, Receipt, encode_block
from ledger.commitment import EMPTY, TreeBuilder, TreeUpdate, update_tree
from ledger.encoding import MAX_INT, decode, encode, verify_shape
from ledger.errors import LedgerError, StoreCorrupted

STATE_PREFIX = b"s/"
"""Prefix of world-state entries in LevelDB."""

DERIVED_PREFIX = b"x/"
"""Prefix of the entries the node derives from blocks for its readers."""

LOCAL_PREFIX = b"l/"
"""Prefix of the node's own records, which no block writes."""

NODE_PREFIX = b"n/"
"""Prefix of the state tree's nodes (`ledger.commitment`), written in the batch of the state they commit to."""


class StoreLocked(LedgerError):
    """LevelDB allows one process per store; another one holds it."""

    code = "store_locked"


def _past(prefix: bytes) -> bytes:
    """The least key greater than every key starting with `prefix` (prefixes here never end in 0xff)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _h(height: int) -> bytes:
    return height.to_bytes(8, "big")


Stored = TypeVar("Stored")


def _parse(raw: bytes, parse: Callable[[Any], Stored], what: str) -> Stored:
    """`parse` of the decoded `raw`; raises `StoreCorrupted` when the bytes do not read back."""
    try:
        return parse(decode(raw))
    except LedgerError as exc:
        raise StoreCorrupted(f"stored {what} is unreadable: {exc}") from exc


@dataclass(frozen=True)
class Head:
    """The last committed block."""

    height: int
    block_hash: bytes
    state_root: bytes
    timestamp_ms: int


BLOOM_FILTER_BITS = 10
"""Bits per key of LevelDB's bloom filters: a read of a key that is not there (every new order, journal entry
and index entry is first looked up by the state commitment) skips the tables that cannot hold it, instead of
reading a block of each level."""

BLOCK_CACHE_BYTES = 32 * 1024 * 1024
"""LevelDB's cache of uncompressed blocks (its default is 8 MiB); fixed, so memory stays flat as the ledger grows.
It holds only blocks read from a table file that is not mapped (`MAX_OPEN_FILES`)."""

WRITE_BUFFER_BYTES = 16 * 1024 * 1024
"""LevelDB's memtable (its default is 4 MiB), and `TABLE_BYTES` its table files (default 2 MiB).

A node writes about 6 MB per 1,000 orders (state, blocks, receipts, feed, indexes), and LevelDB's background
compaction rewrites it level after level on a thread of its own. With the defaults that thread took more CPU
per order than executing the order once the store held some 25,000 orders (0.57 ms per order over the first
48,000 orders of `tests/bench/test_execution_bench.py`'s kind, committed in blocks of 1,000); with these
sizes and no compression, 0.2 ms (0.13 ms with 32 MiB of each, for about 120 MB more memory at peak)."""

TABLE_BYTES = 8 * 1024 * 1024

MAX_OPEN_FILES = 74
"""Files LevelDB keeps open: 10 of its own (log, manifest) and 64 table files, the fewest it allows.

LevelDB maps every table file it opens for reading into the process (up to 1,000 of them on 64-bit systems),
reads blocks in place from the map (so they never enter its block cache: the table files are not
compressed), and every page a read or a compaction touched counts in the node's resident memory until the
table is closed. Open tables are kept in an LRU cache of `MAX_OPEN_FILES` - 10, so those pages are at most 64
x `TABLE_BYTES` whatever the size of the ledger. With LevelDB's default of 1,000 they followed the ledger:
random reads over a 1.2 GB store of 137 tables took a process to 1,078 MB resident (1,063 MB of it mapped
tables), against 87 to 148 MB with this bound; a read that finds its table closed opens and maps it again
(in that test, where almost every read did, 155 instead of 66 us a read). A node's own reads stay near its
recent tables: committing 85,000 orders in `order.import` blocks of 1,000 took 208 s of CPU with this bound
and 209 s with the default, past 120 tables."""

DATA_DIR_MODE = 0o700
"""The store's folder is opened by its owner alone: it holds every block and the whole state."""

COMPRESSION = None
"""No compression of table blocks: compaction compressed every byte again at every level it moved down. The
store takes more disk in exchange, which a node has more of than CPU."""


class Store:
    """Blocks, txs, receipts, world state and indexes of one node, in LevelDB."""

    def __init__(self, path: Path | str, table_bytes: int = TABLE_BYTES) -> None:
        """`table_bytes`: the size of LevelDB's table files (tests make them small to have many)."""
        Path(path).mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        Path(path).chmod(DATA_DIR_MODE)
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=True,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=BLOCK_CACHE_BYTES,
                write_buffer_size=WRITE_BUFFER_BYTES,
                max_file_size=table_bytes,
                max_open_files=MAX_OPEN_FILES,
                compression=COMPRESSION,
            )
        except plyvel.IOError as exc:
            if b"lock" in str(exc).encode().lower():
                raise StoreLocked(f"the store at {path} is in use by another process (a running node?)") from exc
            raise
        self._head = self._load_head()

    def close(self) -> None:
        self._db.close()

    def _load_head(self) -> Head | None:
        raw = self._db.get(b"m/head")
        if raw is None:
            return None
        wire = _parse(raw, lambda wire: wire if isinstance(wire, dict) else {}, "head")
        if "acc" in wire:
            raise StoreCorrupted(
                "this store was written by a release whose state commitment was an additive hash (ADR 0002); "
                "its blocks' state roots are not Merkle roots, so this release cannot go on with it"
            )
        wire = verify_shape(wire, _HEAD_FIELDS, StoreCorrupted, "head")
        return Head(wire["height"], wire["block_hash"], wire["state_root"], wire["timestamp_ms"])

    def head(self) -> Head | None:
        """The last committed block, or None before block 1."""
        return self._head

    @property
    def height(self) -> int:
        return self._head.height if self._head else 0

    def state_root(self) -> bytes:
        """Commitment of the current world state (the root of the empty tree before block 1)."""
        return self._head.state_root if self._head else EMPTY

    # -- state reader -----------------------------------------------------------

    def get_state(self, key: bytes) -> bytes | None:
        return self._db.get(STATE_PREFIX + key)

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cut = len(STATE_PREFIX)
        for key, value in self._db.iterator(prefix=STATE_PREFIX + prefix):
            yield key[cut:], value

    def scan_state_after(self, prefix: bytes, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with `prefix`, in key order, from the first key past `after` (a page's
        cursor); the caller stops when it has enough."""
        cut = len(STATE_PREFIX)
        start = STATE_PREFIX + (max(prefix, after + b"\x00") if after is not None else prefix)
        for key, value in self._db.iterator(start=start, stop=STATE_PREFIX + _past(prefix)):
            yield key[cut:], value

    def get_derived(self, key: bytes) -> bytes | None:
        return self._db.get(DERIVED_PREFIX + key)

    def scan_derived(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Derived entries with `start` <= key < `stop`, in key order (keys without `DERIVED_PREFIX`)."""
        cut = len(DERIVED_PREFIX)
        for key, value in self._db.iterator(start=DERIVED_PREFIX + start, stop=DERIVED_PREFIX + stop):
            yield key[cut:], value

    def last_derived(self, start: bytes, stop: bytes) -> bytes | None:
        """The greatest derived key with `start` <= key < `stop` (without `DERIVED_PREFIX`), or None.

        The iterator is bounded by `stop` only: plyvel's reverse iterator leaves out a key equal to `start`."""
        for key in self._db.iterator(stop=DERIVED_PREFIX + stop, reverse=True, include_value=False):
            return bytes(key[len(DERIVED_PREFIX) :]) if key >= DERIVED_PREFIX + start else None
        return None

    def write_derived(self, entries: dict[bytes, bytes | None]) -> None:
        """Write derived entries outside a block (None deletes), in one batch: for rebuilding them from the
        state, where no block wrote them."""
        self._write_batch(DERIVED_PREFIX, entries, sync=False)

    def get_local(self, key: bytes) -> bytes | None:
        return self._db.get(LOCAL_PREFIX + key)

    def scan_local(self, start: bytes, stop: bytes) -> Iterator[tuple[bytes, bytes]]:
        """This node's own records with `start` <= key < `stop`, in key order (keys without `LOCAL_PREFIX`)."""
        cut = len(LOCAL_PREFIX)
        for key, value in self._db.iterator(start=LOCAL_PREFIX + start, stop=LOCAL_PREFIX + stop):
            yield key[cut:], value

    def write_local(self, entries: dict[bytes, bytes | None], sync: bool = True) -> None:
        """Keep (None: forget) some of this node's own records, all or none, synced with every write before
        them (an answer given from them survives a crash); with `sync` False, not waiting for the disk (a crash
        may lose the latest such writes, whole batches only)."""
        self._write_batch(LOCAL_PREFIX, entries, sync=sync)

    def _write_batch(self, prefix: bytes, entries: dict[bytes, bytes | None], sync: bool) -> None:
        with self._db.write_batch(transaction=True, sync=sync) as batch:
            for key, value in entries.items():
                if value is None:
                    batch.delete(prefix + key)
                else:
                    batch.put(prefix + key, value)

    def snapshot(self) -> StoreSnapshot:
        """A frozen read view of the whole store as it is now."""
        return StoreSnapshot(self._db.snapshot(), self._head)

    # -- commitment --------------------------------------------------------------

    def get_node(self, place: bytes) -> bytes | None:
        """The record of the committed state tree's node at `place` (`ledger.commitment.node_key`)."""
        return self._db.get(NODE_PREFIX + place)

    def tree_after(self, writes: dict[bytes, bytes | None]) -> TreeUpdate:
        """The state tree's change by `writes` to the committed state (nothing is written)."""
        return update_tree(self.get_node, writes)

    # -- commit ------------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        certificate: CommitCertificate,
        receipts: list[Receipt],
        writes: dict[bytes, bytes | None],
        tree: TreeUpdate | None = None,
        derived: dict[bytes, bytes | None] | None = None,
        sync: bool = True,
    ) -> None:
        """Write one block and everything it changed in one atomic batch; `tree` is the state tree's change by
        `writes` (`tree_after`, computed here when None); `derived` (keys under `DERIVED_PREFIX`, None to delete)
        is what readers are served from, written in the same batch. With `sync` False the batch is not waited
        to reach the disk (`flush` does): a killed process loses none of it, a power cut may lose the latest
        such blocks, whole blocks only, and the store reopens at an earlier head."""
        expected = self.height + 1
        if block.height != expected:
            raise ValueError(f"store is at height {self.height}; cannot commit block {block.height}")
        if tree is None:
            tree = self.tree_after(writes)
        block_hash = block.hash()
        h = _h(block.height)
        with self._db.write_batch(transaction=True, sync=sync) as batch:
            batch.put(b"b/" + h, encode_block(block))
            batch.put(b"h/" + block_hash, h)
            batch.put(b"c/" + h, encode(certificate.to_wire()))
            for index, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
                batch.put(b"t/" + tx.id, h + index.to_bytes(4, "big"))
                batch.put(b"r/" + h + index.to_bytes(4, "big"), encode(receipt.to_wire()))
            for key, value in writes.items():
                if value is None:
                    batch.delete(STATE_PREFIX + key)
                else:
                    batch.put(STATE_PREFIX + key, value)
            for prefix, entries in ((DERIVED_PREFIX, derived or {}), (NODE_PREFIX, tree.nodes)):
                for key, value in entries.items():
                    if value is None:
                        batch.delete(prefix + key)
                    else:
                        batch.put(prefix + key, value)
            head = Head(block.height, block_hash, block.header.state_root, block.header.timestamp_ms)
            batch.put(b"m/head", _encode_head(head))
        self._head = head

    def flush(self) -> None:
        """Wait until every block committed so far is on the disk (LevelDB syncs its log in write order, so
        syncing one write syncs all before it)."""
        if self._head is not None:
            self._db.put(b"m/head", _encode_head(self._head), sync=True)

    def load_state(
        self, entries: Iterator[tuple[bytes, bytes]], head: Head, block: Block, certificate: CommitCertificate
    ) -> None:
        """Replace the world state by a verified snapshot at `head` (state sync), and build its tree (the caller
        checked that the entries have `head`'s state root)."""
        with self._db.write_batch(transaction=True, sync=True) as batch, TreeBuilder() as tree:
            for prefix in (STATE_PREFIX, NODE_PREFIX):
                for key in self._db.iterator(prefix=prefix, include_value=False):
                    batch.delete(key)
            for key, value in entries:
                batch.put(STATE_PREFIX + key, value)
                tree.add(key, value)
            tree.finish(_NodeBatch(batch))
            h = _h(head.height)
            batch.put(b"b/" + h, encode_block(block))
            batch.put(b"h/" + head.block_hash, h)
            batch.put(b"c/" + h, encode(certificate.to_wire()))
            batch.put(b"m/head", _encode_head(head))
        self._head = head

    # -- reads -------------------------------------------------------------------

    def get_block_bytes(self, height: int) -> bytes | None:
        return self._db.get(b"b/" + _h(height)) if 0 <= height <= MAX_INT else None

    def get_block(self, height: int) -> Block | None:
        raw = self.get_block_bytes(height)
        return None if raw is None else _parse(raw, Block.from_wire, f"block {height}")

    def get_height_by_hash(self, block_hash: bytes) -> int | None:
        raw = self._db.get(b"h/" + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def get_certificate(self, height: int) -> CommitCertificate | None:
        raw = self._db.get(b"c/" + _h(height)) if 0 <= height <= MAX_INT else None
        return None if raw is None else _parse(raw, CommitCertificate.from_wire, f"certificate {height}")

    def get_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self._db.get(b"t/" + tx_id)
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")

    def get_receipt(self, height: int, index: int) -> Receipt | None:
        if not (0 <= height <= MAX_INT and 0 <= index < 2**32):
            return None
        raw = self._db.get(b"r/" + _h(height) + index.to_bytes(4, "big"))
        return None if raw is None else _parse(raw, Receipt.from_wire, f"receipt {height}/{index}")

    def iter_state(self) -> Iterator[tuple[bytes, bytes]]:
        """Every world-state entry, in key order."""
        return self.scan_state(b"")

    def raw_db(self) -> plyvel.DB:
        """The LevelDB handle, for tools that inspect or repair the store."""
        return self._db


_HEAD_FIELDS = {"block_hash": bytes, "height": int, "state_root": bytes, "timestamp_ms": int}


class _NodeBatch:
    """Tree node records into a LevelDB write batch."""

    def __init__(self, batch: Any) -> None:
        self._batch = batch

    def __setitem__(self, place: bytes, record: bytes | None) -> None:
        if record is None:
            self._batch.delete(NODE_PREFIX + place)
        else:
            self._batch.put(NODE_PREFIX + place, record)


def _encode_head(head: Head) -> bytes:
    return encode(
        {
            "block_hash": head.block_hash,
            "height": head.height,
            "state_root": head.state_root,
            "timestamp_ms": head.timestamp_ms,
        }
    )


class StoreSnapshot:
    """A consistent read view of the store at one head (for sync and queries)."""

    def __init__(self, snap: plyvel.Snapshot, head: Head | None) -> None:
        self._snap = snap
        self.head = head

    def get_state(self, key: bytes) -> bytes | None:
        return self._snap.get(STATE_PREFIX + key)

    def get_node(self, place: bytes) -> bytes | None:
        return self._snap.get(NODE_PREFIX + place)

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cut = len(STATE_PREFIX)
        for key, value in self._snap.iterator(prefix=STATE_PREFIX + prefix):
            yield key[cut:], value

    def close(self) -> None:
        self._snap.close()
