"""Byzantine validators for the simulator: an honest replica underneath, lies on the wire.

Each behaviour rewrites what its node sends (`rewrite`) and may watch what it
receives (`observe`). `honest` lies in nothing: a faulty validator whose
faults a staged schedule adds step by step. The others:

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

Lies in the view change, each in a VIEW-CHANGE or NEW-VIEW it signs itself
(so its signature verifies):

- `hide_prepared`: its view changes claim less: no prepared certificate, and
  an older certified height when it has one;
- `stale_prepared`: its view changes carry the oldest prepared certificate it
  has seen (from an earlier view or height) with the certificate that goes
  with it;
- `swap_body_view_change`: its prepared certificate keeps the genuine header
  (and so the genuine signatures) but carries a different body;
- `equivocate_view_change`: sends half the replicas its honest view change
  and the other half one that hides what it prepared;
- `wrong_reproposal`: as a new primary, its NEW-VIEW re-proposes something
  else than the view changes oblige (a fresh block, the right header with
  another body, or nothing), or picks the view changes that hide a prepared
  block;
- `swap_body`: as primary, shows one replica the right header with a
  different body;
- `censor`: as primary, leaves half the txs (`is_censored`) out of its
  proposals while it proposes the others.

And `lying_sync`: votes honestly but lies to the nodes that sync from it
(claims a far higher head, then serves nothing, forged certificates, or
blocks that do not follow).

And `stuff`: stuffs its NEW-VIEWs with copies of one view change and its
view changes with copies of one prepare, all genuinely signed, and floods
copies of both (the simulator counts what they cost in signature checks).

And `fuzz`: sends, besides each honest message, mutants of it: views and
heights shifted (by one, by the window, far), digests and roots replaced,
signatures broken, senders and chains changed, headers altered, bodies
swapped, certificates and their votes stripped or repeated, and raw bytes
flipped; a mutant of its own message is re-signed more often than not, so its
signature verifies over the lie.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consensus.messages import (
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    encode_message,
    sign_message,
)
from consensus.validation import compute_new_view_plan
from ledger.block import Block, CommitCertificate
from ledger.encoding import sha256

if TYPE_CHECKING:
    from tests.sim.simulator import SimNode, Simulator

Delivery = tuple[str, Message]

SyncedBlock = tuple[Block, CommitCertificate]


class Honest:
    """Sends what the replica sends, and serves its chain to nodes that sync from it; subclasses lie."""

    def __init__(self, sim: Simulator, vid: str) -> None:
        self.sim = sim
        self.id = vid
        self.key = sim.network.keys[vid]
        self.others = [v for v in sim.genesis.validator_ids() if v != vid]

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        return [(to, message)]

    def observe(self, message: Message) -> None:
        """Called with every message delivered to this node."""

    def claim_height(self, node: SimNode) -> int:
        """The height it answers a node that asks before syncing."""
        return node.app.head()[0]

    def serve_blocks(self, node: SimNode, first: int, count: int) -> list[SyncedBlock]:
        """Blocks `first` to `first + count - 1` of its chain with their certificates, for a node that syncs."""
        return list(zip(node.app.blocks, node.app.certificates, strict=True))[first - 1 : first - 1 + count]


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


def swap_body(block: Block) -> Block:
    """The same header (so the same hash and signatures) over a different body."""
    return dataclasses.replace(block, txs=block.txs[:-1] if block.txs else block.txs)


class PreparedMemory(Honest):
    """Remembers every prepared certificate it can assemble from the proposals and prepares it sees."""

    def __init__(self, sim: Simulator, vid: str) -> None:
        super().__init__(sim, vid)
        self.proposals: dict[tuple[int, int], PrePrepare] = {}
        self.prepares: dict[tuple[int, int, bytes], dict[str, Prepare]] = {}

    def observe(self, message: Message) -> None:
        if isinstance(message, PrePrepare) and len(self.proposals) < 200:
            self.proposals.setdefault((message.view, message.height), message)
        elif isinstance(message, Prepare) and len(self.prepares) < 400:
            self.prepares.setdefault((message.view, message.height, message.block_hash), {})[message.sender] = message

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if isinstance(message, PrePrepare | Prepare):
            self.observe(message)
        if isinstance(message, ViewChange) and message.sender == self.id:
            return [(to, sign_message(self.lie(node, to, message), self.key))]
        return [(to, message)]

    def prepared_certificates(self) -> list[PreparedCertificate]:
        """Every prepared certificate it could assemble, oldest (height, view) first."""
        found = []
        for (view, height), proposal in sorted(self.proposals.items(), key=lambda item: (item[0][1], item[0][0])):
            votes = self.prepares.get((view, height, proposal.block.hash()), {})
            if len(votes) >= self.sim.genesis.quorum:
                found.append(PreparedCertificate(proposal, tuple(sorted(votes.values(), key=lambda p: p.sender))))
        return found

    def claim(self, node: SimNode, message: ViewChange, height: int) -> ViewChange:
        """`message` claiming `height` as its certified height, with the certificate its node holds for it."""
        certificate = node.app.certificates[height - 1] if height else None
        return dataclasses.replace(message, height=height, certificate=certificate, prepared=None)

    def lie(self, node: SimNode, to: str, message: ViewChange) -> ViewChange:
        return message


class HidePrepared(PreparedMemory):
    def lie(self, node: SimNode, to: str, message: ViewChange) -> ViewChange:
        return self.claim(node, message, max(message.height - 1, 0))


class StalePrepared(PreparedMemory):
    def lie(self, node: SimNode, to: str, message: ViewChange) -> ViewChange:
        for prepared in self.prepared_certificates():
            height = prepared.height - 1
            if prepared.view < message.view and height <= message.height and height <= len(node.app.certificates):
                return dataclasses.replace(self.claim(node, message, height), prepared=prepared)
        return message


class SwapBodyViewChange(PreparedMemory):
    def lie(self, node: SimNode, to: str, message: ViewChange) -> ViewChange:
        prepared = message.prepared
        if prepared is None:
            return message
        forged = dataclasses.replace(prepared.pre_prepare, block=swap_body(prepared.pre_prepare.block))
        return dataclasses.replace(message, prepared=dataclasses.replace(prepared, pre_prepare=forged))


class EquivocateViewChange(PreparedMemory):
    def lie(self, node: SimNode, to: str, message: ViewChange) -> ViewChange:
        if self.others.index(to) % 2:
            return self.claim(node, message, message.height)
        return message


class WrongReproposal(Honest):
    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if not isinstance(message, NewView) or message.sender != self.id:
            return [(to, message)]
        return [(to, sign_message(self.lie(node, message), self.key))]

    def lie(self, node: SimNode, message: NewView) -> NewView:
        view_changes = message.view_changes
        lie = self.sim.rng.randrange(4)
        if lie == 0:
            # Legal, and the worst a primary may do: the quorum of view changes that reports the least.
            least = sorted(view_changes, key=lambda v: (v.prepared is not None, v.height))[: self.sim.genesis.quorum]
            view_changes = tuple(sorted(least, key=lambda v: v.sender))
        plan = compute_new_view_plan(view_changes)
        block = plan.block
        if lie == 1 or (lie == 2 and block is None):
            txs = block.txs if block is not None else tuple(node.mempool.batch(1))
            block = node.app.make_block(plan.height + 1, message.view, txs, time_offset=3)
        elif lie == 2 and block is not None:
            block = swap_body(block)
        elif lie == 3:
            block = None
        if block is None:
            return dataclasses.replace(message, view_changes=view_changes, pre_prepare=None)
        pre_prepare = PrePrepare(message.chain_id, message.view, plan.height + 1, block, self.id)
        return dataclasses.replace(message, view_changes=view_changes, pre_prepare=sign_message(pre_prepare, self.key))


class SwapBody(Honest):
    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if isinstance(message, PrePrepare) and message.sender == self.id and to == self.others[-1]:
            return [(to, dataclasses.replace(message, block=swap_body(message.block)))]
        return [(to, message)]


class Stuff(Honest):
    """Stuffs what it signs with copies of genuine parts, and floods: each NEW-VIEW it sends carries copies of one
    of its view changes (each with its real certificates), each view change's prepared certificate copies of one
    prepare, and every view change and NEW-VIEW goes out `FLOOD_COPIES` times."""

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        copies = STUFF_COPIES_PER_VALIDATOR * self.sim.genesis.n
        if isinstance(message, NewView) and message.sender == self.id and message.view_changes:
            stuffed = message.view_changes + (message.view_changes[0],) * copies
            message = sign_message(dataclasses.replace(message, view_changes=stuffed), self.key)
        elif isinstance(message, ViewChange) and message.sender == self.id and message.prepared is not None:
            prepares = message.prepared.prepares + (message.prepared.prepares[0],) * copies
            prepared = dataclasses.replace(message.prepared, prepares=prepares)
            message = sign_message(dataclasses.replace(message, prepared=prepared), self.key)
        if isinstance(message, NewView | ViewChange):
            return [(to, message)] * FLOOD_COPIES
        return [(to, message)]


class Censor(Honest):
    """As primary, leaves out of its proposals every tx that `is_censored` picks (half of them), proposing the rest,
    and votes for what it proposed; its view timer is reset by every block it commits, so only the censorship
    watch of the others can replace it."""

    def __init__(self, sim: Simulator, vid: str) -> None:
        super().__init__(sim, vid)
        self.twins: dict[bytes, bytes] = {}
        """Hash of each block its replica proposed -> hash of the censored block it sent instead."""
        self.blocks: dict[bytes, Block] = {}
        """Hash of each block its replica proposed -> the censored block it sent instead."""

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        if isinstance(message, PrePrepare) and message.sender == self.id and message.block.header.view == message.view:
            return [(to, self.censor(node, message))]
        fresh = isinstance(message, NewView) and message.pre_prepare and message.pre_prepare.block.header.view
        if isinstance(message, NewView) and message.pre_prepare is not None and fresh == message.view:
            censored = dataclasses.replace(message, pre_prepare=self.censor(node, message.pre_prepare))
            return [(to, sign_message(censored, self.key))]
        if isinstance(message, Prepare | Commit) and message.block_hash in self.twins:
            return [
                (to, sign_message(dataclasses.replace(message, block_hash=self.twins[message.block_hash]), self.key))
            ]
        return [(to, message)]

    def censor(self, node: SimNode, pre_prepare: PrePrepare) -> PrePrepare:
        block = pre_prepare.block
        kept = [tx for tx in block.txs if not is_censored(tx.id)]
        if len(kept) == len(block.txs):
            return pre_prepare
        censored = self.blocks.get(block.hash())
        if censored is None:
            censored = self.blocks[block.hash()] = node.app.make_block(block.height, block.header.view, kept)
            self.twins[block.hash()] = censored.hash()
        return sign_message(dataclasses.replace(pre_prepare, block=censored), self.key)


def is_censored(tx_id: bytes) -> bool:
    """Does a censoring primary leave this tx out? (Half the txs, by their id.)"""
    return tx_id[0] % 2 == 0


class LyingSync(Honest):
    """Votes honestly, but lies to nodes that sync from it: claims a head `LIE_AHEAD` blocks beyond its own (so it
    is the peer they pick), then serves nothing, a block whose certificate's signatures are broken, or a block of
    its own making that does not follow the node's head."""

    def claim_height(self, node: SimNode) -> int:
        return node.app.head()[0] + LIE_AHEAD

    def serve_blocks(self, node: SimNode, first: int, count: int) -> list[SyncedBlock]:
        served = super().serve_blocks(node, first, count)
        lie = self.sim.rng.randrange(3)
        if lie == 0 or not served:
            return []
        block, certificate = served[0]
        if lie == 1:
            signatures = tuple((signer, bytes(64)) for signer, _ in certificate.signatures)
            return [(block, dataclasses.replace(certificate, signatures=signatures))]
        forged = node.app.make_block(first, certificate.view, block.txs[:1], time_offset=11)
        return [(forged, certificate)]


