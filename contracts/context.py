"""What a contract rule may know besides the state and the tx: the block and the signer.

Rules never read a clock; `time_ms` is the block timestamp set by the
proposer and checked by every replica.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.genesis import Genesis, Identity
from ledger.membership import Membership

if TYPE_CHECKING:
    from contracts.settings import Setting


@dataclass(frozen=True)
class BlockContext:
    """The block being executed."""

    height: int
    time_ms: int
    """Block timestamp in milliseconds since the epoch."""
    genesis: Genesis
    config: dict[str, Any] = field(default_factory=dict)
    """Ledger-wide configuration, filled in by the runtime before the `begin_block` hooks run."""


@dataclass(frozen=True)
class TxContext:
    """One tx's view of its block: `process_<kind>(state, tx, ctx)` receives this."""

    height: int
    time_ms: int
    tx_index: int
    """Position of the tx in its block (0-based)."""
    tx_id: bytes
    kind: str
    """The tx's kind: what the roles table (`contracts.roles`) is read for."""
    signer: Identity
    """The member identity that signed the tx (roles already checked)."""
    config: dict[str, Any]
    """Ledger-wide configuration as set by governance/operator txs (read from state)."""
    genesis: Genesis
    settings: dict[str, Setting]
    """The declared configuration keys (`contracts.settings`), by key: what a config change is checked against."""
    membership: Membership
    """The membership in force before this tx (organisations, clients, validator epochs)."""
    run_part: Callable[..., Any] = field(default=lambda part, *args: part(*args))
    """`run_part(part, *args)`: run one part of the tx (one order of an import) under a step budget of its own,
    so that a part too large for it fails alone (`StepMeter.run_part`)."""


Context = TxContext | BlockContext
"""What a helper shared by tx rules and `begin_block` hooks receives."""
