"""One node process: the store, contracts, mempool, consensus replica and transport, wired.

`Node` owns every long-lived part and is what the HTTP API reads and
submits to. Everything runs on one asyncio event loop: API handlers, the
consensus driver, timers and the transport's sender tasks, so the replica
sees its inputs one at a time without locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consensus.replica import Replica
from contracts import load_contracts
from ledger.block import Block, CommitCertificate, Receipt, compute_block_work, has_room
from ledger.errors import LedgerError
from ledger.genesis import Genesis, Identity
from ledger.keys import PrivateKey
from ledger.membership import Membership
from ledger.store import Head, Store
from ledger.tx import DEFAULT_TX_WINDOW, Tx
from node.admission import Admission
from node.application import NodeApplication
from node.catchup import CatchUp
from node.config import (
    ADDRESSES_FILE,
    DAMAGED_WAL_FILE,
    DATA_DIR,
    GENESIS_FILE,
    KEY_FILE,
    LINK_FAULTS_FILE,
    TEMPLATES_DIR,
    WAL_FILE,
    WINDOWS_FILE,
    NodeConfig,
)
from node.driver import CONSENSUS_KIND, ConsensusDriver
from node.executor import Clock, Executor
from node.feed import CommitSignal
from node.idempotency import IdempotencyKeys
from node.mempool import Mempool
from node.metrics import NodeMetrics
from node.notify.alerts import AlertRules
from node.notify.messages import MessageTemplates
from node.notify.webhooks import Webhooks
from node.personal import PersonalGrants, load_encryption_key
from node.reindex import mark_rebuild, needs_rebuild, rebuild_derived
from node.snapshots import SnapshotServer, find_base_height
from node.tokens import TokenStore
from node.wal import ConsensusLog, LogFile, Opener, abstain_through, make_full_disk_opener, recover_records
from p2p.addresses import AddressBook, AddressGossip
from p2p.envelope import Envelope, Sealer
from p2p.faults import LinkFaults
from p2p.forward import TxForwarder
from p2p.gossip import TXS_KIND, TxGossip
from p2p.peers import PeerTable
from p2p.reads import READER_ROLE, ReadGate, ReadSealer
from p2p.snapshot import StateSync
from p2p.sync import BlockSync, HttpSyncSource
from p2p.transport import HttpTransport
from p2p.windows import WindowStore

log = logging.getLogger(__name__)


REOFFER_INTERVAL_S = 1.0
"""How often waiting mempool txs are looked at for gossiping again."""

REOFFER_MAX_TXS = 400
"""Most txs gossiped again per look, so a pool of stuck txs is re-offered gradually."""

REOFFER_AFTER_BLOCKS = 8
"""A tx still here after this many blocks is missing from the primaries' pools (they take the oldest first)."""

CANCEL_AGAIN_S = 1.0
"""How long shutdown waits for cancelled tasks before it cancels those still running again."""


def wall_clock() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def shift_clock(clock: Clock, offset_ms: int) -> Clock:
    """`clock` set `offset_ms` ahead (behind if negative): a node's skewed clock in fault tests."""
    return lambda: clock() + offset_ms


def open_link_faults(home: Path, config: NodeConfig) -> LinkFaults | None:
    """The fault layer (`p2p.faults`) of a node made for fault tests; None for any other, which refuses to start
    with a control file in its home."""
    if config.test_faults:
        return LinkFaults(home / LINK_FAULTS_FILE)
    if (home / LINK_FAULTS_FILE).exists():
        raise ValueError(
            f"{home / LINK_FAULTS_FILE} asks for link faults, but this node was not made for fault tests"
            " (test_faults is off): remove the file"
        )
    return None


@dataclass(frozen=True)
class Admitted:
    """What happened to one submitted tx."""

    tx_id: bytes
    error: LedgerError | None = None
    """Why it was refused, or None if it is in the mempool (or already was)."""


def list_followed_validators(membership: Membership, next_height: int) -> list[Identity]:
    """The validators of the set that certifies block `next_height` and of the sets scheduled after it, in
    this order (a validator's last key is the one its last listing gives): whose envelopes and address records
    a node takes."""
    scheduled = [epoch for epoch in membership.epochs if epoch.from_height > next_height]
    epochs = [membership.epochs[-len(scheduled) - 1], *scheduled]
    return [validator for epoch in epochs for validator in epoch.validators.validators]


