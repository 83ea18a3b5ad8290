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
It also keeps the decoded form of flat records (a map of strings, numbers,
booleans and nulls, such as a SKU or a location) while their stored bytes stay
the same, and hands out a copy of it: a shallow copy of a flat map is a new
record, so callers may still mutate what they read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any, Protocol

from ledger.encoding import decode, encode

_LEAVES = frozenset({str, int, bool, bytes, type(None)})
"""Types of the values a flat record holds."""


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

    The bottom layer (the block's writes so far) keeps its keys sorted as well, so a prefix scan
    costs a binary search there rather than a pass over every key the block wrote.
    """

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._layers: list[dict[bytes, bytes | None]] = [{}]
        self._sorted: list[bytes] = []
        """Keys of the bottom layer, in order."""
        self._read: dict[bytes, bytes | None] = {}
        """What this view has read from the base, by key."""
        self._scanned: dict[bytes, list[tuple[bytes, bytes]]] = {}
        """What this view has scanned from the base, by prefix."""
        self._decoded: dict[bytes, tuple[bytes, dict[str, Any] | list[Any] | None]] = {}
        """Key -> (stored bytes, their decoded form if it is a flat map or list, else None), see `_decode`."""

    def _write(self, key: bytes, value: bytes | None) -> None:
        layer = self._layers[-1]
        if len(self._layers) == 1 and key not in layer:
            insort(self._sorted, key)
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

    def _decode(self, key: bytes, raw: bytes) -> Any:
        """Decode the value `raw` stored under `key`; a flat map or list is decoded once while `raw` is stored (each
        reader gets a copy of its own)."""
        known = self._decoded.get(key)
        if known is not None and known[0] is raw:
            flat = known[1]
            return decode(raw, check=False) if flat is None else flat.copy()
        value = decode(raw, check=False)
        kind = type(value)
        if (kind is dict and all(type(item) in _LEAVES for item in value.values())) or (
            kind is list and all(type(item) in _LEAVES for item in value)
        ):
            self._decoded[key] = (raw, value)
            return value.copy()
        self._decoded[key] = (raw, None)
        return value

    def get(self, key: str) -> Any | None:
        raw_key = key.encode()
        raw = self.get_raw(raw_key)
        return None if raw is None else self._decode(raw_key, raw)

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
        merged: dict[bytes, bytes | None] = dict(scanned)
        bottom = self._layers[0]
        ordered = self._sorted
        for index in range(bisect_left(ordered, raw_prefix), len(ordered)):
            key = ordered[index]
            if not key.startswith(raw_prefix):
                break
            merged[key] = bottom[key]
        for layer in self._layers[1:]:
            for key, value in layer.items():
                if key.startswith(raw_prefix):
                    merged[key] = value
        ordered_keys = sorted(merged)
        start = 0 if after is None else bisect_right(ordered_keys, after.encode())
        for key in ordered_keys[start:]:
            value = merged[key]
            if value is not None:
                yield key.decode(), self._decode(key, value)

    def begin(self) -> None:
        self._layers.append({})

    def commit(self) -> None:
        if len(self._layers) < 2:
            raise RuntimeError("commit without begin")
        top = self._layers.pop()
        if len(self._layers) == 1:
            for key, value in top.items():
                self._write(key, value)
        else:
            self._layers[-1].update(top)

    def rollback(self) -> None:
        if len(self._layers) < 2:
            raise RuntimeError("rollback without begin")
        self._layers.pop()

    def writes(self) -> dict[bytes, bytes | None]:
        """The net writes of all committed layers (None means deleted)."""
        if len(self._layers) != 1:
            raise RuntimeError("writes() with an open savepoint")
        return self._layers[0]
