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
block, a replica re-sends what it signed for the height and broadcasts a
TIMEOUT: a wish to leave the view that binds it to nothing. Once f+1
replicas wish to leave view v at the same height (so at least one honest
one), each of them moves to v+1 with a VIEW-CHANGE; a replica alone in its
suspicion stays in the view and keeps voting, so a slow node never strands
itself in a view no one else is in. The new primary gathers 2f+1
VIEW-CHANGEs into a NEW-VIEW that re-proposes the highest-view prepared
block, if any, so a block committed in an old view is never replaced; no
replica proposes or prepares in the new view at a height the NEW-VIEW shows
certified, and no replica votes at all before it has synced to that height.
Timeouts double with each failed view and fall back to the base value once a
block commits. Every `checkpoint_interval` blocks replicas exchange
CHECKPOINTs; 2f+1 matching make it stable and the log below it is dropped.
Signs of others being ahead (f+1 validators past our height, a stable
checkpoint or a new view above it) make the replica ask for sync.

A replica that missed a view change learns the live view from ordinary
traffic (as the pacemakers of the HotStuff family and BFT-SMaRt's
synchronisation phase do): a block it decides or syncs with a certificate of
a later view brings it into that view; f+1 validators seen proposing, voting
or timing out in later views make it ask for the highest view one honest
validator is in, and a peer in that view shows it the NEW-VIEW (again at each
expiry of the peer's view timer, should it be lost). It votes in a view only
on such a proof, which no f validators can forge.

The validator set may change at a stated height (`ledger.membership`: a
change approved in block h takes effect right after the next checkpoint
boundary). Every vote, certificate and quorum about height H counts the set
of H (`Application.validators`), f and the quorum follow its size, and the
primary of view v at H is that set's validator v mod n. A replica votes,
suspects and changes view only at heights whose set holds its id and key: a
removed validator stops at its set's last height, an added one starts at the
first height of its set and follows the commits until then. Messages held for
heights ahead were checked against the set scheduled when they came; when a
committed block changes that schedule they are dropped (and sent again by
their senders' timers).
See docs/spec/consensus.md and docs/adr/0010-validator-set-changes.md.
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
    Timeout,
    ViewChange,
    sign_message,
)
from consensus.records import ViewEntry, load_records, make_prepared_record, make_signed_record, make_view_record
from consensus.validation import MessageChecker, NewViewPlan, compute_new_view_plan, compute_primary
from ledger.block import Block, CommitCertificate
from ledger.genesis import Genesis
from ledger.keys import PrivateKey
from ledger.membership import ValidatorSet
from ledger.tx import Tx

VIEW_TIMER = "view"
"""Fires when the current view made no progress in time: the replica moves to the next view."""

RESUME_TIMER = "resume"
"""Armed with no delay after a decision, to process messages already held for the next height."""

RECHECK_TIMER = "recheck"
"""Armed when this node's clock refuses a proposal's timestamp for now: the proposal is checked again."""

MAX_BACKOFF_EXPONENT = 6
"""The view timeout doubles with each failed view, up to 2**6 times the base."""

VIEW_SPAN = 64
"""Votes for views further than this from the current view are not kept."""

PROPOSALS_AHEAD = 2
"""Proposals are held for at most this many heights past the next one (one block is in flight at a time, so an
honest primary is never further ahead of a replica that follows it): a primary cannot fill memory with blocks."""

FAILURES_ALLOWED = 16
"""Messages that fail their checks a validator may send per height (and per expiry of the view timer); past them,
its messages are refused unchecked until the next, so a validator's bad signatures cost a bounded number of checks.
An honest validator's messages never fail: the transport authenticates the sender, who signs with its own key."""

RECENT_VOTE_HEIGHTS = 3
"""A replica counts as voting only while its last signed vote is at most this many heights below its head."""

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
        *,
        mute_through: int = 0,
    ) -> None:
        self.genesis = genesis
        self.id = validator_id
        self._app = app
        self._sets: dict[int, ValidatorSet] = {}
        """Validator sets by height, asked of the application once per height this replica is at."""
        self._horizon = b""
        """Hash of the set scheduled for the height just past the window, to notice a schedule change."""
        self._schedule_head = -1
        """The application's head when `_sets` and `_horizon` were last brought up to date."""
        self.checker = MessageChecker(genesis, self._get_validators)
        self.mute_through = mute_through
        """Signs nothing (no vote, no view change) at heights up to this one: set when the node lost its
        consensus log, so it cannot contradict what it signed before it lost it."""
        self.last_voted_height = 0
        """Height of the last PREPARE or COMMIT this replica signed (as its consensus log shows; 0 if none)."""
        self._key = key
        self._params = genesis.consensus
        self._window = 2 * max(self._params.checkpoint_interval, 1)
        self._view = 0
        self._view_changing = False
        self._view_entry = ViewEntry(0, 0, None)
        self._height, self._head_hash = app.head()
        self._head_root: bytes | None = None
        self._certificate: CommitCertificate | None = app.head_certificate()
        self._log = MessageLog()
        self._checkpoints: dict[int, dict[str, Checkpoint]] = {}
        self._stable_height = 0
        self._status: Checkpoint | None = None
        self._view_changes: dict[str, ViewChange] = {}
        self._timeouts: dict[str, Timeout] = {}
        self._new_view: NewView | None = None
        self._new_view_sent: set[str] = set()
        self._prepared: PreparedCertificate | None = None
        self._signed: dict[SlotKey, Message] = {}
        self._checked: dict[bytes, str | None] = {}
        self._pending: tuple[Tx, ...] = ()
        self._failed_views = 0
        self._timer_armed = False
        self._resent: tuple[int, int] | None = None
        """(view, height) at which the view timer last re-sent this replica's part, before suspecting."""
        self._peer_heights: dict[str, int] = {}
        self._peer_views: dict[str, int] = {}
        """Highest view each validator was seen working in (a proposal, vote, TIMEOUT or NEW-VIEW it signed there)."""
        self._failures: dict[str, int] = {}
        """Messages from each validator that failed their checks, since the last height or view timer expiry."""
        self._ahead: PrePrepare | None = None
        """A proposal for the next height from a view above this replica's, held until it joins that view."""
        self._sync_requested = 0
        self._restore(records)
        self._refresh_schedule()

    # -- status -------------------------------------------------------------------

    @property
    def view(self) -> int:
        return self._view

    @property
    def validators(self) -> ValidatorSet:
        """The set that certifies the height this replica works on."""
        return self._get_validators(self._height + 1)

    @property
    def quorum(self) -> int:
        """Votes that make a certificate at the height this replica works on (2f+1 of its set)."""
        return self.validators.quorum

    @property
    def is_member(self) -> bool:
        """Is this replica (its id with its key) a validator of the height it works on?"""
        return self._is_member_at(self._height + 1)

    def _is_member_at(self, height: int) -> bool:
        return self._get_validators(height).keys.get(self.id) == self._key.public

    @property
    def primary(self) -> str:
        return compute_primary(self.validators, self._view)

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
    def is_muted(self) -> bool:
        """Is this replica abstaining because it lost its consensus log (see `mute_through`)?"""
        return self._height < self.mute_through

    @property
    def is_voting(self) -> bool:
        """Does this replica take part: it signed a vote at one of the last few heights, and would vote on a
        proposal for its next height now (in a view, not muted, not behind)?

        A replica that only follows by sync (out of the view the others vote in) is not voting, whatever
        it would do if a proposal came: the network's fault tolerance counts it out.
        """
        return self._may_vote() and self._height - self.last_voted_height <= RECENT_VOTE_HEIGHTS

    @property
    def view_base(self) -> int:
        """The height the current view's NEW-VIEW showed certified: nothing is proposed at or below it."""
        return self._view_entry.height

    @property
    def stable_height(self) -> int:
        """Height of the last stable checkpoint."""
        return self._stable_height

    @property
    def log_size(self) -> int:
        """Messages held in memory (log, checkpoints, view changes, timeouts, own signatures)."""
        checkpoints = sum(len(votes) for votes in self._checkpoints.values())
        held = len(self._view_changes) + len(self._timeouts) + len(self._signed)
        return self._log.size() + checkpoints + held

    # -- events -------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Re-send what this replica signed for its current slot, and arm the view timer if a view change is on."""
        self._refresh_schedule()
        if self._view_changing:
            return self._resend_view_change() + self._rearm_timer()
        return self._resend_slot()

    def on_message(self, sender: str, message: Message) -> list[Action]:
        """Handle a message from peer `sender`; anything unsigned, foreign or out of place is ignored."""
        if sender != message.sender or sender == self.id:
            return []
        self._refresh_schedule()
        if not self._may_act_on(message) or self._failures.get(sender, 0) >= FAILURES_ALLOWED:
            return []
        try:
            self.checker.verify(message)
        except InvalidMessage:
            self._failures[sender] = self._failures.get(sender, 0) + 1
            return []
        if not isinstance(message, Checkpoint | ViewChange) and message.view > self._peer_views.get(sender, 0):
            self._peer_views[sender] = message.view
        return self._dispatch(message) + self._follow_live_view()

    def _may_act_on(self, message: Message) -> bool:
        """Could `message` change anything here? Asked before any signature in it is checked, so what this
        replica would ignore anyway costs a Byzantine sender's victim nothing: a view too far ahead to keep
        votes for, a proposal for a height decided or too far ahead to hold, or a NEW-VIEW for a view this
        replica has already started."""
        if isinstance(message, Checkpoint):
            return True
        if message.view > self._view + VIEW_SPAN:
            return False
        if isinstance(message, PrePrepare):
            return self._height < message.height <= self._height + 1 + PROPOSALS_AHEAD
        if isinstance(message, NewView):
            return message.view > self._view or (message.view == self._view and self._view_changing)
        return True

    def _dispatch(self, message: Message) -> list[Action]:
        if isinstance(message, PrePrepare):
            return self._on_pre_prepare(message)
        if isinstance(message, Prepare | Commit):
            return self._on_vote(message)
        if isinstance(message, Checkpoint):
            return self._on_checkpoint(message)
        if isinstance(message, Timeout):
            return self._on_timeout_message(message)
        if isinstance(message, ViewChange):
            return self._on_view_change(message)
        return self._on_new_view(message)

    def on_timeout(self, name: str) -> list[Action]:
        self._refresh_schedule()
        if name in (RESUME_TIMER, RECHECK_TIMER):
            return self._process()
        if name != VIEW_TIMER:
            return []
        self._timer_armed = False
        self._sync_requested = self._height
        # A peer shown the NEW-VIEW may have lost it: each may be shown it again once per expiry of this timer.
        self._new_view_sent = set()
        self._failures = {}
        sync = self._note_peer_height(None)
        if sync:
            # f+1 peers committed past this replica: it is lagging, which is no fault of the primary's.
            return sync + self._rearm_timer()
        if self._view_changing:
            if not self._has_view_change_quorum() or self._count_peers_in(self._view) > self.validators.f:
                # Moving on alone would leave the others behind in ever later views, and f+1 seen working in
                # this view show it started: ask again for this one (a peer in it answers with its NEW-VIEW).
                return self._resend_view_change() + self._rearm_timer()
            return self._start_view_change(self._view + 1)
        slot = (self._view, self._height + 1)
        if self._resent != slot:
            # First expiry at this slot: a lost vote may be all that is wrong, so re-send before suspecting.
            self._resent = slot
            return self._resend_slot() + self._rearm_timer()
        return self._suspect(again=True)

    def on_batch(self, txs: Sequence[Tx]) -> list[Action]:
        """The node has pending txs: arm the request timer, and propose them if this is an idle primary."""
        self._refresh_schedule()
        self._pending = tuple(txs)
        return self._arm_timer() + self._propose()

    def on_stuck_tx(self) -> list[Action]:
        """The node holds a valid tx that many blocks have passed over: suspect a censoring primary.

        The view timer restarts at every commit, so a primary that commits others' txs but never one
        tx is never suspected by it. The suspicion is a TIMEOUT like any other: the view changes only
        if f+1 replicas hold such a tx, so one node's view of its own pool changes nothing alone.
        """
        self._refresh_schedule()
        if self._view_changing:
            return []
        return self._suspect(again=True)

    def on_synced(self) -> list[Action]:
        """The node applied blocks by sync up to its new head (whose stored certificate proves it in view changes)."""
        self._refresh_schedule()
        new_height, new_hash = self._app.head()
        if new_height <= self._height:
            return []
        self._height, self._head_hash, self._head_root = new_height, new_hash, None
        self._certificate = self._app.head_certificate()
        actions: list[Action] = []
        if self._certificate is not None:
            self._return_to_live_view(self._certificate.view, new_height)
            actions += self._join_certified_view(self._certificate.view, new_height)
        self._enter_height()
        actions += [] if self._view_changing else self._disarm_timer()
        return actions + self._process() + self._propose()

    # -- normal case --------------------------------------------------------------

    def _on_pre_prepare(self, message: PrePrepare) -> list[Action]:
        actions = self._note_peer_height(message.sender, message.height - 1)
        # While changing view, the view just left may still commit (see `_return_to_live_view`): keep its blocks.
        lowest = self._view - 1 if self._view_changing else self._view
        if not self._is_fresh(message) and not self._is_reproposal(message):
            return actions
        if not self._is_in_window(message.height, message.view, lowest=lowest, highest=self._view):
            self._hold_ahead(message)
            return actions
        slot = self._log.slot(message.height)
        first = slot.pre_prepares.setdefault(message.view, message)
        if first.block.hash() != message.block.hash():
            if self._is_current(message.view, message.height):
                return actions + self._suspect()
            return actions
        return actions + self._process()

    def _on_vote(self, vote: Prepare | Commit) -> list[Action]:
        actions = self._note_peer_height(vote.sender, vote.height - 1)
        if not self._is_in_window(vote.height, vote.view, old_views=isinstance(vote, Commit)):
            return actions
        if not self._log.add_vote(vote):
            return actions
        return actions + self._process()

    @staticmethod
    def _is_fresh(message: PrePrepare) -> bool:
        """Is the proposal a block its sender built in the proposal's view?"""
        header = message.block.header
        return header.view == message.view and header.proposer == message.sender

    def _is_reproposal(self, message: PrePrepare) -> bool:
        """Is the proposal the block the current view's NEW-VIEW re-proposes (as its primary re-sends it)?

        The view entry, persisted before any vote in the view, names that block: a backup restarted inside the
        view, which no longer holds the NEW-VIEW, prepares it from the primary's re-sent PRE-PREPARE.
        """
        entry = self._view_entry
        return (
            entry.view == message.view
            and entry.height + 1 == message.height
            and entry.block_hash == message.block.hash()
        )

    def _hold_ahead(self, message: PrePrepare) -> None:
        """Keep one proposal for the next height from a later view (the latest view's), for when this replica
        joins that view: a replica that learns the live view from the votes about a proposal must not have
        thrown the proposal away. One block at most, whatever the primaries of later views send."""
        ahead = self._ahead
        if message.height != self._height + 1 or not self._view < message.view <= self._view + VIEW_SPAN:
            return
        if ahead is None or ahead.height != message.height or message.view > ahead.view:
            self._ahead = message

    def _take_ahead(self) -> None:
        """Having moved to a later view, file the proposal held for it, if any, with the others."""
        ahead = self._ahead
        if ahead is None or ahead.view > self._view:
            return
        self._ahead = None
        lowest = self._view - 1 if self._view_changing else self._view
        if self._is_in_window(ahead.height, ahead.view, lowest=lowest, highest=self._view):
            self._log.slot(ahead.height).pre_prepares.setdefault(ahead.view, ahead)

    def _process(self) -> list[Action]:
        """Move the slot at height+1 forward as far as the messages held allow."""
        slot = self._log.get(self._height + 1)
        if slot is None:
            return []
        actions: list[Action] = []
        if self._may_vote():
            pre_prepare = slot.pre_prepares.get(self._view)
            if pre_prepare is not None:
                voted = self._process_pre_prepare(slot, pre_prepare)
                if voted is None:
                    return self._suspect()
                actions += voted
        return actions + self._process_commits(slot)

    def _may_vote(self) -> bool:
        """May this replica prepare and commit at height+1 in its current view?

        Not while changing view, not while muted, and not at a height the current view's NEW-VIEW
        showed certified: that block was decided in an earlier view and comes by sync.
        """
        if self._view_changing or self.is_muted or not self.is_member:
            return False
        return self._height >= self._view_entry.height

    def _process_pre_prepare(self, slot: Slot, pre_prepare: PrePrepare) -> list[Action] | None:
        """Prepare the current view's proposal, then commit once prepared; None if the proposal is bad."""
        view, height = pre_prepare.view, pre_prepare.height
        block_hash = pre_prepare.block.hash()
        entry = self._view_entry
        if entry.view == view and height == entry.height + 1 and entry.block_hash not in (None, block_hash):
            return None
        if not self._respects_lock(pre_prepare):
            return None
        actions: list[Action] = []
        if ("prepare", view, height) not in self._signed:
            if self._check_block(pre_prepare.block) is not None:
                return None
            # A re-proposal (its header from an earlier view) had its time checked when 2f+1 first prepared it,
            # and the NEW-VIEW obliges it however old it has grown: only a fresh block's time is asked about.
            is_fresh = pre_prepare.block.header.view == view
            wait_ms = self._app.check_time(pre_prepare.block) if is_fresh else 0
            if wait_ms > 0:
                # This node's clock does not accept the timestamp yet; that may change, so ask again later.
                return [SetTimer(RECHECK_TIMER, min(wait_ms, self._params.view_timeout_ms)), *self._arm_timer()]
            actions += self._arm_timer()
            actions += self._vote(Prepare(self.genesis.chain_id, view, height, block_hash, self.id))
        prepares = [p for p in slot.prepares.get(view, {}).values() if p.block_hash == block_hash]
        if ("commit", view, height) in self._signed or len(prepares) < self._get_validators(height).quorum:
            return actions
        prepared = PreparedCertificate(pre_prepare, tuple(sorted(prepares, key=lambda p: p.sender)))
        self._prepared = prepared
        actions.append(Persist(make_prepared_record(prepared)))
        return actions + self._vote(Commit(self.genesis.chain_id, view, height, block_hash, self.id))

    def _respects_lock(self, pre_prepare: PrePrepare) -> bool:
        """May this replica prepare `pre_prepare`, given the block it prepared at that height in an earlier view?

        A prepared certificate is a lock (as in CometBFT's proof-of-lock): the replica prepares another block at
        that height only if its view's NEW-VIEW re-proposes that block on the strength of a certificate from a
        later view than the lock's. So a block that 2f+1 committed can never be replaced, even by a NEW-VIEW
        built from view changes that missed it (lost, or sent by a replica that then went back to vote).
        """
        lock = self._prepared
        if lock is None or lock.height != pre_prepare.height or lock.view >= pre_prepare.view:
            return True
        block_hash = pre_prepare.block.hash()
        if lock.pre_prepare.block.hash() == block_hash:
            return True
        entry = self._view_entry
        return (
            entry.view == pre_prepare.view
            and entry.height + 1 == pre_prepare.height
            and entry.block_hash == block_hash
            and entry.prepared_view is not None
            and entry.prepared_view > lock.view
        )

    def _process_commits(self, slot: Slot) -> list[Action]:
        """Decide the block if some view holds a quorum of matching commits for it.

        A certified block is final: it is checked for what this node must execute (links, txs,
        re-executed roots), never against this node's clock.
        """
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
        self.last_voted_height = max(self.last_voted_height, signed.height)
        return [*persist, Broadcast(signed)]

    def _decide(self, block: Block, view: int, commits: list[Commit]) -> list[Action]:
        height, block_hash = block.height, block.hash()
        signatures = tuple(sorted((c.sender, c.signature) for c in commits))
        certificate = CommitCertificate(height, view, block_hash, signatures)
        actions: list[Action] = [Decide(block, certificate)]
        self._return_to_live_view(view, height)
        actions += self._join_certified_view(view, height)
        self._height, self._head_hash, self._head_root = height, block_hash, block.header.state_root
        self._certificate = certificate
        self._enter_height()
        actions += self._disarm_timer()
        if height % self._params.checkpoint_interval == 0 and self._is_member_at(height):
            actions += self._send_checkpoint()
        if self._log.get(height + 1) is not None:
            actions.append(SetTimer(RESUME_TIMER, 0))
        return actions

    def _return_to_live_view(self, view: int, height: int) -> None:
        """Changing view alone, seeing 2f+1 commit in an older view past what it reported: go back and vote.

        A quorum that commits in `view` beyond the height this replica's VIEW-CHANGE was about is not
        changing view; waiting for it would leave this replica out of every vote until the next real view
        change. Its VIEW-CHANGE stays signed (a later one for that view re-sends it), and stays harmless: the
        blocks it now prepares are locked (`_respects_lock`), whatever view changes a NEW-VIEW is built from.
        """
        own = self._view_changes.get(self.id)
        if not self._view_changing or view >= self._view or own is None or height <= own.height + 1:
            return
        self._view, self._view_changing = view, False
        self._view_changes = {s: vc for s, vc in self._view_changes.items() if vc.view > view}

    def _join_certified_view(self, view: int, height: int) -> list[Action]:
        """A block synced with a certificate from a later view shows that view live: join it and vote there.

        Without this, a replica deaf while the others changed view never learns the new view (each peer shows
        its NEW-VIEW once, and the NEW-VIEW's height is behind it by now): it follows by sync and never votes
        again, and the network's fault tolerance is silently gone. Joining is safe: 2f+1 validators committed
        `height` in `view`, so that view's NEW-VIEW started at or below `height`, and what is proposed above
        it in `view` is fresh, bound by no re-proposal; this replica votes on it as one that saw the NEW-VIEW
        would, under its own locks. The entry is persisted before any vote in the view, as `_enter_view` does.
        """
        if view < self._view or (view == self._view and not self._view_changing):
            return []
        self._view, self._view_changing, self._new_view = view, False, None
        self._new_view_sent = set()
        self._view_entry = ViewEntry(view, height, None)
        self._view_changes = {s: vc for s, vc in self._view_changes.items() if vc.view > view}
        self._take_ahead()
        return [Persist(make_view_record(self._view_entry))]

    def _enter_height(self) -> None:
        """Forget what only mattered for heights now behind us."""
        self._failed_views = 0
        self._prepared = None
        self._checked.clear()
        self._status = None
        self._signed = {key: m for key, m in self._signed.items() if key[2] == 0 or key[2] > self._height}
        self._timeouts = {sender: t for sender, t in self._timeouts.items() if t.height > self._height}
        if self._ahead is not None and self._ahead.height <= self._height:
            self._ahead = None
        self._failures = {}

    def _propose(self) -> list[Action]:
        """As an idle primary with pending txs, build and propose the next block."""
        height = self._height + 1
        if not self.is_primary or not self._may_vote() or not self._pending:
            return []
        if ("pre_prepare", self._view, height) in self._signed or self._app.head() != (self._height, self._head_hash):
            return []
        slot = self._log.get(height)
        if slot is not None and self._view in slot.pre_prepares:
            return []
        block = self._app.build_block(height, self._view, self._take_batch())
        if not block.txs:
            return []
        pre_prepare, actions = self._sign_once(PrePrepare(self.genesis.chain_id, self._view, height, block, self.id))
        if pre_prepare is None:
            return actions
        self._checked[block.hash()] = None
        self._log.slot(height).pre_prepares[self._view] = pre_prepare
        return [*actions, Broadcast(pre_prepare), *self._process()]

    def _take_batch(self) -> list[Tx]:
        """The pending txs that fit in one block, by count and by bytes."""
        batch: list[Tx] = []
        size = 0
        for tx in self._pending[: self._params.max_block_txs]:
            size += len(tx.signing_bytes()) + len(tx.signature)
            if size > self._params.max_block_bytes:
                break
            batch.append(tx)
        return batch

    def _check_block(self, block: Block) -> str | None:
        """Why `block` cannot be the next block, or None (the application's verdict is cached per block).

        The cache is keyed by the block hash, which names the whole block: the checker refused any
        message whose body does not match its header before it got here.
        """
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

    def _resend_slot(self) -> list[Action]:
        """Re-send what this replica signed in its view for the height it works on (a lost message costs a
        round trip, not a view change)."""
        next_height = self._height + 1
        return [
            Broadcast(message)
            for (kind, view, height), message in sorted(self._signed.items(), key=lambda item: _KIND_ORDER[item[0][0]])
            if view == self._view and height in (0, next_height) and kind != "view_change"
        ]

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
        if max(tally.values(), default=0) < self._get_validators(height).quorum:
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
        f = self.validators.f
        if len(heights) <= f:
            return []
        return self._request_sync(heights[f])

    def _request_sync(self, height: int) -> list[Action]:
        if height <= self._height or height <= self._sync_requested:
            return []
        self._sync_requested = height
        return [RequestSync(height)]

    # -- suspicion and view change ------------------------------------------------

    def _suspect(self, again: bool = False) -> list[Action]:
        """No progress in this view at height+1: re-send our part, wish to leave, and leave once f+1 wish it.

        The TIMEOUT binds this replica to nothing: it keeps voting in the view, so a replica whose clock,
        network or CPU alone is slow never leaves the view the others commit in. A bad proposal makes the
        replica suspect at once, and only once; the view timer (`again`) repeats it.
        """
        if self.is_muted or not self.is_member:
            return self._rearm_timer() if again else []
        height = self._height + 1
        own = self._timeouts.get(self.id)
        if own is not None and (own.view, own.height) == (self._view, height):
            if not again:
                return []
        else:
            own = sign_message(Timeout(self.genesis.chain_id, self._view, height, self.id), self._key)
            self._timeouts[self.id] = own
        actions: list[Action] = [*self._resend_slot(), Broadcast(own), *self._rearm_timer()]
        return actions + self._process_timeouts()

    def _on_timeout_message(self, message: Timeout) -> list[Action]:
        actions = self._note_peer_height(message.sender, message.height - 1)
        if message.height <= self._height and self._head_root is not None:
            # The peer waits for a height we have decided: show it our head, so it syncs instead.
            actions.append(Send(message.sender, self._make_status()))
        if message.view < self._view:
            return actions + self._show_new_view(message.sender)
        known = self._timeouts.get(message.sender)
        is_newer = known is None or (message.view, message.height) > (known.view, known.height)
        if message.height > self._height and is_newer:
            self._timeouts[message.sender] = message
        return actions + self._process_timeouts()

    def _process_timeouts(self) -> list[Action]:
        """Move to the next view once f+1 replicas (this one may be among them) wish to leave it at height+1."""
        if self._view_changing or self.is_muted:
            return []
        height = self._height + 1
        wishes = sum(1 for t in self._timeouts.values() if t.view == self._view and t.height == height)
        if wishes <= self.validators.f:
            return []
        return self._start_view_change(self._view + 1)

    def _start_view_change(self, view: int) -> list[Action]:
        """Give up on the current view and ask for `view` (only as a validator of the height it works on)."""
        if self.is_muted or not self.is_member:
            return []
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
        self._signed = {key: m for key, m in self._signed.items() if key[2] > 0 or key[1] >= view}
        self._log.drop_proposals(self._height + 1, view)
        self._take_ahead()
        return [*actions, Broadcast(view_change), *self._rearm_timer(), *self._process_view_changes()]

    def _has_view_change_quorum(self) -> bool:
        """Have q replicas (this one included) asked for the view this replica is changing to, or a later one?"""
        return sum(vc.view >= self._view for vc in self._view_changes.values()) >= self.quorum

    def _count_peers_in(self, view: int) -> int:
        """How many other validators of the current set were seen working in `view` or a later one."""
        keys = self.validators.keys
        return sum(1 for sender, seen in self._peer_views.items() if seen >= view and sender in keys)

    def _follow_live_view(self) -> list[Action]:
        """f+1 validators seen working in views above ours: ask for the highest view that one honest one is in.

        An honest validator works in a view only once it started (by its NEW-VIEW, or by a block certified in
        it), so the (f+1)-th highest view seen is live, and no f validators can fake it. As PBFT's replica
        that sees f+1 view changes ahead, this one sends its VIEW-CHANGE for that view: a peer in the view
        answers with its NEW-VIEW (`_help_lagging_peer`), or the view's next certified block brings it in
        (`_join_certified_view`); it never votes there before.
        """
        if self.is_muted or not self.is_member:
            return []
        f = self.validators.f
        if self._count_peers_in(self._view + 1) <= f:
            return []
        keys = self.validators.keys
        ahead = sorted((seen for sender, seen in self._peer_views.items() if sender in keys), reverse=True)
        return self._start_view_change(ahead[f])

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
        if message.view <= self._view and not self._view_changing:
            actions += self._show_new_view(message.sender)
        if message.height < self._height and self._head_root is not None:
            actions.append(Send(message.sender, self._make_status()))
        return actions

    def _show_new_view(self, peer: str) -> list[Action]:
        """Send `peer`, which is behind our view, the NEW-VIEW that started it: once per peer and view."""
        if self._new_view is None or self._view_changing or peer in self._new_view_sent:
            return []
        self._new_view_sent.add(peer)
        return [Send(peer, self._new_view)]

    def _process_view_changes(self) -> list[Action]:
        """Join a view f+1 others want; as the new primary, start the view on 2f+1 view changes."""
        wanted = sorted(
            (vc.view for sender, vc in self._view_changes.items() if sender != self.id and vc.view > self._view),
            reverse=True,
        )
        f = self.validators.f
        if len(wanted) > f:
            return self._start_view_change(wanted[f])
        if not self._view_changing or ("new_view", self._view, 0) in self._signed:
            return []
        view_changes = sorted(
            (vc for vc in self._view_changes.values() if vc.view == self._view), key=lambda v: v.sender
        )
        if not view_changes:
            return []
        plan = compute_new_view_plan(view_changes)
        # The view changes are counted by the set of the height the new view starts at, as its receivers count them.
        validators = self._get_validators(plan.height + 1)
        senders = {vc.sender for vc in view_changes} & validators.keys.keys()
        if compute_primary(validators, self._view) != self.id or len(senders) < validators.quorum:
            return []
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
        """Start the view: remember (durably) where it starts and what it must re-propose, then go on."""
        self._view, self._view_changing, self._new_view = new_view.view, False, new_view
        self._new_view_sent = set()
        pre_prepare = new_view.pre_prepare
        reproposed = None if pre_prepare is None else pre_prepare.block.hash()
        self._view_entry = ViewEntry(new_view.view, plan.height, reproposed, plan.prepared_view)
        self._view_changes = {s: vc for s, vc in self._view_changes.items() if vc.view > new_view.view}
        self._log.drop_proposals(self._height + 1, new_view.view)
        actions: list[Action] = [Persist(make_view_record(self._view_entry)), *self._request_sync(plan.height)]
        if pre_prepare is not None and self._is_in_window(pre_prepare.height, pre_prepare.view):
            self._log.slot(pre_prepare.height).pre_prepares[new_view.view] = pre_prepare
        self._take_ahead()
        if self._pending or pre_prepare is not None:
            actions += self._rearm_timer()
        else:
            actions += self._disarm_timer()
        return actions + self._process() + self._propose()

    # -- helpers ------------------------------------------------------------------

    def _refresh_schedule(self) -> None:
        """Once the application has applied a block: forget the sets asked before, and if that block changed the
        schedule (the set past the window is another), the messages checked against the old one.

        Called as each event comes in, not on `Decide`: the application applies a decided block only after the
        replica returns. A set change approved in block k begins at k+2 at the earliest, so the set of the
        height this replica works on never changes under it; messages about later heights may have been checked
        against a set that block k reschedules, and are dropped (their senders send them again).
        """
        head = self._app.head()[0]
        if head == self._schedule_head:
            return
        self._schedule_head = head
        self._sets.clear()
        horizon = self._get_validators(head + self._window + 1).hash()
        if horizon != self._horizon:
            if self._horizon:
                self._drop_unsure(self._height + 1)
            self._horizon = horizon

    def _get_validators(self, height: int) -> ValidatorSet:
        """The set that certifies `height`, asked of the application once per height while at this head."""
        found = self._sets.get(height)
        if found is None:
            found = self._sets[height] = self._app.validators(height)
        return found

    def _drop_unsure(self, height: int) -> None:
        """Forget the messages about heights above `height`: they were checked against a set since rescheduled."""
        self._log.drop_above(height)
        self._checkpoints = {h: votes for h, votes in self._checkpoints.items() if h <= height}
        self._timeouts = {sender: t for sender, t in self._timeouts.items() if t.height <= height}
        self._view_changes = {
            sender: vc for sender, vc in self._view_changes.items() if sender == self.id or vc.height < height
        }

    def _is_current(self, view: int, height: int) -> bool:
        return view == self._view and not self._view_changing and height == self._height + 1

    def _is_in_window(
        self, height: int, view: int, old_views: bool = False, *, lowest: int | None = None, highest: int | None = None
    ) -> bool:
        """Is a message for (view, height) worth keeping: a height not yet decided, a view not long past?

        Votes are kept for views up to `VIEW_SPAN` ahead (commits also as far behind). Proposals carry
        whole blocks, so their callers narrow the views to the one this replica is in (and the one it is
        leaving): a validator that is primary of many views must not make it hold a block for each.
        """
        if not self._height < height <= self._height + self._window:
            return False
        if lowest is None:
            lowest = self._view - VIEW_SPAN if old_views else self._view
        if highest is None:
            highest = self._view + VIEW_SPAN
        return lowest <= view <= highest

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
        """Resume from persisted records: the view and where it started, what was signed, what was prepared."""
        restored = load_records(records)
        top_view, normal_views = 0, set()
        for message in restored.signed:
            if message.sender != self.id or isinstance(message, Checkpoint | Timeout):
                raise ConsensusLogCorrupted(f"consensus log holds a {type(message).__name__} not signed by this node")
            self._signed[_compute_slot_key(message)] = message
            top_view = max(top_view, message.view)
            if isinstance(message, Prepare | Commit):
                self.last_voted_height = max(self.last_voted_height, message.height)
            if not isinstance(message, ViewChange):
                normal_views.add(message.view)
        for entry in restored.views:
            top_view = max(top_view, entry.view)
            normal_views.add(entry.view)
            if entry.view >= self._view_entry.view:
                self._view_entry = entry
        self._view = top_view
        self._view_changing = top_view > 0 and top_view not in normal_views
        self._enter_height()
        self._failed_views = 0
        for prepared in restored.prepared:
            if prepared.height == self._height + 1 and (self._prepared is None or prepared.view >= self._prepared.view):
                self._prepared = prepared
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
