"""Partitions of any shape, as sets of cut one-way links between endpoints.

The simulated network joins endpoints (a replica process each; a validator
has two when it runs as Twins). A partition says which directed links carry
nothing: `blocked` holds (sender, receiver) pairs. Every shape is built from
that one idea:

- `split`: groups that hear only their own members;
- `bridge`: two sides that cannot hear each other, and one endpoint that hears
  and is heard by both;
- `ring`: each endpoint hears only its two neighbours in a cycle;
- `one_way`: `deaf` does not hear `speaker`, while `speaker` still hears `deaf`;
- `isolate`: one endpoint cut off both ways.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Partition:
    """A named set of links that carry nothing while the partition lasts."""

    name: str
    """What it looks like, for the report of a failing schedule."""
    blocked: frozenset[tuple[str, str]]
    """(sender, receiver) endpoint pairs whose messages are lost."""

    def is_cut(self, sender: str, receiver: str) -> bool:
        return (sender, receiver) in self.blocked

    def __repr__(self) -> str:
        return self.name


def split(groups: Sequence[Iterable[str]]) -> Partition:
    """Groups that hear only their own members."""
    sets = [frozenset(group) for group in groups]
    blocked = {(a, b) for one in sets for other in sets if one is not other for a in one for b in other}
    return Partition(f"split{[sorted(s) for s in sets]}", frozenset(blocked))


def bridge(left: Iterable[str], middle: str, right: Iterable[str]) -> Partition:
    """`left` and `right` cannot hear each other; `middle` hears and is heard by both."""
    lefts, rights = frozenset(left), frozenset(right)
    blocked = {(a, b) for a in lefts for b in rights} | {(b, a) for a in lefts for b in rights}
    return Partition(f"bridge({sorted(lefts)} <{middle}> {sorted(rights)})", frozenset(blocked))


def ring(order: Sequence[str]) -> Partition:
    """Each endpoint hears only its two neighbours in `order`, taken as a cycle."""
    size = len(order)
    neighbours = {order[i]: {order[(i - 1) % size], order[(i + 1) % size]} for i in range(size)}
    blocked = {(a, b) for a in order for b in order if a != b and b not in neighbours[a]}
    return Partition(f"ring{list(order)}", frozenset(blocked))


def one_way(speaker: str, deaf: str) -> Partition:
    """`deaf` does not hear `speaker`; `speaker` still hears `deaf`."""
    return Partition(f"one_way({speaker} -/-> {deaf})", frozenset({(speaker, deaf)}))


def isolate(endpoint: str, everyone: Iterable[str]) -> Partition:
    """`endpoint` hears nobody and nobody hears it."""
    others = [e for e in everyone if e != endpoint]
    blocked = {(endpoint, o) for o in others} | {(o, endpoint) for o in others}
    return Partition(f"isolate({endpoint})", frozenset(blocked))


SHAPES = ("split", "bridge", "ring", "one_way", "isolate")
"""Every partition shape a random schedule may draw."""


def draw_partition(rng: random.Random, endpoints: Sequence[str]) -> Partition:
    """A partition of a random shape over `endpoints` taken in a random order."""
    shape = rng.choice(SHAPES)
    order = list(endpoints)
    rng.shuffle(order)
    if shape == "split":
        cut = max(1, len(order) // 2)
        return split([order[:cut], order[cut:]])
    if shape == "bridge" and len(order) >= 3:
        rest = order[1:]
        return bridge(rest[: len(rest) // 2], order[0], rest[len(rest) // 2 :])
    if shape == "ring" and len(order) >= 4:
        return ring(order)
    if shape == "one_way" and len(order) >= 2:
        return one_way(order[0], order[1])
    return isolate(order[0], endpoints)
