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

from collections.abc import Iterator
from typing import Any

from ledger.block import Block
from ledger.encoding import decode
from ledger.store import Store


class BlockChanges:
    """The records one block wrote, before and after."""

    def __init__(self, store: Store, block: Block, writes: dict[bytes, bytes | None]) -> None:
        self.store = store
        self.block = block
        self.writes = writes

    def read(self, key: str) -> Any:
        """The decoded value of `key` after the block (None if absent)."""
        raw_key = key.encode()
        raw = self.writes[raw_key] if raw_key in self.writes else self.store.get_state(raw_key)
        return None if raw is None else decode(raw, check=False)

    def old(self, key: str) -> Any:
        """The decoded value of `key` before the block (None if absent)."""
        raw = self.store.get_state(key.encode())
        return None if raw is None else decode(raw, check=False)

    def updated(self, prefix: str) -> Iterator[tuple[Any, Any]]:
        """(value before or None, value after) of every key under `prefix` the block wrote and kept,
        in key order."""
        raw_prefix = prefix.encode()
        kept = sorted((k, v) for k, v in self.writes.items() if v is not None and k.startswith(raw_prefix))
        for raw_key, raw in kept:
            yield self.old(raw_key.decode()), decode(raw, check=False)