def _log_chunks(done: int, total: int) -> None:
    if done == total or done % max(total // 10, 1) == 0:
        log.warning("state sync: %d of %d chunks fetched and checked", done, total)


def list_reader_nodes(membership: Membership) -> dict[str, frozenset[bytes]]:
    """The keys of the client identities that are non-voting nodes of their organisations (role `node`), by id:
    with the validators, who may read a node's blocks and snapshots."""
    return {c.id: frozenset({c.public_key}) for c in membership.clients if READER_ROLE in c.roles}


class Node:
    """A node over its home directory: a validator, or a follower of a member organisation."""

    def __init__(
        self, home: Path, clock: Clock = wall_clock, state_sync: bool | None = None, config: NodeConfig | None = None
    ) -> None:
        """`state_sync`: True to load a peer's snapshot whenever the store is empty, False never,
        None (automatic) when it is empty and a snapshot is at least a checkpoint interval ahead.
        `config`: the home's settings with what the command line overrides (default: the home's)."""
        self.home = home
        self.config = config or NodeConfig.load(home)
        self.genesis = Genesis.load(home / GENESIS_FILE)
        self.key = PrivateKey.load(home / KEY_FILE)
        if self.config.test_clock_offset_ms:
            clock = shift_clock(clock, self.config.test_clock_offset_ms)
        self.clock = clock
        self.store = Store(home / DATA_DIR)
        self.contracts = load_contracts()
        self.executor = Executor(self.store, self.contracts, self.genesis)
        self.is_validator = self._check_membership()
        """Does this node vote? A validator of genesis or of a set governance made does (when its set is in
        force); a node of a member organisation whose id no set holds follows without."""
        self.admission = Admission(self.genesis, self.contracts, self.store)
        self.mempool = Mempool(
            self.config.mempool_max_txs,
            self.config.mempool_max_bytes,
            signer_max_txs=self.config.mempool_signer_max_txs,
            signer_max_bytes=self.config.mempool_signer_max_bytes,
            max_wait_ms=self.config.mempool_max_wait_ms,
        )
        app = NodeApplication(self.executor, self.admission, self.config.node_id, clock)
        records = recover_records(home / WAL_FILE)
        set_aside = (home / DAMAGED_WAL_FILE).exists()
        mute_through = abstain_through(records, self.store.height, set_aside) if self.is_validator else 0
        if mute_through:
            # A validator with blocks (or a damaged log set aside) but no consensus log lost it: what it signed
            # before is unknown, so it signs nothing at heights it may have signed at, and lets the network decide
            # them without it.
            log.warning(
                "no consensus log beside %d blocks%s: abstaining from votes through height %d",
                self.store.height,
                f" and {DAMAGED_WAL_FILE}" if set_aside else "",
                mute_through,
            )
        self.peers = PeerTable.from_genesis(self.genesis, self.config.node_id)
        verify = self.config.make_peer_ssl_context()
        self.link_faults = open_link_faults(home, self.config)
        self.transport = HttpTransport(
            self.config.node_id, self.key, self.genesis, self.peers, verify=verify, faults=self.link_faults
        )
        self.windows = WindowStore(home / WINDOWS_FILE, self.transport.inbox.gate)
        """The envelope replay windows, kept across restarts."""
        self.windows.load()
        self.replica: Replica | None = None
        """The consensus replica of a validator; None on a follower."""
        self.driver: ConsensusDriver | None = None
        if self.is_validator:
            self.replica = Replica(self.genesis, self.node_id, self.key, app, records, mute_through=mute_through)
            self.driver = ConsensusDriver(
                self.replica,
                ConsensusLog(home / WAL_FILE, records, self._log_opener()),
                self.executor,
                self.mempool,
                self.transport,
                self.genesis.consensus.max_block_txs,
                self.config.batch_wait_ms,
                self.request_sync,
                self.genesis.consensus.checkpoint_interval,
                lambda: self.catchup.syncing,
                recheck=self._is_admissible,
            )
            self.driver.listeners.append(self._on_commit)
        self.forwarder = None if self.is_validator else TxForwarder(self.peers, verify)
        """A follower's way to the validators for its clients' txs (validators gossip instead)."""
        self.gossip = TxGossip(self.transport, forward=self.forwarder.forward if self.forwarder else None)
        self.read_gate = ReadGate(self.genesis, self.node_id, clock)
        """Opens the seals of peers' reads of this node's `/p2p` routes: member nodes only (`p2p.reads`)."""
        read_sealer = ReadSealer(Sealer(self.key, self.node_id, self.genesis.chain_id), clock)
        self.sync_source = HttpSyncSource(self.peers, verify=verify, seal=read_sealer, faults=self.link_faults)
        interval = self.genesis.consensus.checkpoint_interval
        self.snapshots = SnapshotServer(self.store, interval)
        self.base_height = find_base_height(self.store)
        """Lowest block this node holds: 1 normally, the snapshot height after state sync, 0 when empty."""
        self.catchup = CatchUp(
            self.executor,
            lambda apply: BlockSync(
                self.genesis, self.sync_source, self.peers, apply, validators=self.executor.get_validators
            ),
            self._on_commit,
            self._on_synced,
            StateSync(self.genesis, self.sync_source, self.peers, self._load_snapshot, progress=_log_chunks),
            state_sync,
            interval,
        )
        followed = list_followed_validators(self.executor.get_membership(), self.store.height + 1)
        book = AddressBook(self.genesis.chain_id, {v.id: v.public_key for v in followed}, home / ADDRESSES_FILE)
        book.load()
        announce = (self.key, self.config.advertised_url) if self.is_validator else None
        self.addresses = AddressGossip(book, self.transport, self.sync_source, clock, announce)
        """The peers' announced addresses, and this node's own (a validator's)."""
        self._followed: tuple[Membership, int] | None = None
        """The membership and the count of sets still to begin that the gate and peers were last set for."""
        self._follow_membership()
        self.transport.register(CONSENSUS_KIND, self._on_consensus)
        self.transport.register(TXS_KIND, self._on_gossip)
        self._tasks: list[asyncio.Task[Any]] = []
        self.last_commit_ms = clock()
        """When this node last committed a block (or started), on its clock."""
        self.blocks_with_room = 0
        """Committed blocks that could have held one more tx (the clock of `Mempool.take_unproposed`)."""
        self.oversized_requests = 0
        """`/p2p` requests refused because their body was too large."""
        self.metrics = NodeMetrics(self)
        self.commits = CommitSignal()
        """Wakes the API's long-polls when a block commits."""
        self.tokens = TokenStore(home)
        """The API tokens of this node's home, re-read when they change (read once here: a malformed file stops
        the start with the field it got wrong)."""
        self.tokens.tokens()
        self.idempotency = IdempotencyKeys(self.store, clock)
        """The `Idempotency-Key`s of API writes, kept for a day."""
        self.webhooks = Webhooks(self.store, clock, self.config)
        """The webhook subscriptions made on this node, and their sender."""
        self.alerts = AlertRules(self)
        """The alert rules this node evaluates."""
        self.messages = MessageTemplates(home / TEMPLATES_DIR)
        """The customer message templates: the home's own, then the shipped ones."""
        self.encryption_key = load_encryption_key(home)
        """The organisation's X25519 key: it opens the personal data wrapped to the organisation (None: none)."""
        self.grants = PersonalGrants(self, self.encryption_key) if self.encryption_key and self.is_validator else None
        """A validator's grants of personal data to the organisations that fulfil its organisation's orders."""

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def _check_membership(self) -> bool:
        """Is this node a validator: its id one that genesis or governance (`ledger.membership`) made a
        validator? Its key must then be the one the set in force or the last one scheduled gives it. Else it
        must belong to a member organisation and follows without voting (a validator that governance adds while
        its node already runs as a follower votes once restarted); the validators serve its reads once genesis or
        governance lists it as a client identity with role `node`, its id and its key (`p2p.reads`)."""
        membership = self.executor.get_membership()
        listed = [e.validators.keys[self.node_id] for e in membership.epochs if self.node_id in e.validators.keys]
        if listed:
            in_force = membership.validator_set(self.store.height + 1).keys.get(self.node_id)
            if self.key.public not in (in_force, listed[-1]):
                raise LedgerError(f"{self.home / KEY_FILE} is not the key the validator set gives {self.node_id!r}")
            return True
        client = membership.identity(self.node_id, self.store.height + 1)
        if client is not None and READER_ROLE not in client.roles:
            raise LedgerError(f"{self.node_id!r} is a client identity of {self.genesis.chain_id!r}, not a node")
        if client is not None and (client.public_key, client.org) != (self.key.public, self.config.org):
            raise LedgerError(f"{self.home / KEY_FILE} is not the key of node {self.node_id!r} of {client.org!r}")
        if client is None:
            log.warning(
                "%r is not a member node (a client identity with role %r) of the genesis: peers answer its reads "
                "only if governance has listed it since",
                self.node_id,
                READER_ROLE,
            )
        if not membership.has_org(self.config.org) and self.store.height == 0:
            # An empty store knows only the genesis members: an organisation added since is checked once synced.
            log.warning("organisation %r is not in genesis: following the chain to learn its members", self.config.org)
        elif not membership.has_org(self.config.org):
            raise LedgerError(
                f"{self.node_id!r} is neither a validator nor a node of a member organisation of "
                f"{self.genesis.chain_id!r} (org {self.config.org!r})"
            )
        return False

    def _follow_membership(self) -> None:
        """After a commit that changed the membership or began a validator set: accept envelopes from the
        validators of the set in force and of those scheduled (with every key they hold in them) and their
        address records (signed with the last key they were given), and send to the validators added since."""
        membership = self.executor.get_membership()
        next_height = self.store.height + 1
        followed = (membership, sum(e.from_height > next_height for e in membership.epochs))
        if followed == self._followed:
            return
        self._followed = followed
        keys: dict[str, frozenset[bytes]] = {}
        latest: dict[str, bytes] = {}
        for validator in list_followed_validators(membership, next_height):
            keys[validator.id] = keys.get(validator.id, frozenset()) | {validator.public_key}
            latest[validator.id] = validator.public_key
            if validator.address:
                self.transport.add_peer(validator.id, validator.address)
        self.transport.inbox.gate.set_senders(keys)
        self.read_gate.set_readers(keys | list_reader_nodes(membership))
        self.addresses.book.set_members(latest)

    async def start(self) -> None:
        if needs_rebuild(self.store):
            log.warning("state sync: the rebuild of the lists from the snapshot was cut short; rebuilding them")
            await asyncio.to_thread(rebuild_derived, self.store)
        self.snapshots.capture()
        await self.transport.start()
        self.addresses.start()
        if self.driver is not None:
            self.driver.start()
        self._tasks = [
            asyncio.create_task(self.gossip.run()),
            asyncio.create_task(self.catchup.run()),
            asyncio.create_task(self._reoffer_waiting_txs()),
            asyncio.create_task(self.windows.run()),
            asyncio.create_task(self.addresses.run()),
            asyncio.create_task(self.webhooks.run()),
            asyncio.create_task(self.alerts.run()),
        ]
        if self.forwarder is not None:
            self._tasks.append(asyncio.create_task(self.forwarder.run()))
        if self.grants is not None:
            self._tasks.append(asyncio.create_task(self.grants.run()))

    async def close(self) -> None:
        await cancel_all(self._tasks)
        await self.transport.close()
        self.windows.save()
        await self.sync_source.close()
        if self.driver is not None:
            self.driver.close()
        self.snapshots.close()
        self.store.close()

    # -- txs ------------------------------------------------------------------------

    def submit(self, txs: list[Tx], source: str | None = None, from_peer: bool = False) -> list[Admitted]:
        """Admit txs (from the client address `source`, or signed here for a token: None) into the mempool, gossip
        them to the peers, and offer them to consensus. `from_peer`: a peer's gossip, held whatever the mempool's
        work bound (`Mempool.add`)."""
        now = self.clock()
        out = []
        admitted = []
        for tx in txs:
            try:
                size = len(tx.signing_bytes()) + len(tx.signature)
                if tx.id not in self.mempool:
                    self.mempool.require_room(tx, size, now, from_peer)  # refused for room before any signature check
                self.admission.check(tx, source)
                if self.mempool.add(tx, size, now, self.blocks_with_room, from_peer=from_peer):
                    admitted.append(tx)
            except LedgerError as exc:
                out.append(Admitted(tx.id, exc))
                continue
            out.append(Admitted(tx.id))
        self.gossip.on_admitted(admitted)
        if self.driver is not None:
            self.driver.offer_batch_soon()
        return out

    async def _reoffer_waiting_txs(self) -> None:
        """Every second, drop the txs that waited too long and gossip again the txs stuck in the mempool
        (see `Mempool.take_unproposed`)."""
        age_ms = 2 * self.genesis.consensus.view_timeout_ms
        while True:
            await asyncio.sleep(REOFFER_INTERVAL_S)
            now = self.clock()
            self.mempool.evict_stale(now)
            idle = now - self.last_commit_ms >= age_ms
            blocks = 0 if idle else REOFFER_AFTER_BLOCKS
            stuck = self.mempool.take_unproposed(now, self.blocks_with_room, age_ms, blocks, REOFFER_MAX_TXS)
            self.gossip.resend(stuck)

    def _is_admissible(self, tx: Tx) -> bool:
        try:
            self.admission.check(tx)
        except LedgerError:
            return False
        return True

    def suggest_valid_until(self) -> int:
        """A `valid_until` for a tx signed now: the head height plus `DEFAULT_TX_WINDOW`."""
        return self.store.height + DEFAULT_TX_WINDOW

    def find_receipt(self, tx_id: bytes) -> tuple[int, int, Receipt] | None:
        """(height, index, receipt) of a committed tx."""
        where = self.store.get_tx_location(tx_id)
        if where is None:
            return None
        receipt = self.store.get_receipt(*where)
        if receipt is None:
            raise LedgerError(f"store has tx {tx_id.hex()} at {where} but no receipt")
        return where[0], where[1], receipt

    def get_committed_tx(self, height: int, index: int) -> Tx:
        """The tx at `index` of committed block `height`."""
        block = self.store.get_block(height)
        if block is None:
            raise LedgerError(f"store has a receipt at height {height} but no block")
        return block.txs[index]

    # -- network ----------------------------------------------------------------------

    async def _on_consensus(self, envelope: Envelope) -> None:
        if self.driver is not None:
            self.driver.on_message(envelope.sender, envelope.body)

    def _on_synced(self) -> None:
        if self.driver is not None:
            self.driver.on_synced()

    async def _on_gossip(self, envelope: Envelope) -> None:
        # Txs whose signature fails are charged to the peer that sent them, as a client's to its address.
        self.submit(self.gossip.decode_batch(envelope.body), source=f"peer {envelope.sender}", from_peer=True)

    def _on_commit(self, block: Block, receipts: list[Receipt]) -> None:
        self.mempool.remove([tx.id for tx in block.txs])
        self.mempool.drop_expired(block.height + 1)
        self.last_commit_ms = self.clock()
        self.mempool.on_committed(compute_block_work(block), self.last_commit_ms)
        if has_room(block, self.genesis.consensus):
            self.blocks_with_room += 1
        self.commits.notify()
        self.webhooks.wake()
        if not self.base_height:
            self.base_height = block.height
        self.snapshots.on_commit(block.height)
        self._follow_membership()

    async def _load_snapshot(
        self, block: Block, certificate: CommitCertificate, entries: Iterator[tuple[bytes, bytes]]
    ) -> None:
        """Replace the (empty) state by a verified snapshot at `block` (state sync), and derive from it the lists
        and money per day that no block of it wrote here (`node.reindex`), before any block is synced. The
        block's own txs leave the mempool (gossip may have brought them before the snapshot): they are committed.

        Writing a large state takes seconds; it runs on a worker thread so the API keeps answering meanwhile.
        """
        header = block.header
        head = Head(header.height, block.hash(), header.state_root, header.timestamp_ms)
        mark_rebuild(self.store)
        await asyncio.to_thread(self.store.load_state, entries, head, block, certificate)
        await asyncio.to_thread(rebuild_derived, self.store)
        self.mempool.remove([tx.id for tx in block.txs])
        self.base_height = header.height
        self.snapshots.capture()
        self._follow_membership()

    def request_sync(self, height: int) -> None:
        log.info("replica asks to sync up to height %d", height)
        self.catchup.request()

    def _log_opener(self) -> Opener:
        """How the consensus log opens its file: on a node made for fault tests, failing writes while the fault
        layer says the disk is full."""
        return LogFile if self.link_faults is None else make_full_disk_opener(self.link_faults.is_disk_full)

    def status(self) -> dict[str, Any]:
        head = self.store.head()
        halted = self.driver.halted if self.driver else None
        return {
            "node_id": self.node_id,
            "chain_id": self.genesis.chain_id,
            "height": head.height if head else 0,
            "head_hash": head.block_hash.hex() if head else "",
            "state_root": head.state_root.hex() if head else "",
            "role": "validator" if self.is_validator else "follower",
            "org": self.config.org or getattr(self.genesis.identity(self.node_id), "org", ""),
            "advertise": self.config.advertised_url,
            "view": self.replica.view if self.replica else 0,
            "primary": self.replica.primary if self.replica else "",
            "view_changing": self.replica.is_view_changing if self.replica else False,
            "voting": bool(self.replica and self.replica.is_voting and not halted),
            "consensus_halted": halted,
            "last_voted_height": self.replica.last_voted_height if self.replica else 0,
            "validators": self.executor.get_validators(self.store.height + 1).ids(),
            "mempool": len(self.mempool),
            "tx_valid_until": self.suggest_valid_until(),
            "base_height": self.base_height,
            "p2p_oversized_requests": self.oversized_requests,
        }


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait until every one has ended, cancelling again any that swallowed a cancellation.

    On Python 3.11 `asyncio.wait_for` can lose a cancellation that arrives as the awaited thing completes, and
    a task loop built on it then runs on: a single cancel and an unbounded wait hung the node's shutdown.
    """
    while pending := [task for task in tasks if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=CANCEL_AGAIN_S)
