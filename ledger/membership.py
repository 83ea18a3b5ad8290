"""The membership in force: organisations, client identities, and the validator set of every height.

Genesis names the first members. Governance changes them (`contracts.governance`) and the changed
membership is kept in the world state under `MEMBERSHIP_KEY`, so every node, including one that
joined by state sync, checks admission and execution against the same members; until the first
change the membership is the genesis one (nothing is stored, and a chain that never changes its
members has the same state as before membership moved into the state).

Organisations and client identities change as soon as the approving tx executes. The validator set
changes by **epochs**: an epoch's set certifies every block from its `from_height` until the next
epoch begins. The block that approves a change schedules its epoch to begin right after the next
checkpoint boundary (`compute_epoch_start`), never at the very next height, so every replica has
committed the approving block, and knows the set it will vote in, before the boundary is reached;
the set that certifies block H is thus a function of the state after block H-1. Epochs stay in the
state for good (one per change), so the certifying set of any height can be read from any later
state, and the header of the last block before an epoch begins commits to that epoch's set
(`BlockHeader.validators_hash`): the chain of set changes is derivable from certified headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, NotRequired, TypedDict

from ledger.encoding import decode, hash_value
from ledger.errors import InvalidGenesis
from ledger.genesis import Genesis, Identity, compute_f, compute_quorum

MEMBERSHIP_KEY = "membership"
"""State key of the membership once governance has changed it (absent: the genesis membership)."""


class Organisation(TypedDict):
    """A member organisation."""

    id: str
    name: str
    encryption_key: NotRequired[str]
    """The X25519 public key (hex) that personal data is sealed to; absent: the organisation reads none."""


@dataclass(frozen=True)
class ValidatorSet:
    """The validators that certify a range of heights, in their fixed order (primary of view v: v mod n)."""

    validators: tuple[Identity, ...]

    def __post_init__(self) -> None:
        if not self.validators:
            raise InvalidGenesis("a validator set holds at least one validator")
        if len({v.id for v in self.validators}) != len(self.validators):
            raise InvalidGenesis("validator ids in a set must be unique")

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        """How many of the set may fail (`compute_f`)."""
        return compute_f(self.n)

    @property
    def quorum(self) -> int:
        """Votes of the set needed to certify (`compute_quorum`)."""
        return compute_quorum(self.n)

    @cached_property
    def keys(self) -> dict[str, bytes]:
        """Public key by validator id."""
        return {v.id: v.public_key for v in self.validators}

    def ids(self) -> list[str]:
        return [v.id for v in self.validators]

    def primary(self, view: int) -> str:
        """The primary of `view`: the validators in order, round robin."""
        return self.validators[view % self.n].id

    def to_wire(self) -> list[dict[str, Any]]:
        return [v.to_wire() for v in self.validators]

    def hash(self) -> bytes:
        """What a header commits to for this set (ids, organisations, keys, roles, addresses, in order)."""
        return self._hash

    @cached_property
    def _hash(self) -> bytes:
        return hash_value(self.to_wire())


@dataclass(frozen=True)
class Epoch:
    """A validator set and the first height it certifies."""

    from_height: int
    validators: ValidatorSet


@dataclass(frozen=True)
class Membership:
    """Who is in the network: organisations, clients, and the validator set epochs (first from height 1)."""

    organisations: tuple[Organisation, ...]
    clients: tuple[Identity, ...]
    epochs: tuple[Epoch, ...]

    def validator_set(self, height: int) -> ValidatorSet:
        """The set that certifies block `height` (as far as this membership knows the schedule)."""
        current = self.epochs[0].validators
        for epoch in self.epochs[1:]:
            if epoch.from_height > height:
                break
            current = epoch.validators
        return current

    @property
    def latest(self) -> ValidatorSet:
        """The last scheduled set: what the next change starts from."""
        return self.epochs[-1].validators

    def identity(self, ident: str, height: int) -> Identity | None:
        """The client, or the validator of the set in force at `height`, with id `ident`."""
        client = self._clients.get(ident)
        if client is not None:
            return client
        for validator in self.validator_set(height).validators:
            if validator.id == ident:
                return validator
        return None

    def client(self, ident: str) -> Identity | None:
        return self._clients.get(ident)

    @cached_property
    def _clients(self) -> dict[str, Identity]:
        return {c.id: c for c in self.clients}

    def org_ids(self) -> list[str]:
        """The member organisations' ids, sorted."""
        return sorted(o["id"] for o in self.organisations)

    def has_org(self, org: str) -> bool:
        return any(o["id"] == org for o in self.organisations)

    def encryption_key(self, org: str) -> bytes | None:
        """The X25519 public key personal data is sealed to for `org` (None: not a member, or it has none)."""
        for organisation in self.organisations:
            if organisation["id"] == org and "encryption_key" in organisation:
                return bytes.fromhex(organisation["encryption_key"])
        return None

    def next_set_hash(self, height: int) -> bytes:
        """`BlockHeader.validators_hash` of block `height`: the hash of the set that begins at `height + 1`,
        or empty when the same set goes on."""
        for epoch in self.epochs[1:]:
            if epoch.from_height == height + 1:
                return epoch.validators.hash()
        return b""

    def to_wire(self) -> dict[str, Any]:
        return {
            "clients": [c.to_wire() for c in self.clients],
            "epochs": [{"from_height": e.from_height, "validators": e.validators.to_wire()} for e in self.epochs],
            "organisations": [dict(o) for o in self.organisations],
        }

    @classmethod
    def from_wire(cls, wire: Any) -> Membership:
        """The membership of a stored record (written by the governance contract, so trusted in shape)."""
        return cls(
            organisations=tuple(_organisation(o) for o in wire["organisations"]),
            clients=tuple(identity_from_wire(c) for c in wire["clients"]),
            epochs=tuple(
                Epoch(e["from_height"], ValidatorSet(tuple(identity_from_wire(v) for v in e["validators"])))
                for e in wire["epochs"]
            ),
        )