LIE_AHEAD = 50
"""How far ahead of its own head a lying sync peer claims to be."""

STUFF_COPIES_PER_VALIDATOR = 12
"""Copies a stuffed certificate carries per validator (a real NEW-VIEW of 8 MiB holds thousands)."""

FLOOD_COPIES = 5
"""Times a flooding validator sends each view change and NEW-VIEW."""

Mutation = Callable[[Any, Message], Message]
"""Takes the fuzzer (for its random generator and key) and a message; returns a mutant."""

FAR = (1, 2, 8, 63, 64, 65, 2**31)
"""Distances a fuzzed view or height is moved by."""


def _shift_view(fuzz: Fuzz, message: Message) -> Message:
    if isinstance(message, Checkpoint):
        return message
    return dataclasses.replace(message, view=max(0, message.view + fuzz.rng.choice(FAR) * fuzz.rng.choice((-1, 1))))


def _shift_height(fuzz: Fuzz, message: Message) -> Message:
    if isinstance(message, NewView):
        return message
    return dataclasses.replace(message, height=max(0, message.height + fuzz.rng.choice(FAR) * fuzz.rng.choice((-1, 1))))


def _replace_digest(fuzz: Fuzz, message: Message) -> Message:
    digest = fuzz.rng.randbytes(fuzz.rng.choice((0, 31, 32, 32, 33)))
    if isinstance(message, Prepare | Commit):
        return dataclasses.replace(message, block_hash=digest)
    if isinstance(message, Checkpoint):
        return dataclasses.replace(message, state_root=digest)
    return message


