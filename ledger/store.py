"""The LevelDB store of one node.

Layout (one LevelDB, key prefixes):

    b/<height:8>        encoded block            h/<hash:32>   height
    c/<height:8>        commit certificate       t/<tx id:32>  (height, index)
    r/<height:8><i:4>   receipt                  s/<key>       world-state value
    m/head              (height, hash, state root, StateAccumulator accumulator)
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
from ledger.commitment import StateAccumulator
from ledger.encoding import MAX_INT, decode, encode, verify_shape
from ledger.errors import LedgerError, StoreCorrupted

STATE_PREFIX = b"s/"
"""Prefix of world-state entries in LevelDB."""

DERIVED_PREFIX = b"x/"
"""Prefix of the entries the node derives from blocks for its readers."""

LOCAL_PREFIX = b"l/"
"""Prefix of the node's own records, which no block writes."""


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
"""LevelDB's cache of uncompressed blocks (its default is 8 MiB); fixed, so memory stays flat as the ledger grows."""

WRITE_BUFFER_BYTES = 16 * 1024 * 1024
"""LevelDB's memtable (its default is 4 MiB), and `TABLE_BYTES` its table files (default 2 MiB).

A node writes about 6 MB per 1,000 orders (state, blocks, receipts, feed, indexes), and LevelDB's background
compaction rewrites it level after level on a thread of its own. With the defaults that thread took more CPU
per order than executing the order once the store held some 25,000 orders (0.57 ms per order over the first
48,000 orders of `tests/bench/test_execution_bench.py`'s kind, committed in blocks of 1,000); with these
sizes and no compression, 0.2 ms (0.13 ms with 32 MiB of each, for about 120 MB more memory at peak)."""

TABLE_BYTES = 8 * 1024 * 1024

DATA_DIR_MODE = 0o700
"""The store's folder is opened by its owner alone: it holds every block and the whole state."""

COMPRESSION = None
"""No compression of table blocks: compaction compressed every byte again at every level it moved down. The
store takes more disk in exchange, which a node has more of than CPU."""


class Store:
    """Blocks, txs, receipts, world state and indexes of one node, in LevelDB."""

    def __init__(self, path: Path | str) -> None:
        Path(path).mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        Path(path).chmod(DATA_DIR_MODE)
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=True,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=BLOCK_CACHE_BYTES,
                write_buffer_size=WRITE_BUFFER_BYTES,
                max_file_size=TABLE_BYTES,
                compression=COMPRESSION,
            )
        except plyvel.IOError as exc:
            if b"lock" in str(exc).encode().lower():
                raise StoreLocked(f"the store at {path} is in use by another process (a running node?)") from exc
            raise
        self._head, self._acc = self._load_head()

    def close(self) -> None:
        self._db.close()

    def _load_head(self) -> tuple[Head | None, StateAccumulator]:
        raw = self._db.get(b"m/head")
        if raw is None:
            return None, StateAccumulator()
        wire = _parse(raw, lambda wire: verify_shape(wire, _HEAD_FIELDS, StoreCorrupted, "head"), "head")
        head = Head(wire["height"], wire["block_hash"], wire["state_root"], wire["timestamp_ms"])
        return head, StateAccumulator.from_bytes(wire["acc"])

    def head(self) -> Head | None:
        """The last committed block, or None before block 1."""
        return self._head

    @property
    def height(self) -> int:
        return self._head.height if self._head else 0

    def state_root(self) -> bytes:
        """Commitment of the current world state."""
        return self._acc.copy().digest()

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

    def accumulator(self) -> StateAccumulator:
        """A copy of the accumulator of the committed state."""
        return self._acc.copy()

    def commitment_after(self, writes: dict[bytes, bytes | None]) -> StateAccumulator:
        """The state accumulator after applying `writes` to the committed state."""
        acc = self._acc.copy()
        update_commitment(acc, self.get_state, writes)
        return acc

    # -- commit ------------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        certificate: CommitCertificate,
        receipts: list[Receipt],
        writes: dict[bytes, bytes | None],
        acc: StateAccumulator | None = None,
        derived: dict[bytes, bytes | None] | None = None,
    ) -> None:
        """Write one block and everything it changed in one atomic, synced batch; `derived` (keys under
        `DERIVED_PREFIX`, None to delete) is what readers are served from, written in the same batch."""
        expected = self.height + 1
        if block.height != expected:
            raise ValueError(f"store is at height {self.height}; cannot commit block {block.height}")
        if acc is None:
            acc = self.commitment_after(writes)
        block_hash = block.hash()
        h = _h(block.height)
        with self._db.write_batch(transaction=True, sync=True) as batch:
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
            for key, value in (derived or {}).items():
                if value is None:
                    batch.delete(DERIVED_PREFIX + key)
                else:
                    batch.put(DERIVED_PREFIX + key, value)
            acc_bytes = acc.to_bytes()
            head = Head(block.height, block_hash, block.header.state_root, block.header.timestamp_ms)
            batch.put(b"m/head", _encode_head(head, acc_bytes))
        self._head = head
        self._acc = StateAccumulator.from_bytes(acc_bytes)

    def load_state(
        self, entries: Iterator[tuple[bytes, bytes]], head: Head, block: Block, certificate: CommitCertificate
    ) -> None:
        """Replace the world state by a verified snapshot at `head` (state sync)."""
        acc = StateAccumulator()
        with self._db.write_batch(transaction=True, sync=True) as batch:
            for key in self._db.iterator(prefix=STATE_PREFIX, include_value=False):
                batch.delete(key)
            for key, value in entries:
                batch.put(STATE_PREFIX + key, value)
                acc.add(key, value)
            h = _h(head.height)
            batch.put(b"b/" + h, encode_block(block))
            batch.put(b"h/" + head.block_hash, h)
            batch.put(b"c/" + h, encode(certificate.to_wire()))
            acc_bytes = acc.to_bytes()
            batch.put(b"m/head", _encode_head(head, acc_bytes))
        self._head = head
        self._acc = StateAccumulator.from_bytes(acc_bytes)

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


_HEAD_FIELDS = {"acc": bytes, "block_hash": bytes, "height": int, "state_root": bytes, "timestamp_ms": int}


def _encode_head(head: Head, acc_bytes: bytes) -> bytes:
    return encode(
        {
            "acc": acc_bytes,
            "block_hash": head.block_hash,
            "height": head.height,
            "state_root": head.state_root,
            "timestamp_ms": head.timestamp_ms,
        }
    )


def update_commitment(
    acc: StateAccumulator, read_old: Callable[[bytes], bytes | None], writes: dict[bytes, bytes | None]
) -> None:
    """Apply `writes` to accumulator `acc`, reading each key's old value with `read_old`."""
    for key, value in writes.items():
        old = read_old(key)
        if old == value:
            continue
        if old is not None:
            acc.remove(key, old)
        if value is not None:
            acc.add(key, value)


class StoreSnapshot:
    """A consistent read view of the store at one head (for sync and queries)."""

    def __init__(self, snap: plyvel.Snapshot, head: Head | None) -> None:
        self._snap = snap
        self.head = head

    def get_state(self, key: bytes) -> bytes | None:
        return self._snap.get(STATE_PREFIX + key)

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        cut = len(STATE_PREFIX)
        for key, value in self._snap.iterator(prefix=STATE_PREFIX + prefix):
            yield key[cut:], value

    def close(self) -> None:
        self._snap.close()