def _organisation(wire: dict[str, str]) -> Organisation:
    organisation = Organisation(id=wire["id"], name=wire.get("name", wire["id"]))
    if "encryption_key" in wire:
        organisation["encryption_key"] = wire["encryption_key"]
    return organisation


def identity_from_wire(wire: dict[str, Any]) -> Identity:
    """An identity of a stored membership record (see `Identity.to_wire`)."""
    return Identity(
        wire["id"], wire["org"], bytes.fromhex(wire["public_key"]), frozenset(wire["roles"]), wire.get("address", "")
    )


def compute_epoch_start(approved_height: int, checkpoint_interval: int) -> int:
    """The first height a validator set approved in block `approved_height` certifies: the height right after the
    first checkpoint boundary above it (so at least two blocks later)."""
    interval = max(checkpoint_interval, 1)
    return (approved_height // interval + 1) * interval + 1


def get_genesis_membership(genesis: Genesis) -> Membership:
    """The membership genesis names (computed once per genesis object)."""
    cached = _GENESIS_CACHE.get(id(genesis))
    if cached is not None and cached[0] is genesis:
        return cached[1]
    membership = Membership(
        tuple(_organisation(o) for o in genesis.organisations),
        genesis.clients,
        (Epoch(1, ValidatorSet(genesis.validators)),),
    )
    if len(_GENESIS_CACHE) >= GENESIS_CACHE_SIZE:
        _GENESIS_CACHE.clear()
    _GENESIS_CACHE[id(genesis)] = (genesis, membership)
    return membership


def decode_membership(raw: bytes | None, genesis: Genesis) -> Membership:
    """The membership of the stored record bytes `raw` (None: genesis's); the last one decoded is kept."""
    if raw is None:
        return get_genesis_membership(genesis)
    if _LAST_DECODED and _LAST_DECODED[0][0] == raw:
        return _LAST_DECODED[0][1]
    membership = Membership.from_wire(decode(raw, check=False))
    _LAST_DECODED[:] = [(raw, membership)]
    return membership


GENESIS_CACHE_SIZE = 64
"""Genesis memberships kept (a node has one genesis; a test process makes many)."""

_GENESIS_CACHE: dict[int, tuple[Genesis, Membership]] = {}
_LAST_DECODED: list[tuple[bytes, Membership]] = []

__all__ = [
    "MEMBERSHIP_KEY",
    "Epoch",
    "Membership",
    "Organisation",
    "ValidatorSet",
    "compute_epoch_start",
    "decode_membership",
    "get_genesis_membership",
    "identity_from_wire",
]