def _break_signature(fuzz: Fuzz, message: Message) -> Message:
    signature = bytearray(message.signature or bytes(64))
    signature[fuzz.rng.randrange(len(signature))] ^= 1 << fuzz.rng.randrange(8)
    return dataclasses.replace(message, signature=bytes(signature))


def _change_sender(fuzz: Fuzz, message: Message) -> Message:
    return dataclasses.replace(message, sender=fuzz.rng.choice([*fuzz.others, "nobody", ""]))


def _change_chain(fuzz: Fuzz, message: Message) -> Message:
    return dataclasses.replace(message, chain_id=message.chain_id + "-fork")


def _alter_block(fuzz: Fuzz, message: Message) -> Message:
    if not isinstance(message, PrePrepare):
        return message
    header = message.block.header
    field = fuzz.rng.choice(("timestamp_ms", "prev_hash", "proposer", "view", "height", "body"))
    if field == "body":
        return dataclasses.replace(message, block=swap_body(message.block))
    altered: Any = {
        "timestamp_ms": header.timestamp_ms + fuzz.rng.choice((-(10**6), -1, 1, 10**6)),
        "prev_hash": fuzz.rng.randbytes(32),
        "proposer": fuzz.rng.choice(fuzz.others),
        "view": header.view + 1,
        "height": header.height + 1,
    }[field]
    block = dataclasses.replace(message.block, header=dataclasses.replace(header, **{field: altered}))
    return dataclasses.replace(message, block=block)


