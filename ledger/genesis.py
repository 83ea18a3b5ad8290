"""The genesis file: who is in the network, and the rules every node starts from.

It names the chain, the organisations (each with the X25519 public key that
personal data is sealed to, `ledger.personal`), the validators (id, organisation,
public key, network address) and the client identities with their roles.
Every node of a network holds the same file; its hash is what block 1 links
to. Membership checks (is this signer known, may it send this kind of tx)
start here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from ledger.errors import InvalidGenesis
from ledger.strict import convert_strict

ROLES = frozenset({"validator", "store", "channel", "operator", "auditor", "payment_provider", "node"})
"""Every role an identity may hold (`payment_provider`: a payment service that records an organisation's
payments, and that captures may be required to come from; `node`: an organisation's node that follows the
chain without voting, which may read blocks and snapshots from the validators and sign nothing else)."""


@dataclass(frozen=True)
class Identity:
    """A member key: a validator node or a client (store, channel, operator, auditor, payment provider)."""

    id: str
    org: str
    public_key: bytes
    roles: frozenset[str]
    address: str = ""
    """Base URL of a validator's node server; empty for clients."""

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "org": self.org,
            "public_key": self.public_key.hex(),
            "roles": sorted(self.roles),
        }
        if self.address:
            wire["address"] = self.address
        return wire


def compute_f(n: int) -> int:
    """How many of n validators may fail: n = 3f + 1 (rounded down)."""
    return (n - 1) // 3


def compute_quorum(n: int) -> int:
    """Votes needed among n validators to certify: 2f + 1 when n = 3f + 1."""
    return (n + compute_f(n)) // 2 + 1


@dataclass(frozen=True)
class ConsensusParams:
    """Consensus settings that every validator must share."""

    checkpoint_interval: int = 50
    """A checkpoint every this many blocks."""
    max_block_txs: int = 400
    """Most txs in one block."""
    max_block_bytes: int = 1024 * 1024
    """Most bytes of signed txs in one block, so that a NEW-VIEW carrying q+1 blocks fits in an envelope."""
    view_timeout_ms: int = 3000
    """Base time a replica waits for progress before changing view."""
    max_clock_skew_ms: int = 5000
    """How far a block timestamp may run ahead of a replica's clock."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "checkpoint_interval": self.checkpoint_interval,
            "max_block_bytes": self.max_block_bytes,
            "max_block_txs": self.max_block_txs,
            "max_clock_skew_ms": self.max_clock_skew_ms,
            "view_timeout_ms": self.view_timeout_ms,
        }


@dataclass(frozen=True)
class Genesis:
    """The agreed starting point of one chain."""

    chain_id: str
    genesis_time_ms: int
    organisations: tuple[dict[str, str], ...]
    """Each `id`, `name` and, for an organisation that reads personal data, `encryption_key` (hex X25519)."""
    validators: tuple[Identity, ...]
    """In their fixed order: index i is validator i (primary of view v is v mod n)."""
    clients: tuple[Identity, ...]
    consensus: ConsensusParams = field(default_factory=ConsensusParams)

    def __post_init__(self) -> None:
        ids = [i.id for i in self.validators + self.clients]
        if len(set(ids)) != len(ids):
            raise InvalidGenesis("identity ids must be unique")
        if not self.validators:
            raise InvalidGenesis("genesis needs at least one validator")
        orgs = {o["id"] for o in self.organisations}
        for ident in self.validators + self.clients:
            if ident.org not in orgs:
                raise InvalidGenesis(f"identity {ident.id!r} names unknown organisation {ident.org!r}")
            if not ident.roles <= ROLES:
                raise InvalidGenesis(f"identity {ident.id!r} has unknown roles {sorted(ident.roles - ROLES)}")
        object.__setattr__(self, "_by_id", {i.id: i for i in self.validators + self.clients})

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        """How many of the genesis validators may fail (`compute_f`)."""
        return compute_f(self.n)

    @property
    def quorum(self) -> int:
        """Votes the genesis validators need to commit (`compute_quorum`)."""
        return compute_quorum(self.n)

    def identity(self, ident: str) -> Identity | None:
        by_id: dict[str, Identity] = object.__getattribute__(self, "_by_id")
        return by_id.get(ident)

    def validator_keys(self) -> dict[str, bytes]:
        return {v.id: v.public_key for v in self.validators}

    def validator_ids(self) -> list[str]:
        return [v.id for v in self.validators]

    def to_wire(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "clients": [c.to_wire() for c in self.clients],
            "consensus": self.consensus.to_wire(),
            "genesis_time_ms": self.genesis_time_ms,
            "organisations": [dict(o) for o in self.organisations],
            "validators": [v.to_wire() for v in self.validators],
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_wire(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_wire(cls, wire: Any) -> Genesis:
        """The genesis a parsed file holds, every field of its declared type (`GenesisFile`, `ConsensusParams`) and
        no undeclared key; `InvalidGenesis` naming the field otherwise."""
        file = convert_strict(wire, GenesisFile, InvalidGenesis, "malformed genesis")
        consensus = convert_strict(file.consensus, ConsensusParams, InvalidGenesis, "malformed genesis consensus")
        try:
            return cls(
                chain_id=file.chain_id,
                genesis_time_ms=file.genesis_time_ms,
                organisations=tuple(_organisation(o) for o in file.organisations),
                validators=tuple(_identity(v, validator=True) for v in file.validators),
                clients=tuple(_identity(c, validator=False) for c in file.clients),
                consensus=consensus,
            )
        except ValueError as exc:
            raise InvalidGenesis(f"malformed genesis: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            wire = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise InvalidGenesis(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_wire(wire)


class IdentityFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An identity as the genesis file writes it."""

    id: str
    org: str
    public_key: str
    """32 bytes in hex."""
    roles: list[str] | None = None
    """None: a validator's `["validator"]`, a client's none."""
    address: str = ""


class OrganisationFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """An organisation as the genesis file writes it."""

    id: str
    name: str | None = None
    """Defaults to the id."""
    encryption_key: str | None = None
    """The X25519 public key (64 hex digits) that personal data is sealed to; None: the organisation reads none."""


class GenesisFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The genesis file's declared shape (`Genesis.from_wire` checks a parsed file against it)."""

    chain_id: str
    genesis_time_ms: int
    organisations: list[OrganisationFile]
    validators: list[IdentityFile]
    clients: list[IdentityFile] = []
    consensus: dict[str, Any] = {}
    """`ConsensusParams` by field name (checked against its declared fields)."""


def _organisation(wire: OrganisationFile) -> dict[str, str]:
    organisation = {"id": wire.id, "name": wire.name or wire.id}
    if wire.encryption_key is not None:
        organisation["encryption_key"] = parse_encryption_key(wire.encryption_key, f"organisation {wire.id!r}")
    return organisation


def parse_encryption_key(value: str, owner: str) -> str:
    """An X25519 public key as 64 lowercase hex digits; `InvalidGenesis` naming its `owner` otherwise."""
    if len(value) != 64 or value.strip("0123456789abcdef"):
        raise InvalidGenesis(f"{owner}: encryption_key must be 64 lowercase hex digits (an X25519 public key)")
    return value


def _identity(wire: IdentityFile, validator: bool) -> Identity:
    key = bytes.fromhex(wire.public_key)
    if len(key) != 32:
        raise InvalidGenesis(f"identity {wire.id!r}: public key must be 32 bytes")
    roles = frozenset(wire.roles if wire.roles is not None else (["validator"] if validator else []))
    if validator and "validator" not in roles:
        roles = roles | {"validator"}
    return Identity(wire.id, wire.org, key, roles, wire.address)
