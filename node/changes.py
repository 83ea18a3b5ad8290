"""What a block changed, record by record: the input of everything the node derives for its readers.

The executor describes each block's net state writes this way before it
commits them; each record written can be read as it was before the
block (`old`, from the committed state) and as it is after (`new`), and any
key as it is after (`read`). The change feed (`node.feed`) and the list
indexes (`node.indexes`) are computed from these differences alone, so they
see every change, whichever tx or block hook made it, without the contracts
knowing about them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any

from ledger.block import Block
from ledger.encoding import decode
from ledger.store import Store


class BlockChanges:
    """The records one block wrote, before and after.

    Each record is decoded once, however many readers ask for it (the feed, the indexes and the money per day
    all read the orders the block wrote): the values handed out are shared, and a reader must not change them.
    """

    def __init__(self, store: Store, block: Block, writes: dict[bytes, bytes | None]) -> None:
        self.store = store
        self.block = block
        self.writes = writes
        self._after: dict[bytes, Any] = {}
        self._before: dict[bytes, Any] = {}
        self._kept: list[bytes] | None = None

    def read(self, key: str) -> Any:
        """The decoded value of `key` after the block (None if absent)."""
        return self._new(key.encode())

    def _new(self, raw_key: bytes) -> Any:
        if raw_key not in self.writes:
            return self._old(raw_key)
        if raw_key not in self._after:
            raw = self.writes[raw_key]
            self._after[raw_key] = None if raw is None else decode(raw, check=False)
        return self._after[raw_key]

    def old(self, key: str) -> Any:
        """The decoded value of `key` before the block (None if absent)."""
        return self._old(key.encode())

    def _old(self, raw_key: bytes) -> Any:
        if raw_key not in self._before:
            raw = self.store.get_state(raw_key)
            self._before[raw_key] = None if raw is None else decode(raw, check=False)
        return self._before[raw_key]

    def updated(self, prefix: str) -> Iterator[tuple[Any, Any]]:
        """(value before or None, value after) of every key under `prefix` (text, never ending in 0xff) the block
        wrote and kept, in key order."""
        if self._kept is None:
            self._kept = sorted(k for k, v in self.writes.items() if v is not None)
        raw_prefix = prefix.encode()
        kept = self._kept
        start = bisect.bisect_left(kept, raw_prefix)
        stop = bisect.bisect_left(kept, raw_prefix[:-1] + bytes([raw_prefix[-1] + 1]), start)
        for raw_key in kept[start:stop]:
            yield self._old(raw_key), self._new(raw_key)
