"""What a replica asks its driver to do: the only way it acts on the world.

The driver carries out a list of actions in order. `Persist` must be durable
before any later action of the same list is carried out, so a replica never
sends a signed message it could forget across a crash. `Decide` is applied
synchronously, before the next event reaches the replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.messages import Message
from ledger.block import Block, CommitCertificate


@dataclass(frozen=True)
class Send:
    """Send `message` to one validator."""

    to: str
    """Validator id of the receiver."""
    message: Message


@dataclass(frozen=True)
class Broadcast:
    """Send `message` to every other validator."""

    message: Message


@dataclass(frozen=True)
class Persist:
    """Write `record` durably before carrying out any later action; replay it to the replica on restart."""

    record: dict[str, Any]


@dataclass(frozen=True)
class Decide:
    """Commit `block` now, storing `certificate` with it."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True)
class SetTimer:
    """(Re)arm the timer `name` to fire after `delay_ms`."""

    name: str
    delay_ms: int


@dataclass(frozen=True)
class CancelTimer:
    """Disarm the timer `name` if it is armed."""

    name: str


@dataclass(frozen=True)
class RequestSync:
    """Others have committed at least up to `height`: sync blocks from peers, then call `on_synced`."""

    height: int


Action = Send | Broadcast | Persist | Decide | SetTimer | CancelTimer | RequestSync
"""Anything a replica may ask of its driver."""
