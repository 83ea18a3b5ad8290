"""Failures of the p2p layer.

A message that fails a check on arrival is `Dropped`, with a short machine
reason (`oversized`, `malformed`, `unknown_sender`, `wrong_chain`,
`wrong_recipient`, `bad_signature`, `replay`, `unknown_kind`,
`rate_limited`) that the gate counts. A peer that cannot be reached is
`PeerUnavailable`; a snapshot that does not check out is
`InvalidSnapshot`. Forged blocks and bad certificates keep the ledger's own
`InvalidBlock` / `InvalidCertificate`.
"""

from __future__ import annotations

from ledger.errors import InvalidBlock, LedgerError


class P2PError(LedgerError):
    """Base class of the p2p layer's expected failures."""

    code = "p2p_error"


class Dropped(P2PError):
    """An incoming message refused before anything acted on it."""

    code = "dropped"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        """Short machine reason, the key under which the drop is counted."""


class PeerUnavailable(P2PError):
    """A peer did not answer, answered with an error status, or sent junk framing."""

    code = "peer_unavailable"


class InvalidSnapshot(InvalidBlock):
    """A state snapshot whose manifest or entries do not match its certified block."""

    code = "invalid_snapshot"
