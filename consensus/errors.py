"""Refusals specific to consensus: malformed messages and a damaged consensus log."""

from __future__ import annotations

from ledger.errors import LedgerError


class InvalidMessage(LedgerError):
    """A consensus message that is malformed, unsigned, or signed by the wrong key."""

    code = "invalid_consensus_message"


class ConsensusLogCorrupted(LedgerError):
    """Persisted replica records that cannot be read back; the replica must not start on them."""

    code = "consensus_log_corrupted"
