"""The one hierarchy of expected failures.

Every refusal the system can give for bad input is a `LedgerError`; callers
catch the base class at the boundary (API, CLI, sync) and report `code` and
the message. Each class also says which HTTP status the API answers it with
(`http_status`), so the boundary maps errors by class, never by a list of
cases. A broken internal invariant is not a `LedgerError`: it raises
something else and crashes loudly.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every expected, reportable failure."""

    code = "ledger_error"
    """Machine-readable reason, the `error` of an API error body."""
    http_status = 400
    """Status of the API answer: the request was at fault unless a subclass says otherwise."""
    retry_after_s: int | None = None
    """For a refusal that passes with time (no room yet), the seconds to wait: the API's `Retry-After`."""


class EncodingError(LedgerError):
    """Data that cannot be put in canonical form (a float, an unknown type)."""

    code = "encoding_error"


class InvalidSignature(LedgerError):
    """A signature that does not verify under the claimed key."""

    code = "invalid_signature"


class UnknownSigner(LedgerError):
    """A signer that the genesis membership does not list."""

    code = "unknown_signer"


class InvalidTransaction(LedgerError):
    """A transaction refused on admission (schema, chain id, role, size)."""

    code = "invalid_transaction"


class InvalidBlock(LedgerError):
    """A block whose fields, links or roots do not check out."""

    code = "invalid_block"


class InvalidCertificate(InvalidBlock):
    """A commit certificate without a valid quorum of signatures."""

    code = "invalid_certificate"


class InvalidGenesis(LedgerError):
    """A genesis file that is malformed or inconsistent."""

    code = "invalid_genesis"


class StoreCorrupted(LedgerError):
    """The store holds data that does not match what was written."""

    code = "store_corrupted"
    http_status = 500
