"""The certified chain of validator-set changes, walked forward from the genesis set.

Governance changes the validator set by epochs (`ledger.membership`), and the
header of the last block before an epoch names the new set by its hash
(`BlockHeader.validators_hash`). That block is certified by the set before
the change, so whoever holds the genesis file and, for each change, that
certified header and the new set, knows which set certifies any later block
without trusting anyone: each link is checked against the set the previous
link established. State sync (a snapshot's manifest) and offline proofs
(`ledger.proof`) carry these links; `verify_epoch_links` is their one checker.

The header's `validators_hash` binds the whole new set (ids, organisations,
keys, roles, addresses, in order), so a link needs no Merkle path to the
governance tx that approved it: the certified header names the set itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.block import BlockHeader, CommitCertificate, verify_certificate
from ledger.errors import InvalidBlock, LedgerError
from ledger.genesis import Genesis
from ledger.membership import ValidatorSet, get_genesis_membership, identity_from_wire

MAX_VALIDATORS = 1_000
"""Most validators one set of a link may name."""

MAX_EPOCH_LINKS = 10_000
"""Most validator set changes a chain of links may hold."""


class InvalidEpochLink(InvalidBlock):
    """A validator-set change that is malformed, out of order or not certified by the set before it."""


@dataclass(frozen=True)
class EpochLink:
    """One validator set change: the new set, and the certified last block header before it."""

    validators: ValidatorSet
    """The set that certifies the blocks from `header.height + 1` on."""
    header: BlockHeader
    """Its `validators_hash` names `validators`; certified by the set before."""
    certificate: CommitCertificate
    """The commit certificate of `header`, by the set before the change."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "certificate": self.certificate.to_wire(),
            "header": self.header.to_wire(),
            "validators": self.validators.to_wire(),
        }

    @classmethod
    def from_wire(cls, wire: Any) -> EpochLink:
        if not isinstance(wire, dict) or set(wire) != {"certificate", "header", "validators"}:
            raise InvalidEpochLink("an epoch link is a map of certificate, header and validators")
        return cls(
            validators_from_wire(wire["validators"]),
            BlockHeader.from_wire(wire["header"]),
            CommitCertificate.from_wire(wire["certificate"]),
        )


def validators_from_wire(wire: Any) -> ValidatorSet:
    """The validator set of a link's wire form (`ValidatorSet.to_wire`); raises `InvalidEpochLink`."""
    if not isinstance(wire, list) or not wire or len(wire) > MAX_VALIDATORS:
        raise InvalidEpochLink(f"an epoch link names 1 to {MAX_VALIDATORS} validators")
    try:
        return ValidatorSet(tuple(identity_from_wire(v) for v in wire))
    except (LedgerError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidEpochLink(f"an epoch link's validators are malformed: {exc!r}") from exc


def verify_epoch_links(genesis: Genesis, height: int, links: Sequence[EpochLink]) -> ValidatorSet:
    """The set that certifies block `height`, from the genesis set through each certified change; raises
    `InvalidBlock` unless every link lies below `height`, in order, certified by the set before it, and names
    the next set by its hash."""
    if len(links) > MAX_EPOCH_LINKS:
        raise InvalidEpochLink(f"at most {MAX_EPOCH_LINKS} validator set changes")
    validators = get_genesis_membership(genesis).validator_set(1)
    last = 0
    for link in links:
        header = link.header
        if not last < header.height < height or header.chain_id != genesis.chain_id:
            raise InvalidEpochLink(f"epoch link at height {header.height} is out of order or not below {height}")
        verify_certificate(link.certificate, genesis, header.hash(), header.height, validators)
        if header.validators_hash != link.validators.hash():
            raise InvalidEpochLink(f"block {header.height} does not name the validator set its link gives")
        validators, last = link.validators, header.height
    return validators


__all__ = [
    "MAX_EPOCH_LINKS",
    "MAX_VALIDATORS",
    "EpochLink",
    "InvalidEpochLink",
    "validators_from_wire",
    "verify_epoch_links",
]
