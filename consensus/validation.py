"""What a replica checks in every message before it lets it count.

A message counts only if it names this chain, its sender is a validator of
the set that certifies the height the message is about (`ValidatorSet`, by
height: a set change takes effect at a stated height), and the sender's
signature verifies with that set's key. Every quorum is the quorum of the set
of the height it is about: a commit certificate's of its block's height, a
view change's of the height its sender works on, and a NEW-VIEW's of the
height the new view starts at (`compute_new_view_plan`). VIEW-CHANGE and NEW-VIEW are
checked all the way down: the commit certificate a view change claims, the
PRE-PREPARE and 2f+1 PREPAREs of its prepared certificate, and the 2f+1 view
changes a NEW-VIEW carries. `compute_new_view_plan` is the rule both the new
primary and every replica apply to those view changes to know where the new
view starts and which prepared block it must re-propose.

A Byzantine validator may send well-formed messages built to cost signature
checks, so what can be refused cheaply is refused before any signature is
checked (a NEW-VIEW with more view changes than validators, or two from one
sender), and the verdict of every signature and commit certificate checked is
remembered by digest (`VerdictCache`, bounded): the same signature or
certificate sent again, good or bad, costs a lookup, not a check.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.errors import InvalidMessage
from consensus.messages import (
    Message,
    NewView,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    compute_signing_bytes,
)
from ledger.block import Block, CommitCertificate, compute_block_tx_bytes, verify_block_body, verify_certificate
from ledger.encoding import encode, sha256
from ledger.errors import InvalidBlock, InvalidCertificate
from ledger.genesis import Genesis
from ledger.keys import is_valid_signature
from ledger.membership import ValidatorSet, get_genesis_membership

ValidatorLookup = Callable[[int], ValidatorSet]
"""The validator set that certifies a height."""

VERDICTS_REMEMBERED = 8192
"""Signature and certificate verdicts a checker remembers (about 0.6 MiB)."""


class VerdictCache:
    """The verdicts of the last checks, by digest of what was checked: None if it passed, else why it failed."""

    def __init__(self, capacity: int = VERDICTS_REMEMBERED) -> None:
        self.capacity = capacity
        self._verdicts: OrderedDict[bytes, str | None] = OrderedDict()

    def check(self, digest: bytes, run: Callable[[], str | None]) -> str | None:
        """The remembered verdict for `digest`, or `run`'s, remembered (the oldest forgotten past capacity)."""
        if digest in self._verdicts:
            self._verdicts.move_to_end(digest)
            return self._verdicts[digest]
        verdict = self._verdicts[digest] = run()
        if len(self._verdicts) > self.capacity:
            self._verdicts.popitem(last=False)
        return verdict


@dataclass(frozen=True)
class NewViewPlan:
    """What a set of 2f+1 view changes obliges the new view to do."""

    height: int
    """Highest certified height among the view changes: the new view works from `height + 1`."""
    certificate: CommitCertificate | None
    """The certificate proving `height` (None for genesis)."""
    block: Block | None
    """The highest-view prepared block at `height + 1`, which must be re-proposed; None for a free proposal."""
    prepared_view: int | None
    """The view in which `block` was prepared (what lets a replica locked in an earlier view unlock)."""


def compute_new_view_plan(view_changes: Sequence[ViewChange]) -> NewViewPlan:
    """Where a new view starts and what it must re-propose, from already verified view changes."""
    top = max(view_changes, key=lambda v: v.height)
    prepared = [v.prepared for v in view_changes if v.prepared is not None and v.prepared.height == top.height + 1]
    best = max(prepared, key=lambda p: (p.view, p.pre_prepare.block.hash()), default=None)
    if best is None:
        return NewViewPlan(top.height, top.certificate, None, None)
    return NewViewPlan(top.height, top.certificate, best.pre_prepare.block, best.view)


def compute_primary(validators: ValidatorSet, view: int) -> str:
    """The primary of `view`: the set's validators in order, round robin."""
    return validators.primary(view)


def compute_message_height(message: Message) -> int:
    """The height whose validator set a message is checked against: a view change's is the height its sender
    works on (one above the height it shows certified)."""
    if isinstance(message, ViewChange):
        return message.height + 1
    if isinstance(message, NewView):
        return compute_new_view_plan(message.view_changes).height + 1 if message.view_changes else 0
    return message.height


