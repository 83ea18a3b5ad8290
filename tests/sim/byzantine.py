"""Byzantine validators for the simulator: an honest replica underneath, lies on the wire.

Each behaviour rewrites what its node sends (`rewrite`) and may watch what it
receives (`observe`):

- `silent`: sends nothing (as primary, a silent primary);
- `equivocate`: as primary, proposes one block to some replicas and another
  to the rest, and votes for each block towards the replicas that got it;
- `wrong_digest`: votes for block hashes that match no proposal;
- `forge`: also sends votes that claim to come from other validators, and
  copies of its messages with broken signatures;
- `replay`: also re-sends, as their original senders, messages it received
  earlier (older views and heights);
- `fresh_new_view`: sends its view-0 commits to one replica only (so a block
  may commit at some replicas and not others) and, as a new primary, ignores
  the prepared certificates, proposes a fresh block in its NEW-VIEW and votes
  for that block.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from consensus.messages import Commit, Message, NewView, Prepare, PrePrepare, sign_message
from ledger.encoding import sha256

if TYPE_CHECKING:
    from tests.sim.simulator import SimNode, Simulator

Delivery = tuple[str, Message]


class Honest:
    """Sends what the replica sends; subclasses lie."""

    def __init__(self, sim: Simulator, vid: str) -> None:
        self.sim = sim
        self.id = vid
        self.key = sim.network.keys[vid]
        self.others = [v for v in sim.genesis.validator_ids() if v != vid]

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        return [(to, message)]

    def observe(self, message: Message) -> None:
        """Called with every message delivered to this node."""


class Silent(Honest):
    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        return []


class Equivocate(Honest):
    def __init__(self, sim: Simulator, vid: str) -> None:
        super().__init__(sim, vid)
        self.second = set(self.others[len(self.others) // 2 :])
        """Replicas that are shown the second block."""
        self.twins: dict[bytes, bytes] = {}
        """Hash of each block proposed -> hash of its twin."""

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if to not in self.second:
            return [(to, message)]
        if isinstance(message, PrePrepare) and message.block.header.proposer == self.id:
            twin = node.app.make_block(message.height, message.view, message.block.txs, time_offset=1)
            self.twins[message.block.hash()] = twin.hash()
            return [(to, sign_message(dataclasses.replace(message, block=twin), self.key))]
        if isinstance(message, Prepare) and message.block_hash in self.twins:
            twin = self.twins[message.block_hash]
            prepare = sign_message(dataclasses.replace(message, block_hash=twin), self.key)
            commit = Commit(message.chain_id, message.view, message.height, twin, self.id)
            return [(to, prepare), (to, sign_message(commit, self.key))]
        return [(to, message)]


class WrongDigest(Honest):
    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if isinstance(message, Prepare | Commit):
            lie = dataclasses.replace(message, block_hash=sha256(message.block_hash + to.encode()))
            return [(to, sign_message(lie, self.key))]
        return [(to, message)]


class Forge(Honest):
    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if isinstance(message, Prepare | Commit):
            for victim in self.others:
                forged = sign_message(dataclasses.replace(message, sender=victim), self.key)
                self.sim.deliver(self.id, to, forged, claimed_sender=victim)
        broken = dataclasses.replace(message, signature=bytes(64))
        return [(to, broken), (to, message)]


class Replay(Honest):
    def __init__(self, sim: Simulator, vid: str) -> None:
        super().__init__(sim, vid)
        self.seen: list[Message] = []

    def observe(self, message: Message) -> None:
        if len(self.seen) < 400:
            self.seen.append(message)

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if self.seen and self.sim.rng.random() < 0.3:
            old = self.sim.rng.choice(self.seen)
            if old.sender != to:
                self.sim.deliver(self.id, to, old, claimed_sender=old.sender)
        return [(to, message)]


class FreshNewView(Honest):
    def __init__(self, sim: Simulator, vid: str) -> None:
        super().__init__(sim, vid)
        self.twins: dict[bytes, bytes] = {}
        """Hash of each block it was obliged to re-propose -> hash of the fresh block it proposed instead."""

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if isinstance(message, Commit) and message.view == 0 and to != self.others[0]:
            return []
        if isinstance(message, NewView) and message.pre_prepare is not None:
            old = message.pre_prepare
            fresh_block = node.app.make_block(old.height, message.view, old.block.txs[:1], time_offset=7)
            self.twins[old.block.hash()] = fresh_block.hash()
            fresh = sign_message(dataclasses.replace(old, block=fresh_block), self.key)
            return [(to, sign_message(dataclasses.replace(message, pre_prepare=fresh), self.key))]
        if isinstance(message, Prepare) and message.block_hash in self.twins:
            twin = self.twins[message.block_hash]
            prepare = sign_message(dataclasses.replace(message, block_hash=twin), self.key)
            commit = Commit(message.chain_id, message.view, message.height, twin, self.id)
            return [(to, prepare), (to, sign_message(commit, self.key))]
        return [(to, message)]


BEHAVIOURS: dict[str, type[Honest]] = {
    "silent": Silent,
    "equivocate": Equivocate,
    "wrong_digest": WrongDigest,
    "forge": Forge,
    "replay": Replay,
    "fresh_new_view": FreshNewView,
}
"""Every Byzantine behaviour by name."""


def make_behaviour(name: str, sim: Simulator, vid: str) -> Any:
    return BEHAVIOURS[name](sim, vid)
