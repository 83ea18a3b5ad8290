"""One PBFT replica: events in, actions out.

Heights are the PBFT sequence numbers and one block is in flight at a time:
the replica at committed height h works on h+1. In the normal case the
primary of view v (validator v mod n) proposes a block in a PRE-PREPARE;
every replica checks it (through `Application.check_block`) and broadcasts a
PREPARE; on 2f+1 matching prepares it persists its prepared certificate and
broadcasts a COMMIT; on 2f+1 matching commits it decides the block with those
commits as its certificate. With one validator the quorum is 1 and the same
path commits a block as soon as it is proposed.

When no block commits in time, or the primary proposes a bad or conflicting
block, replicas move to the next view with VIEW-CHANGE messages; the new
primary gathers 2f+1 of them into a NEW-VIEW that re-proposes the
highest-view prepared block, if any, so a block committed in an old view is
never replaced. Timeouts double with each failed view and fall back to the
base value once a block commits. Every `checkpoint_interval` blocks replicas
exchange CHECKPOINTs; 2f+1 matching make it stable and the log below it is
dropped. Signs of others being ahead (f+1 validators past our height, a
stable checkpoint or a new view above it) make the replica ask for sync.
See docs/spec/consensus.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.actions import Action, Broadcast, CancelTimer, Decide, Persist, RequestSync, Send, SetTimer
from consensus.app import Application
from consensus.errors import ConsensusLogCorrupted, InvalidMessage
from consensus.log import MessageLog, Slot, Vote
from consensus.messages import (
    AnyMessage,
    Checkpoint,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    sign_message,
)
from consensus.records import load_records, make_certificate_record, make_prepared_record, make_signed_record
from consensus.validation import MessageChecker, NewViewPlan, compute_new_view_plan, compute_primary
from ledger.block import Block, CommitCertificate, verify_certificate
from ledger.errors import InvalidCertificate
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.tx import Tx

VIEW_TIMER = "view"
"""Fires when the current view made no progress in time: the replica moves to the next view."""

RESUME_TIMER = "resume"
"""Armed with no delay after a decision, to process messages already held for the next height."""

MAX_BACKOFF_EXPONENT = 6
"""The view timeout doubles with each failed view, up to 2**6 times the base."""

VIEW_SPAN = 64
"""Votes for views further than this from the current view are not kept."""

_UNCHECKED = "unchecked"

SlotKey = tuple[str, int, int]
"""(message type, view, height) of something the replica signed; at most one message per key."""


class Replica:
    """One PBFT replica over an `Application`; knows no socket, clock or disk."""

    def __init__(
        self,
        genesis: Genesis,
        validator_id: str,
        key: PrivateKey,
        app: Application,
        records: Sequence[dict] = (),
    ) -> None:
        if genesis.validator_keys().get(validator_id) != key.public:
            raise ValueError(f"{validator_id!r} is not a validator of this genesis with this key")
        self.genesis = genesis
        self.id = validator_id
        self.checker = MessageChecker(genesis)
        self.quorum = genesis.quorum
        """Votes that make a certificate (2f+1)."""
        self._key = key
        self._app = app
        self._params = genesis.consensus
        self._window = 2 * max(self._params.checkpoint_interval, 1)
        self._view = 0
        self._view_changing = False
        self._height, self._head_hash = app.head()
        self._head_root: bytes | None = None
        self._certificate: CommitCertificate | None = None
        self._log = MessageLog()
        self._checkpoints: dict[int, dict[str, Checkpoint]] = {}
        self._stable_height = 0
        self._status: Checkpoint | None = None
        self._view_changes: dict[str, ViewChange] = {}
        self._new_view: NewView | None = None
        self._prepared: PreparedCertificate | None = None
        self._signed: dict[SlotKey, Message] = {}
        self._checked: dict[bytes, str | None] = {}
        self._pending: tuple[Tx, ...] = ()
        self._failed_views = 0
        self._timer_armed = False
        self._peer_heights: dict[str, int] = {}
        self._sync_requested = 0
        self._restore(records)

    # -- status -------------------------------------------------------------------

    @property
    def view(self) -> int:
        return self._view

    @property
    def primary(self) -> str:
        return compute_primary(self.genesis, self._view)

    @property
    def height(self) -> int:
        """Height of the last block this replica decided or synced."""
        return self._height

    @property
    def is_primary(self) -> bool:
        return self.primary == self.id

    @property
    def is_view_changing(self) -> bool:
        return self._view_changing

    @property
    def stable_height(self) -> int:
        """Height of the last stable checkpoint."""
        return self._stable_height

    @property
    def log_size(self) -> int:
        """Messages held in memory (log, checkpoints, view changes, own signatures)."""
        checkpoints = sum(len(votes) for votes in self._checkpoints.values())
        return self._log.size() + checkpoints + len(self._view_changes) + len(self._signed)

    # -- events -------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Re-send what this replica signed for its current slot, and arm the view timer if a view change is on."""
        if self._view_changing:
            return self._resend_view_change() + self._rearm_timer()
        next_height = self._height + 1
        return [
            Broadcast(message)
            for (kind, view, height), message in sorted(self._signed.items(), key=lambda item: _KIND_ORDER[item[0][0]])
            if view == self._view and height in (0, next_height) and kind != "view_change"
        ]

    def on_message(self, sender: str, message: Message) -> list[Action]:
        """Handle a message from peer `sender`; anything unsigned, foreign or out of place is ignored."""
        if sender != message.sender or sender == self.id:
            return []
        try:
            self.checker.verify(message)
        except InvalidMessage:
            return []
        if isinstance(message, PrePrepare):
            return self._on_pre_prepare(message)
        if isinstance(message, Prepare | Commit):
            return self._on_vote(message)
        if isinstance(message, Checkpoint):
            return self._on_checkpoint(message)
        if isinstance(message, ViewChange):
            return self._on_view_change(message)
        return self._on_new_view(message)

    def on_timeout(self, name: str) -> list[Action]:
        if name == RESUME_TIMER:
            return self._process()
        if name != VIEW_TIMER:
            return []
        self._timer_armed = False
        self._sync_requested = self._height
        sync = self._note_peer_height(None)
        if sync:
            # f+1 peers committed past this replica: it is lagging, which is no fault of the primary's.
            return sync + self._rearm_timer()
        if self._view_changing and not self._has_view_change_quorum():
            # Moving on alone would leave the others behind in ever later views: ask again for this one.
            return self._resend_view_change() + self._rearm_timer()
        return self._start_view_change(self._view + 1)

    def on_batch(self, txs: Sequence[Tx]) -> list[Action]:
        """The node has pending txs: arm the request timer, and propose them if this is an idle primary."""
        self._pending = tuple(txs)
        return self._arm_timer() + self._propose()

    def on_synced(self, height: int, certificate: CommitCertificate | None = None) -> list[Action]:
        """The node applied blocks up to `height` by sync; `certificate` (of that block) lets view changes prove it."""
        new_height, new_hash = self._app.head()
        if new_height <= self._height:
            return []
        self._height, self._head_hash, self._head_root = new_height, new_hash, None
        if certificate is not None and self._is_certificate_for_head(certificate):
            self._certificate = certificate
        self._enter_height()
        actions = [] if self._view_changing else self._disarm_timer()
        return actions + self._process() + self._propose()

    # -- normal case --------------------------------------------------------------

    def _on_pre_prepare(self, message: PrePrepare) -> list[Action]:
        actions = self._note_peer_height(message.sender, message.height - 1)
        if not self._is_in_window(message.height, message.view):
            return actions
        header = message.block.header
        if header.view != message.view or header.proposer != message.sender:
            return actions
        slot = self._log.slot(message.height)
        first = slot.pre_prepares.setdefault(message.view, message)
        if first.block.hash() != message.block.hash():
            if self._is_current(message.view, message.height):
                return actions + self._start_view_change(self._view + 1)
            return actions
        return actions + self._process()

    def _on_vote(self, vote: Prepare | Commit) -> list[Action]:
        actions = self._note_peer_height(vote.sender, vote.height - 1)
        if not self._is_in_window(vote.height, vote.view, old_views=isinstance(vote, Commit)):
            return actions
        if not self._log.add_vote(vote):
            return actions
        return actions + self._process()

    def _process(self) -> list[Action]:
        """Move the slot at height+1 forward as far as the messages held allow."""
        slot = self._log.get(self._height + 1)
        if slot is None:
            return []
        actions: list[Action] = []
        if not self._view_changing:
            pre_prepare = slot.pre_prepares.get(self._view)
            if pre_prepare is not None:
                voted = self._process_pre_prepare(slot, pre_prepare)
                if voted is None:
                    return self._start_view_change(self._view + 1)
                actions += voted
        return actions + self._process_commits(slot)

    def _process_pre_prepare(self, slot: Slot, pre_prepare: PrePrepare) -> list[Action] | None:
        """Prepare the current view's proposal, then commit once prepared; None if the proposal is bad."""
        view, height = pre_prepare.view, pre_prepare.height
        block_hash = pre_prepare.block.hash()
        actions: list[Action] = []
        if ("prepare", view, height) not in self._signed:
            if self._check_block(pre_prepare.block) is not None:
                return None
            actions += self._arm_timer()
            actions += self._vote(Prepare(self.genesis.chain_id, view, height, block_hash, self.id))
        prepares = [p for p in slot.prepares.get(view, {}).values() if p.block_hash == block_hash]
        if ("commit", view, height) in self._signed or len(prepares) < self.quorum:
            return actions
        prepared = PreparedCertificate(pre_prepare, tuple(sorted(prepares, key=lambda p: p.sender)))
        self._prepared = prepared
        actions.append(Persist(make_prepared_record(prepared)))
        return actions + self._vote(Commit(self.genesis.chain_id, view, height, block_hash, self.id))

    def _process_commits(self, slot: Slot) -> list[Action]:
        """Decide the block if some view holds a quorum of matching commits for it."""
        height = self._height + 1
        for view, by_sender in sorted(slot.commits.items()):
            by_hash: dict[bytes, list[Commit]] = {}
            for commit in by_sender.values():
                by_hash.setdefault(commit.block_hash, []).append(commit)
            for block_hash, commits in by_hash.items():
                if len(commits) < self.quorum:
                    continue
                block = self._find_block(slot, block_hash)
                if block is None:
                    return self._request_sync(height)
                if self._check_block(block) is None:
                    return self._decide(block, view, commits)
        return []

    def _vote(self, unsigned: Vote) -> list[Action]:
        signed: Vote | None
        persist: list[Action]
        signed, persist = self._sign_once(unsigned)
        if signed is None:
            return persist
        self._log.add_vote(signed)
        return [*persist, Broadcast(signed)]

    def _decide(self, block: Block, view: int, commits: list[Commit]) -> list[Action]:
        height, block_hash = block.height, block.hash()
        signatures = tuple(sorted((c.sender, c.signature) for c in commits))
        certificate = CommitCertificate(height, view, block_hash, signatures)
        actions: list[Action] = [Persist(make_certificate_record(certificate)), Decide(block, certificate)]
        self._height, self._head_hash, self._head_root = height, block_hash, block.header.state_root
        self._certificate = certificate
        self._enter_height()
        actions += self._disarm_timer()
        if height % self._params.checkpoint_interval == 0:
            actions += self._send_checkpoint()
        if self._log.get(height + 1) is not None:
            actions.append(SetTimer(RESUME_TIMER, 0))
        return actions

    def _enter_height(self) -> None:
        """Forget what only mattered for heights now behind us."""
        self._failed_views = 0
        self._prepared = None
        self._checked.clear()
        self._status = None
        self._signed = {key: m for key, m in self._signed.items() if key[2] == 0 or key[2] > self._height}

    def _propose(self) -> list[Action]:
        """As an idle primary with pending txs, build and propose the next block."""
        height = self._height + 1
        if not self.is_primary or self._view_changing or not self._pending:
            return []
        if ("pre_prepare", self._view, height) in self._signed or self._app.head() != (self._height, self._head_hash):
            return []
        slot = self._log.get(height)
        if slot is not None and self._view in slot.pre_prepares:
            return []
        block = self._app.build_block(height, self._view, self._pending[: self._params.max_block_txs])
        if not block.txs:
            return []
        pre_prepare, actions = self._sign_once(PrePrepare(self.genesis.chain_id, self._view, height, block, self.id))
        if pre_prepare is None:
            return actions
        self._checked[block.hash()] = None
        self._log.slot(height).pre_prepares[self._view] = pre_prepare
        return [*actions, Broadcast(pre_prepare), *self._process()]

    def _check_block(self, block: Block) -> str | None:
        """Why `block` cannot be the next block, or None (the application's verdict is cached per block)."""
        header = block.header
        if header.height != self._height + 1 or header.prev_hash != self._head_hash:
            return f"block {header.height} does not extend head {self._height}"
        block_hash = block.hash()
        reason = self._checked.get(block_hash, _UNCHECKED)
        if reason is _UNCHECKED:
            reason = self._checked[block_hash] = self._app.check_block(block)
        return reason

    def _find_block(self, slot: Slot, block_hash: bytes) -> Block | None:
        for pre_prepare in slot.pre_prepares.values():
            if pre_prepare.block.hash() == block_hash:
                return pre_prepare.block
        prepared = self._prepared
        if prepared is not None and prepared.pre_prepare.block.hash() == block_hash:
            return prepared.pre_prepare.block
        return None

    # -- checkpoints and catching up ----------------------------------------------

    def _send_checkpoint(self) -> list[Action]:
        checkpoint = self._make_status()
        self._checkpoints.setdefault(checkpoint.height, {})[self.id] = checkpoint
        return [Broadcast(checkpoint), *self._process_checkpoints(checkpoint.height)]

    def _make_status(self) -> Checkpoint:
        """A signed CHECKPOINT for the head (also sent to a lagging peer to show it how far we are)."""
        if self._status is None:
            if self._head_root is None:
                raise RuntimeError("no state root known for the head")
            unsigned = Checkpoint(self.genesis.chain_id, self._height, self._head_hash, self._head_root, self.id)
            self._status = sign_message(unsigned, self._key)
        return self._status

    def _on_checkpoint(self, checkpoint: Checkpoint) -> list[Action]:
        actions = self._note_peer_height(checkpoint.sender, checkpoint.height)
        height = checkpoint.height
        if height % self._params.checkpoint_interval or not self._stable_height < height <= self._height + self._window:
            return actions
        self._checkpoints.setdefault(height, {}).setdefault(checkpoint.sender, checkpoint)
        return actions + self._process_checkpoints(height)

    def _process_checkpoints(self, height: int) -> list[Action]:
        """Make the checkpoint at `height` stable on 2f+1 matching votes, and collect the garbage below it."""
        tally: dict[tuple[bytes, bytes], int] = {}
        for vote in self._checkpoints.get(height, {}).values():
            key = (vote.block_hash, vote.state_root)
            tally[key] = tally.get(key, 0) + 1
        if max(tally.values(), default=0) < self.quorum:
            return []
        self._stable_height = height
        self._log.collect_garbage(height)
        self._checkpoints = {h: votes for h, votes in self._checkpoints.items() if h > height}
        return self._request_sync(height)

    def _note_peer_height(self, sender: str | None, committed: int = 0) -> list[Action]:
        """Remember that `sender` has committed at least `committed`; ask for sync once f+1 peers are ahead."""
        if sender is not None and committed > self._peer_heights.get(sender, 0):
            self._peer_heights[sender] = committed
        heights = sorted(self._peer_heights.values(), reverse=True)
        if len(heights) <= self.genesis.f:
            return []
        return self._request_sync(heights[self.genesis.f])

    def _request_sync(self, height: int) -> list[Action]:
        if height <= self._height or height <= self._sync_requested:
            return []
        self._sync_requested = height
        return [RequestSync(height)]

    # -- view change --------------------------------------------------------------

    def _start_view_change(self, view: int) -> list[Action]:
        """Give up on the current view and ask for `view`."""
        self._view, self._view_changing, self._new_view = view, True, None
        self._failed_views += 1
        certificate = self._certificate
        certified = 0 if certificate is None else certificate.height
        prepared = self._prepared if self._prepared is not None and self._prepared.height == certified + 1 else None
        unsigned = ViewChange(self.genesis.chain_id, view, certified, certificate, prepared, self.id)
        view_change, actions = self._sign_once(unsigned)
        if view_change is None:
            raise RuntimeError(f"signed two different view changes for view {view}")
        self._view_changes[self.id] = view_change
        self._signed = {key: m for key, m in self._signed.items() if key[1] >= view}
        return [*actions, Broadcast(view_change), *self._rearm_timer(), *self._process_view_changes()]

    def _has_view_change_quorum(self) -> bool:
        """Have q replicas (this one included) asked for the view this replica is changing to, or a later one?"""
        return sum(vc.view >= self._view for vc in self._view_changes.values()) >= self.quorum

    def _resend_view_change(self) -> list[Action]:
        own = self._signed.get(("view_change", self._view, 0))
        return [Broadcast(own)] if own is not None else []

    def _on_view_change(self, message: ViewChange) -> list[Action]:
        actions = self._note_peer_height(message.sender, message.height) + self._help_lagging_peer(message)
        if message.view < self._view or (message.view == self._view and not self._view_changing):
            return actions
        known = self._view_changes.get(message.sender)
        if known is None or message.view > known.view:
            self._view_changes[message.sender] = message
        return actions + self._process_view_changes()

    def _help_lagging_peer(self, message: ViewChange) -> list[Action]:
        """Show a peer that asks for a view we are already in the NEW-VIEW, and one behind us our head."""
        actions: list[Action] = []
        is_stale = message.view <= self._view and not self._view_changing
        if is_stale and self._new_view is not None:
            actions.append(Send(message.sender, self._new_view))
        if message.height < self._height and self._head_root is not None:
            actions.append(Send(message.sender, self._make_status()))
        return actions

    def _process_view_changes(self) -> list[Action]:
        """Join a view f+1 others want; as the new primary, start the view on 2f+1 view changes."""
        wanted = sorted(
            (vc.view for sender, vc in self._view_changes.items() if sender != self.id and vc.view > self._view),
            reverse=True,
        )
        if len(wanted) > self.genesis.f:
            return self._start_view_change(wanted[self.genesis.f])
        if not self._view_changing or not self.is_primary or ("new_view", self._view, 0) in self._signed:
            return []
        view_changes = sorted(
            (vc for vc in self._view_changes.values() if vc.view == self._view), key=lambda v: v.sender
        )
        if len(view_changes) < self.quorum:
            return []
        plan = compute_new_view_plan(view_changes)
        actions: list[Action] = []
        pre_prepare = None
        if plan.block is not None:
            unsigned = PrePrepare(self.genesis.chain_id, self._view, plan.height + 1, plan.block, self.id)
            pre_prepare, actions = self._sign_once(unsigned)
        new_view, persist = self._sign_once(
            NewView(self.genesis.chain_id, self._view, tuple(view_changes), pre_prepare, self.id)
        )
        if new_view is None:
            return actions
        return [*actions, *persist, Broadcast(new_view), *self._enter_view(new_view, plan)]

    def _on_new_view(self, message: NewView) -> list[Action]:
        if message.view < self._view or (message.view == self._view and not self._view_changing):
            return []
        plan = compute_new_view_plan(message.view_changes)
        if not self.is_valid_reproposal(message, plan):
            return []
        return self._enter_view(message, plan)

    def is_valid_reproposal(self, message: NewView, plan: NewViewPlan) -> bool:
        """Does the NEW-VIEW re-propose exactly the block its view changes oblige (or nothing if none)?"""
        pre_prepare = message.pre_prepare
        if plan.block is None:
            return pre_prepare is None
        return (
            pre_prepare is not None
            and pre_prepare.height == plan.height + 1
            and pre_prepare.block.hash() == plan.block.hash()
        )

    def _enter_view(self, new_view: NewView, plan: NewViewPlan) -> list[Action]:
        self._view, self._view_changing, self._new_view = new_view.view, False, new_view
        self._view_changes = {s: vc for s, vc in self._view_changes.items() if vc.view > new_view.view}
        actions = self._request_sync(plan.height)
        pre_prepare = new_view.pre_prepare
        if pre_prepare is not None and self._is_in_window(pre_prepare.height, pre_prepare.view):
            self._log.slot(pre_prepare.height).pre_prepares[new_view.view] = pre_prepare
        if self._pending or pre_prepare is not None:
            actions += self._rearm_timer()
        else:
            actions += self._disarm_timer()
        return actions + self._process() + self._propose()

    # -- helpers ------------------------------------------------------------------

    def _is_current(self, view: int, height: int) -> bool:
        return view == self._view and not self._view_changing and height == self._height + 1

    def _is_in_window(self, height: int, view: int, old_views: bool = False) -> bool:
        """Is a message for (view, height) worth keeping: a height not yet decided, a view not long past?"""
        if not self._height < height <= self._height + self._window:
            return False
        lowest = self._view - VIEW_SPAN if old_views else self._view
        return lowest <= view <= self._view + VIEW_SPAN

    def _is_certificate_for_head(self, certificate: CommitCertificate) -> bool:
        if certificate.height != self._height or certificate.block_hash != self._head_hash:
            return False
        try:
            verify_certificate(certificate, self.genesis, self._head_hash, self._height)
        except InvalidCertificate:
            return False
        return True

    def _sign_once(self, unsigned: AnyMessage) -> tuple[AnyMessage | None, list[Action]]:
        """Sign and persist `unsigned`, unless something was signed for its slot already.

        Returns the message to send (the earlier one if it says the same thing, None if it conflicts)
        and the `Persist` action for a new signature.
        """
        key = _compute_slot_key(unsigned)
        earlier = self._signed.get(key)
        if earlier is not None:
            same = type(earlier) is type(unsigned) and _compute_digest(earlier) == _compute_digest(unsigned)
            return (earlier if same else None), []  # type: ignore[return-value]
        signed = sign_message(unsigned, self._key)
        self._signed[key] = signed
        return signed, [Persist(make_signed_record(signed))]

    def _timeout_ms(self) -> int:
        return self._params.view_timeout_ms << min(self._failed_views, MAX_BACKOFF_EXPONENT)

    def _arm_timer(self) -> list[Action]:
        if self._timer_armed:
            return []
        return self._rearm_timer()

    def _rearm_timer(self) -> list[Action]:
        self._timer_armed = True
        return [SetTimer(VIEW_TIMER, self._timeout_ms())]

    def _disarm_timer(self) -> list[Action]:
        self._timer_armed = False
        return [CancelTimer(VIEW_TIMER)]

    def _restore(self, records: Sequence[dict]) -> None:
        """Resume from persisted records: the view, what was signed, the prepared and commit certificates."""
        restored = load_records(records)
        top_view, normal_views = 0, set()
        for message in restored.signed:
            if message.sender != self.id or isinstance(message, Checkpoint):
                raise ConsensusLogCorrupted(f"consensus log holds a {type(message).__name__} not signed by this node")
            self._signed[_compute_slot_key(message)] = message
            top_view = max(top_view, message.view)
            if not isinstance(message, ViewChange):
                normal_views.add(message.view)
        self._view = top_view
        self._view_changing = top_view > 0 and top_view not in normal_views
        for certificate in restored.certificates:
            if certificate.height <= self._height:
                self._certificate = certificate
        for prepared in restored.prepared:
            if prepared.height == self._height + 1:
                self._prepared = prepared
        self._enter_height()
        self._failed_views = 0
        for message in self._signed.values():
            if isinstance(message, Prepare | Commit):
                self._log.add_vote(message)
            elif isinstance(message, PrePrepare):
                self._log.slot(message.height).pre_prepares[message.view] = message
                if message.block.header.proposer == self.id:
                    self._checked[message.block.hash()] = None
            elif isinstance(message, ViewChange) and message.view == self._view:
                self._view_changes[self.id] = message
            elif isinstance(message, NewView) and message.view == self._view:
                self._new_view = message


_KIND_ORDER = {"new_view": 0, "pre_prepare": 1, "prepare": 2, "commit": 3, "view_change": 4}
"""Order in which a restarted replica re-sends what it signed."""


def _compute_slot_key(message: Message) -> SlotKey:
    if isinstance(message, PrePrepare):
        return ("pre_prepare", message.view, message.height)
    if isinstance(message, Prepare):
        return ("prepare", message.view, message.height)
    if isinstance(message, Commit):
        return ("commit", message.view, message.height)
    if isinstance(message, ViewChange):
        return ("view_change", message.view, 0)
    if isinstance(message, NewView):
        return ("new_view", message.view, 0)
    raise TypeError(f"{type(message).__name__} has no slot")


def _compute_digest(message: Message) -> bytes:
    """What two messages for one slot must agree on: the block (a view change or new view is one per view)."""
    if isinstance(message, PrePrepare):
        return message.block.hash()
    if isinstance(message, Prepare | Commit):
        return message.block_hash
    return b""
