"""World-state views: reads fall through to a base, writes stay in layers.

A `StateView` is what contracts see. Keys are strings such as
`order/A-0000001`; values are any canonical-encodable data. Writes go into
the top layer; `begin` opens a savepoint for one tx, `commit` folds it into
the layer below and `rollback` throws it away, so a rejected tx leaves no
trace. Values are kept encoded, so a caller that mutates what it read never
changes the state behind its back. The block's net writes (`writes`) are what
the store commits and what the state commitment is updated with.

A view lives for one block (or one query) over a base that does not change
meanwhile, so it keeps what it read from the base: a key read by every order
of a block (a SKU, a location, a stock record) costs one base read per block.
It also keeps what it read of each key until the key is written (or a
savepoint that wrote it is rolled back), so a key read again, such as the
locations every order of a block weighs, costs a lookup rather than a walk
down the layers: flat records (a map or list of strings, numbers, booleans
and nulls, such as a SKU, a location or an index entry) decoded, handed out
as a copy (a shallow copy of a flat map is a new record, so callers may still
mutate what they read), the others as their bytes, decoded at each read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ledger.encoding import decode, encode

_LEAVES = frozenset({str, int, bool, bytes, type(None)})
"""Types of the values a flat record holds."""


def _entry_key(entry: tuple[bytes, bytes | None]) -> bytes:
    return entry[0]


class StateReader(Protocol):
    """Raw read access to committed state (the store, or a snapshot of it)."""

    def get_state(self, key: bytes) -> bytes | None: ...

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class MemoryState:
    """A `StateReader` over a plain dict (genesis, tests, replay)."""

    def __init__(self, entries: dict[bytes, bytes] | None = None) -> None:
        self.entries = entries if entries is not None else {}

    def get_state(self, key: bytes) -> bytes | None:
        return self.entries.get(key)

    def scan_state(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.entries if k.startswith(prefix)):
            yield key, self.entries[key]


class StateView:
    """Layered read/write view over a `StateReader`.

    Every layer keeps its keys sorted as well, so a prefix scan costs a binary search in each layer rather
    than a pass over every key the block (or the open tx, such as an import of a hundred orders) wrote.
    """

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._layers: list[dict[bytes, bytes | None]] = [{}]
        self._sorted: list[list[bytes]] = [[]]
        """The keys of each layer, in order."""
        self._read: dict[bytes, bytes | None] = {}
        """What this view has read from the base, by key."""
        self._scanned: dict[bytes, list[tuple[bytes, bytes]]] = {}
        """What this view has scanned from the base, by prefix."""
        self._decoded: dict[bytes, tuple[bytes | None, dict[str, Any] | list[Any] | None]] = {}
        """Key -> (the bytes it holds in this view, or None; their decoded form if a flat map or list, else None):
        what was read of keys not written since (`_decode`)."""
        self._changes = 0
        """Writes and rollbacks so far: a scan keeps what it decodes only if none came since it began."""

    def _write(self, key: bytes, value: bytes | None) -> None:
        self._decoded.pop(key, None)
        self._changes += 1
        self._place(key, value)

    def _place(self, key: bytes, value: bytes | None) -> None:
        """Set `key` in the top layer (what it holds there decoded is the caller's to forget)."""
        layer = self._layers[-1]
        if key not in layer:
            insort(self._sorted[-1], key)
        layer[key] = value

    def get_raw(self, key: bytes) -> bytes | None:
        for layer in reversed(self._layers):
            if key in layer:
                return layer[key]
        return self.read_base(key)

    def read_base(self, key: bytes) -> bytes | None:
        """The value of `key` in the base under this view's writes, read from the base once per view."""
        read = self._read
        if key in read:
            return read[key]
        value = read[key] = self._base.get_state(key)
        return value

    def _decode(self, key: bytes, raw: bytes | None, keep: bool = True) -> Any:
        """Decode the value `raw` stored under `key` (None: no value); with `keep`, remember it (a flat map or
        list decoded, anything else as bytes) until `key` is written (each reader gets a copy of its own)."""
        if raw is None:
            if keep:
                self._decoded[key] = (None, None)
            return None
        value = decode(raw, check=False)
        kind = type(value)
        if (kind is dict and all(type(item) in _LEAVES for item in value.values())) or (
            kind is list and all(type(item) in _LEAVES for item in value)
        ):
            if keep:
                self._decoded[key] = (raw, value)
            return value.copy()
        if keep:
            self._decoded[key] = (raw, None)
        return value

    def get(self, key: str) -> Any | None:
        raw_key = key.encode()
        known = self._decoded.get(raw_key)
        if known is None:
            return self._decode(raw_key, self.get_raw(raw_key))
        raw, flat = known
        if flat is not None:
            return flat.copy()
        return None if raw is None else decode(raw, check=False)

    def put(self, key: str, value: Any) -> None:
        self._write(key.encode(), encode(value))

    def delete(self, key: str) -> None:
        self._write(key.encode(), None)

    def scan(self, prefix: str, after: str | None = None) -> Iterator[tuple[str, Any]]:
        """Entries whose key starts with `prefix`, in key order; with `after`, only those whose key sorts after it
        (so that a caller resumes where it stopped without walking what it had passed)."""
        raw_prefix = prefix.encode()
        scanned = self._scanned.get(raw_prefix)
        if scanned is None:
            scanned = self._scanned[raw_prefix] = list(self._base.scan_state(raw_prefix))
        written: dict[bytes, bytes | None] = {}
        for layer, ordered in zip(self._layers, self._sorted, strict=True):
            for index in range(bisect_left(ordered, raw_prefix), len(ordered)):
                key = ordered[index]
                if not key.startswith(raw_prefix):
                    break
                written[key] = layer[key]
        entries: Sequence[tuple[bytes, bytes | None]]
        if written:
            merged: dict[bytes, bytes | None] = dict(scanned)
            merged.update(written)
            entries = sorted(merged.items())
        else:
            entries = scanned
        start = 0 if after is None else bisect_right(entries, after.encode(), key=_entry_key)
        changes = self._changes
        for key, value in entries[start:]:
            if value is None:
                continue
            known = self._decoded.get(key)
            if known is not None and known[0] is value:
                flat = known[1]
                yield key.decode(), decode(value, check=False) if flat is None else flat.copy()
            else:
                # what is read here is what the view held when the scan began: kept only if nothing changed since
                yield key.decode(), self._decode(key, value, keep=changes == self._changes)

    def begin(self) -> None:
        self._layers.append({})
        self._sorted.append([])

    def commit(self) -> None:
        if len(self._layers) < 2:
            raise RuntimeError("commit without begin")
        top = self._layers.pop()
        self._sorted.pop()
        for key, value in top.items():
            self._place(key, value)

    def rollback(self) -> None:
        if len(self._layers) < 2:
            raise RuntimeError("rollback without begin")
        for key in self._layers.pop():
            self._decoded.pop(key, None)
        self._sorted.pop()
        self._changes += 1

    def writes(self) -> dict[bytes, bytes | None]:
        """The net writes of all committed layers (None means deleted)."""
        if len(self._layers) != 1:
            raise RuntimeError("writes() with an open savepoint")
        return self._layers[0]
