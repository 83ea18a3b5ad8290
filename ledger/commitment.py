"""The state commitment: an additive multiset hash over the world state.

Each state entry (key, value) is hashed with SHAKE-256 to a 2048-bit number,
and the commitment is the sum of all of them modulo 2^2048 (AdHash, the
scalar form of Facebook's LtHash). Adding an entry adds, removing one
subtracts, so a block that writes k keys costs k hashes and additions however
large the state is, and the same number is recomputed from a full state dump
in any order. With a 2048-bit modulus the best known (generalised birthday)
attacks stay far out of reach; see docs/adr/0002-state-commitment.md.
The 32-byte commitment in block headers is sha256 of the accumulator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ledger.encoding import sha256

BITS = 2048
"""Width of the accumulator."""

ACCUMULATOR_BYTES = BITS // 8
"""Length of an accumulator's bytes (`StateAccumulator.to_bytes`)."""
_MASK = (1 << BITS) - 1


def hash_entry(key: bytes, value: bytes) -> int:
    """Map one state entry to a number below 2^2048 (length-prefixed key, then value)."""
    digest = hashlib.shake_256(len(key).to_bytes(4, "big") + key + value).digest(ACCUMULATOR_BYTES)
    return int.from_bytes(digest, "big")


class StateAccumulator:
    """A running multiset hash; `digest` is the 32-byte state commitment."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def add(self, key: bytes, value: bytes) -> None:
        self.value = (self.value + hash_entry(key, value)) & _MASK

    def remove(self, key: bytes, value: bytes) -> None:
        self.value = (self.value - hash_entry(key, value)) & _MASK

    def absorb(self, other: StateAccumulator) -> None:
        """Add the entries `other` accumulated (a disjoint part of the same state, such as a snapshot chunk)."""
        self.value = (self.value + other.value) & _MASK

    def copy(self) -> StateAccumulator:
        return StateAccumulator(self.value)

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(ACCUMULATOR_BYTES, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> StateAccumulator:
        return cls(int.from_bytes(data, "big"))

    def digest(self) -> bytes:
        return sha256(self.to_bytes())


def compute_commitment(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Commitment of a full state dump, from scratch."""
    acc = StateAccumulator()
    for key, value in entries:
        acc.add(key, value)
    return acc.digest()
