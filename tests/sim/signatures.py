"""Counting signature checks: what a message makes a replica spend.

Every signature a replica checks goes through `ledger.keys.verify` (by way of
`is_valid_signature`); importing this module wraps it with a counter, so the
simulator can read how many checks one delivered message cost its receiver
(`checks()` before and after). A Byzantine validator that stuffs a NEW-VIEW
with copies of one view change, or floods copies of a message, is caught by
that count, whatever the replica does with the message in the end.
"""

from __future__ import annotations

import ledger.keys
from consensus.messages import Message, NewView, ViewChange

_verify = ledger.keys.verify
_count = 0


def _counting_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    global _count
    _count += 1
    _verify(public_key, message, signature)


def checks() -> int:
    """Signature checks made so far in this process."""
    return _count


def most_checks(message: Message, validators: int) -> int:
    """The checks an honest `message` of its kind may need with `validators` validators: one signature for a vote,
    proposal, checkpoint or timeout; for a view change its own, a commit certificate's and a prepared certificate's
    (a pre-prepare and a prepare from each validator); for a NEW-VIEW its own and its pre-prepare's, and a view
    change from each validator."""
    view_change = 2 * validators + 2
    if isinstance(message, ViewChange):
        return view_change
    if isinstance(message, NewView):
        return 2 + validators * view_change
    return 1


ledger.keys.verify = _counting_verify
