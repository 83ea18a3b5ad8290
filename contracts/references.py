"""Business keys: an action named by the sender's own reference is applied once.

A retrying client cannot always tell whether its first attempt was taken, so
every action that changes stock or money can carry a reference of the
sender's (an order's `external_ref`, a receipt's or transfer's `document`, a
payment, cancellation, return or return receipt `reference`). The first tx
under a reference is applied and its result remembered with a digest of what
it asked for; a tx under the same reference asking the same answers that
result with `duplicate: true` and changes nothing, and one asking something
else is refused with `duplicate_reference`, never answered as the first.
Each kind keeps its references in a key of its own (`contracts.keys`), scoped
to what owns them (a channel, a location, an order, a return).
"""

from __future__ import annotations

from typing import Any

from contracts.errors import Rejected
from ledger.encoding import encode, sha256
from ledger.state import StateView


def hash_reference(reference: str) -> str:
    """Hex sha256 of a reference's text: how it appears in a state key, whatever characters it holds."""
    return sha256(reference.encode()).hex()


def compute_digest(value: Any) -> str:
    """Hex sha256 of a value's canonical encoding: what an action asked for."""
    return sha256(encode(value)).hex()


def recall(state: StateView, key: str, content: Any, reference: str) -> dict[str, Any] | None:
    """The result the action taken under `key` gave, marked as a duplicate, if it asked for `content` too; None
    if the reference is new; `duplicate_reference` if it asked for something else."""
    known = state.get(key)
    if known is None:
        return None
    if known["content"] != compute_digest(content):
        raise Rejected("duplicate_reference", f"reference {reference!r} was taken before by another request")
    return {**known["result"], "duplicate": True}


def remember(state: StateView, key: str, content: Any, result: dict[str, Any]) -> None:
    """Keep what the action taken under `key` asked for and the result it gave."""
    state.put(key, {"content": compute_digest(content), "result": result})