class MessageChecker:
    """Checks messages against one chain: its id, and the validator set of each height (`validators`)."""

    def __init__(self, genesis: Genesis, validators: ValidatorLookup | None = None) -> None:
        self.genesis = genesis
        self.validators: ValidatorLookup = validators or get_genesis_membership(genesis).validator_set
        """The set that certifies a height."""
        self.verdicts = VerdictCache()
        """Verdicts of the signatures and certificates checked, so none is checked twice."""

    def verify(self, message: Message) -> None:
        """Raise `InvalidMessage` unless `message` and everything it carries is well signed and consistent."""
        if isinstance(message, NewView):
            self.verify_new_view_shape(message)
        self.verify_signature(message)
        if isinstance(message, PrePrepare):
            self.verify_pre_prepare(message)
        elif isinstance(message, ViewChange):
            self.verify_view_change(message)
        elif isinstance(message, NewView):
            self.verify_new_view(message)

    def verify_signature(self, message: Message) -> None:
        if message.chain_id != self.genesis.chain_id:
            raise InvalidMessage(f"message for chain {message.chain_id!r}")
        height = compute_message_height(message)
        key = self.validators(height).keys.get(message.sender)
        if key is None:
            raise InvalidMessage(f"message from {message.sender!r}, who is not a validator at height {height}")
        data = compute_signing_bytes(message)
        signature = message.signature
        digest = sha256(b"signature:" + encode([key, data, signature]))
        if self.verdicts.check(digest, lambda: None if is_valid_signature(key, data, signature) else "bad"):
            raise InvalidMessage(f"bad signature on a {type(message).__name__} from {message.sender!r}")

    def verify_pre_prepare(self, message: PrePrepare) -> None:
        if message.sender != compute_primary(self.validators(message.height), message.view):
            raise InvalidMessage(f"pre-prepare for view {message.view} from {message.sender!r}, not its primary")
        header = message.block.header
        if header.height != message.height or header.chain_id != self.genesis.chain_id:
            raise InvalidMessage(f"pre-prepare at height {message.height} carries a block for another slot")
        if header.view > message.view:
            raise InvalidMessage(f"pre-prepare in view {message.view} carries a block from view {header.view}")
        self.verify_block_bounds(message.block)

    def verify_block_bounds(self, block: Block) -> None:
        """A proposed block's body is the one its header names, and within the genesis size limits."""
        params = self.genesis.consensus
        if len(block.txs) > params.max_block_txs:
            raise InvalidMessage(f"block {block.height} holds {len(block.txs)} txs, limit {params.max_block_txs}")
        size = compute_block_tx_bytes(block)
        if size > params.max_block_bytes:
            raise InvalidMessage(f"block {block.height} holds {size} bytes of txs, limit {params.max_block_bytes}")
        try:
            verify_block_body(block)
        except InvalidBlock as exc:
            raise InvalidMessage(str(exc)) from exc

    def verify_prepared(self, prepared: PreparedCertificate) -> None:
        pre_prepare = prepared.pre_prepare
        self.verify_signature(pre_prepare)
        self.verify_pre_prepare(pre_prepare)
        block_hash = pre_prepare.block.hash()
        senders = set()
        for prepare in prepared.prepares:
            self.verify_signature(prepare)
            if (prepare.view, prepare.height, prepare.block_hash) != (pre_prepare.view, pre_prepare.height, block_hash):
                raise InvalidMessage("prepared certificate mixes prepares for another slot or block")
            senders.add(prepare.sender)
        quorum = self.validators(pre_prepare.height).quorum
        if len(senders) < quorum:
            raise InvalidMessage(f"prepared certificate has {len(senders)} prepares, quorum is {quorum}")

    def verify_view_change(self, message: ViewChange) -> None:
        if message.view < 1:
            raise InvalidMessage("a view change must be for view 1 or later")
        if message.height == 0:
            if message.certificate is not None:
                raise InvalidMessage("a view change at genesis carries no certificate")
        elif message.certificate is None:
            raise InvalidMessage(f"view change claims height {message.height} without its certificate")
        else:
            problem = self.check_certificate(message.certificate, message.height)
            if problem is not None:
                raise InvalidMessage(f"view change from {message.sender!r}: {problem}")
        if message.prepared is not None:
            if message.prepared.height != message.height + 1 or message.prepared.view >= message.view:
                raise InvalidMessage("view change carries a prepared certificate for the wrong slot")
            self.verify_prepared(message.prepared)

    def check_certificate(self, certificate: CommitCertificate, height: int) -> str | None:
        """Why `certificate` does not certify its block at `height` by the set of that height, or None (the
        verdict is remembered by the certificate's digest and the set's hash)."""
        validators = self.validators(height)
        digest = sha256(b"certificate:" + encode([height, validators.hash(), certificate.to_wire()]))

        def run() -> str | None:
            try:
                verify_certificate(certificate, self.genesis, certificate.block_hash, height, validators)
            except InvalidCertificate as exc:
                return str(exc)
            return None

        return self.verdicts.check(digest, run)

    def verify_new_view_shape(self, message: NewView) -> None:
        """What a NEW-VIEW must be before any signature in it is checked: view changes for its view, at most
        one from each validator (of the height each works on)."""
        if not message.view_changes:
            raise InvalidMessage(f"new view {message.view} carries no view change")
        senders = {view_change.sender for view_change in message.view_changes}
        if len(senders) != len(message.view_changes):
            raise InvalidMessage(f"new view {message.view} needs view changes from distinct validators")
        for view_change in message.view_changes:
            if view_change.sender not in self.validators(compute_message_height(view_change)).keys:
                raise InvalidMessage(f"new view {message.view} carries a view change from {view_change.sender!r}")
        if any(view_change.view != message.view for view_change in message.view_changes):
            raise InvalidMessage(f"new view {message.view} carries a view change for another view")

    def verify_new_view(self, message: NewView) -> None:
        """A NEW-VIEW counts the view changes of the set of the height its view starts at (each view change
        itself is checked against the set of the height its sender works on)."""
        self.verify_new_view_shape(message)
        validators = self.validators(compute_message_height(message))
        if message.sender != compute_primary(validators, message.view):
            raise InvalidMessage(f"new view {message.view} from {message.sender!r}, not its primary")
        senders = {view_change.sender for view_change in message.view_changes}
        if len(senders & validators.keys.keys()) < validators.quorum:
            raise InvalidMessage(
                f"new view {message.view} needs {validators.quorum} view changes from distinct validators"
            )
        for view_change in message.view_changes:
            self.verify_signature(view_change)
            self.verify_view_change(view_change)
        pre_prepare = message.pre_prepare
        if pre_prepare is not None:
            if pre_prepare.view != message.view:
                raise InvalidMessage(f"new view {message.view} carries a pre-prepare for view {pre_prepare.view}")
            self.verify_signature(pre_prepare)
            self.verify_pre_prepare(pre_prepare)