def _strip_evidence(fuzz: Fuzz, message: Message) -> Message:
    if isinstance(message, ViewChange):
        prepared = message.prepared
        if prepared is not None and fuzz.rng.random() < 0.5:
            prepares = prepared.prepares[: fuzz.rng.randrange(len(prepared.prepares) + 1)]
            repeated = prepares + prepares[:1]
            return dataclasses.replace(message, prepared=dataclasses.replace(prepared, prepares=repeated))
        return dataclasses.replace(message, certificate=None, height=message.height + fuzz.rng.choice((0, 1)))
    if isinstance(message, NewView):
        kept = message.view_changes[: fuzz.rng.randrange(len(message.view_changes) + 1)]
        return dataclasses.replace(message, view_changes=kept + kept[:1])
    return message


MUTATIONS: tuple[Mutation, ...] = (
    _shift_view,
    _shift_height,
    _replace_digest,
    _break_signature,
    _change_sender,
    _change_chain,
    _alter_block,
    _strip_evidence,
)
"""Every way the fuzzer changes a message's fields."""


class Fuzz(Honest):
    def __init__(self, sim: Simulator, vid: str) -> None:
        super().__init__(sim, vid)
        self.rng = sim.rng

    def rewrite(self, node: SimNode, to: str, message: Message) -> list[Delivery]:
        deliveries: list[Delivery] = [(to, message)]
        for _ in range(self.rng.randrange(3)):
            if self.rng.random() < 0.15:
                self.sim.deliver_bytes(self.id, to, self.flip_bytes(encode_message(message)))
                continue
            mutant = self.rng.choice(MUTATIONS)(self, message)
            if mutant.sender == self.id and self.rng.random() < 0.7:
                mutant = sign_message(mutant, self.key)
            deliveries.append((to, mutant))
        return deliveries

    def flip_bytes(self, data: bytes) -> bytes:
        mutated = bytearray(data)
        for _ in range(self.rng.randrange(1, 4)):
            mutated[self.rng.randrange(len(mutated))] = self.rng.randrange(256)
        return bytes(mutated)


BEHAVIOURS: dict[str, type[Honest]] = {
    "honest": Honest,
    "silent": Silent,
    "equivocate": Equivocate,
    "wrong_digest": WrongDigest,
    "forge": Forge,
    "replay": Replay,
    "fresh_new_view": FreshNewView,
    "hide_prepared": HidePrepared,
    "stale_prepared": StalePrepared,
    "swap_body_view_change": SwapBodyViewChange,
    "equivocate_view_change": EquivocateViewChange,
    "wrong_reproposal": WrongReproposal,
    "swap_body": SwapBody,
    "stuff": Stuff,
    "censor": Censor,
    "lying_sync": LyingSync,
    "fuzz": Fuzz,
}
"""Every Byzantine behaviour by name."""


def make_behaviour(name: str, sim: Simulator, vid: str) -> Any:
    return BEHAVIOURS[name](sim, vid)
