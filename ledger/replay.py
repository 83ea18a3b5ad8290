"""Replay protection in the world state: a committed tx is remembered until its window has passed.

A tx may be committed only by a block whose height h satisfies
`h <= tx.valid_until <= h + MAX_TX_WINDOW`. Every block records each of its
txs under `replay/<valid_until>/<tx id>` in the world state, and deletes the
records whose `valid_until` is the height just passed, so a record lives
exactly as long as a copy of its tx could still be taken by a block:

- while the record exists, a copy of the tx is a replay (the id is the same,
  so its `valid_until`, and with it the key, is the same);
- once it is deleted, every copy is expired.

Because the records are world state, they are covered by the state
commitment under every certified header and travel in every snapshot: a node
that joined by state sync refuses an old tx exactly as a node that executed
every block does, which a local index of committed txs could not promise.
The state holds at most the txs of the last `MAX_TX_WINDOW` blocks.

Admission (`verify_fresh` over the store, for the next height) and execution
(`process_tx_windows` over the block's view) apply the same rules; a block
that takes an expired, too distant or already committed tx is invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.errors import InvalidBlock, InvalidTransaction
from ledger.state import StateView
from ledger.tx import MAX_TX_WINDOW, Tx

REPLAY_PREFIX = "replay/"
"""Prefix of the replay records in the world state, ordered by `valid_until`."""


class DuplicateTransaction(InvalidTransaction):
    """A tx that is already committed (and whose window is still open)."""

    code = "duplicate_transaction"


class ExpiredTransaction(InvalidTransaction):
    """A tx whose `valid_until` is below the height of the next block: sign it again with a later one."""

    code = "expired_transaction"


class WindowTooLong(InvalidTransaction):
    """A tx whose `valid_until` lies more than `MAX_TX_WINDOW` blocks beyond the next block."""

    code = "window_too_long"


def get_expiry_prefix(valid_until: int) -> str:
    """Prefix of the records of txs whose last valid height is `valid_until`."""
    return f"{REPLAY_PREFIX}{valid_until:020d}/"


def get_replay_key(tx: Tx) -> str:
    return f"{get_expiry_prefix(tx.valid_until)}{tx.id.hex()}"


def verify_window(tx: Tx, height: int) -> None:
    """Raise unless a block at `height` may take `tx` by its validity window."""
    if tx.valid_until < height:
        raise ExpiredTransaction(f"tx {tx.id.hex()} was valid until height {tx.valid_until}; the next is {height}")
    if tx.valid_until > height + MAX_TX_WINDOW:
        raise WindowTooLong(
            f"tx {tx.id.hex()} is valid until height {tx.valid_until}, more than {MAX_TX_WINDOW} blocks"
            f" beyond height {height}"
        )


def verify_fresh(read: Callable[[bytes], bytes | None], tx: Tx, height: int) -> None:
    """Raise unless a block at `height` may take `tx`: in its window, and not recorded in the state that
    `read` reads (a store's `get_state`, or a block's view's `get_raw`)."""
    verify_window(tx, height)
    if read(get_replay_key(tx).encode()) is not None:
        raise DuplicateTransaction(f"tx {tx.id.hex()} is already committed")


def process_tx_windows(view: StateView, height: int, txs: Sequence[Tx]) -> None:
    """Forget the txs whose window closed at `height - 1`, then record each of `txs`; raises `InvalidBlock` if
    one of them is expired, too distant or already committed (in an earlier block or this one)."""
    for key, _ in list(view.scan(get_expiry_prefix(height - 1))):
        view.delete(key)
    for index, tx in enumerate(txs):
        try:
            verify_fresh(view.get_raw, tx, height)
        except InvalidTransaction as exc:
            raise InvalidBlock(f"block {height}, tx {index}: {exc}") from exc
        view.put(get_replay_key(tx), height)
