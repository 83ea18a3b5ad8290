"""The puller's own state: one SQLite file of cursors, the orders it placed, and dead letters.

Everything a page changes is written in one transaction (`save_page`): the
new cursor, what became of each of its orders (the ledger order it placed,
whether the ledger already knows it paid or cancelled, the channel's
`updated_at`), its dead letters and the channel's counts. A puller killed
before the commit re-reads the page and the ledger answers each re-sent
order with the one it placed before; killed after, it goes on from the new
cursor. So the cursor moves only past orders whose txs are committed or
dead-lettered, and nothing is lost or doubled.

The file is made readable by its owner alone: dead letters hold channel
payloads as they came, personal data included.

`orders` is also the mapping cache: an order read again unchanged (same
`updated_at`, same paid and cancelled) is not sent again. A channel order
has at most one open dead letter: the same bad order read again updates it,
and once the order goes through (read again fixed, or replayed) it is
resolved.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    poll_seconds REAL NOT NULL,
    last_pull_ms INTEGER,
    last_success_ms INTEGER,
    caught_up_ms INTEGER,
    last_error TEXT,
    last_error_ms INTEGER,
    failures INTEGER NOT NULL DEFAULT 0,
    pulled INTEGER NOT NULL DEFAULT 0,
    committed INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
    channel TEXT NOT NULL,
    channel_order_id TEXT NOT NULL,
    ledger_order_id TEXT,
    updated_at TEXT NOT NULL,
    paid INTEGER NOT NULL,
    cancelled INTEGER NOT NULL,
    PRIMARY KEY (channel, channel_order_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    channel_order_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    raw TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    replays INTEGER NOT NULL DEFAULT 0,
    resolved_ms INTEGER
);
CREATE INDEX IF NOT EXISTS open_dead_letters ON dead_letters (channel, channel_order_id) WHERE resolved_ms IS NULL;
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def now_ms() -> int:
    """Wall-clock milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def encode_raw(raw: Any) -> str:
    """A channel's order as stored in a dead letter: its JSON, amounts as the channel wrote them (a JSON number
    with a fraction, read as a `Decimal`, is kept as its exact text in a string)."""
    return json.dumps(raw, sort_keys=True, default=str)


def name_unreadable(raw: Any) -> str:
    """The id of an order whose own id cannot be read: `sha256:` and the hash of its JSON."""
    return "sha256:" + hashlib.sha256(encode_raw(raw).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class KnownOrder:
    """A channel order as the ledger now has it (a row of the mapping cache)."""

    channel_order_id: str
    ledger_order_id: str | None
    """The ledger order placed for it; None when none was (it was cancelled before it was first read)."""
    updated_at: str
    """The channel's `updated_at` last handled."""
    paid: bool
    """The ledger knows it paid."""
    cancelled: bool
    """The ledger knows it cancelled."""


@dataclass(frozen=True)
class NewDeadLetter:
    """An order that could not be sent, or that the ledger rejected."""

    channel_order_id: str
    reason: str
    """Machine-readable cause: a cleaning reason (`unknown_currency`) or the ledger's code (`unknown_sku`)."""
    message: str
    raw: str
    """The channel's payload as it sent it (JSON)."""


@dataclass(frozen=True)
class Counts:
    """What a page added to a channel's counts."""

    pulled: int = 0
    """Orders read that were new or changed."""
    committed: int = 0
    """New ledger orders committed."""
    updated: int = 0
    """Cancellations and payments committed for orders placed before."""


@dataclass(frozen=True)
class ChannelRow:
    """A channel's line of `channel status`."""

    name: str
    cursor: str
    poll_seconds: float
    last_pull_ms: int | None
    last_success_ms: int | None
    caught_up_ms: int | None
    """When the channel was last caught up: its lag is the time since."""
    last_error: str | None
    last_error_ms: int | None
    failures: int
    """Pulls failed in a row."""
    pulled: int
    committed: int
    updated: int
    dead_lettered: int
    open_dead_letters: int
    """Dead letters not resolved."""
    recent_dead_letters: int
    """Dead letters opened in the last hour."""


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as `channel deadletters` shows it."""

    id: int
    channel: str
    channel_order_id: str
    reason: str
    message: str
    raw: str
    created_ms: int
    updated_ms: int
    replays: int
    resolved_ms: int | None


class State:
    """One puller's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction (taken at once for writing); rolled back if the block raises."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def get_setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def save_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def load_cursor(self, channel: str) -> str | None:
        row = self.db.execute("SELECT cursor FROM channels WHERE name = ?", (channel,)).fetchone()
        return None if row is None else str(row[0])

    def save_channel(self, channel: str, cursor: str, poll_seconds: float) -> None:
        """Register a channel with its first cursor (once), and its current poll interval."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO channels (name, cursor, poll_seconds) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET poll_seconds = excluded.poll_seconds",
                (channel, cursor, poll_seconds),
            )

    def load_known(self, channel: str, channel_order_ids: Sequence[str]) -> dict[str, KnownOrder]:
        """The mapping cache rows of some orders of a channel."""
        found: dict[str, KnownOrder] = {}
        for order_id in channel_order_ids:
            row = self.db.execute(
                "SELECT ledger_order_id, updated_at, paid, cancelled FROM orders "
                "WHERE channel = ? AND channel_order_id = ?",
                (channel, order_id),
            ).fetchone()
            if row is not None:
                found[order_id] = KnownOrder(order_id, row[0], row[1], bool(row[2]), bool(row[3]))
        return found

    def load_open_raws(self, channel: str, channel_order_ids: Sequence[str]) -> dict[str, str]:
        """The raw payload of the open dead letter of some orders of a channel, by order id."""
        found: dict[str, str] = {}
        for order_id in channel_order_ids:
            row = self.db.execute(
                "SELECT raw FROM dead_letters WHERE channel = ? AND channel_order_id = ? AND resolved_ms IS NULL",
                (channel, order_id),
            ).fetchone()
            if row is not None:
                found[order_id] = str(row[0])
        return found

    def save_page(
        self,
        channel: str,
        cursor: str | None,
        known: Sequence[KnownOrder],
        dead: Sequence[NewDeadLetter],
        counts: Counts,
        caught_up: bool,
    ) -> None:
        """Everything one page changed, and the cursor after it (None: a replay, the cursor stays), in one
        transaction."""
        now = now_ms()
        with self.transaction() as db:
            buried = {letter.channel_order_id for letter in dead}
            for order in known:
                save_known(db, channel, order)
                if order.channel_order_id not in buried:
                    resolve_dead_letter(db, channel, order.channel_order_id, now)
            opened = sum(save_dead_letter(db, channel, letter, now) for letter in dead)
            db.execute(
                "UPDATE channels SET cursor = COALESCE(?, cursor), last_pull_ms = ?, last_success_ms = ?, "
                "failures = 0, caught_up_ms = CASE WHEN ? THEN ? ELSE caught_up_ms END, "
                "pulled = pulled + ?, committed = committed + ?, updated = updated + ?, "
                "dead_lettered = dead_lettered + ? WHERE name = ?",
                (
                    cursor,
                    now,
                    now,
                    caught_up,
                    now,
                    counts.pulled,
                    counts.committed,
                    counts.updated,
                    opened,
                    channel,
                ),
            )

    def save_failure(self, channel: str, error: str) -> None:
        """A pull that failed (the cursor stays)."""
        now = now_ms()
        with self.transaction() as db:
            db.execute(
                "UPDATE channels SET last_pull_ms = ?, last_error = ?, last_error_ms = ?, failures = failures + 1 "
                "WHERE name = ?",
                (now, error[:1000], now, channel),
            )

    def load_channels(self) -> list[ChannelRow]:
        """Every channel with its counts and open dead letters, by name."""
        hour_ago = now_ms() - 3_600_000
        rows = self.db.execute(
            "SELECT c.name, c.cursor, c.poll_seconds, c.last_pull_ms, c.last_success_ms, c.caught_up_ms, "
            "c.last_error, c.last_error_ms, c.failures, c.pulled, c.committed, c.updated, c.dead_lettered, "
            "(SELECT COUNT(*) FROM dead_letters d WHERE d.channel = c.name AND d.resolved_ms IS NULL), "
            "(SELECT COUNT(*) FROM dead_letters d WHERE d.channel = c.name AND d.resolved_ms IS NULL "
            " AND d.created_ms >= ?) FROM channels c ORDER BY c.name",
            (hour_ago,),
        ).fetchall()
        return [ChannelRow(*row) for row in rows]

    def load_dead_letters(self, *, include_resolved: bool = False) -> list[DeadLetter]:
        """The open dead letters (and the resolved ones too with `include_resolved`), oldest first."""
        where = "" if include_resolved else " WHERE resolved_ms IS NULL"
        rows = self.db.execute(
            "SELECT id, channel, channel_order_id, reason, message, raw, created_ms, updated_ms, replays, resolved_ms "
            f"FROM dead_letters{where} ORDER BY id"
        ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def load_dead_letter(self, letter_id: int) -> DeadLetter | None:
        row = self.db.execute(
            "SELECT id, channel, channel_order_id, reason, message, raw, created_ms, updated_ms, replays, resolved_ms "
            "FROM dead_letters WHERE id = ?",
            (letter_id,),
        ).fetchone()
        return None if row is None else DeadLetter(*row)

    def count_replay(self, letter_id: int) -> int:
        """Count one more replay of a dead letter (saved before it is sent); the replay's number."""
        with self.transaction() as db:
            db.execute("UPDATE dead_letters SET replays = replays + 1 WHERE id = ?", (letter_id,))
            row = db.execute("SELECT replays FROM dead_letters WHERE id = ?", (letter_id,)).fetchone()
        return int(row[0])


def save_known(db: sqlite3.Connection, channel: str, order: KnownOrder) -> None:
    """Write a mapping cache row."""
    db.execute(
        "INSERT OR REPLACE INTO orders (channel, channel_order_id, ledger_order_id, updated_at, paid, cancelled) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (channel, order.channel_order_id, order.ledger_order_id, order.updated_at, order.paid, order.cancelled),
    )


def resolve_dead_letter(db: sqlite3.Connection, channel: str, channel_order_id: str, now: int) -> None:
    """Mark the open dead letter of an order resolved (it went through)."""
    db.execute(
        "UPDATE dead_letters SET resolved_ms = ? WHERE channel = ? AND channel_order_id = ? AND resolved_ms IS NULL",
        (now, channel, channel_order_id),
    )


def save_dead_letter(db: sqlite3.Connection, channel: str, letter: NewDeadLetter, now: int) -> bool:
    """Open a dead letter, or update the open one of the same order; whether one was opened."""
    updated = db.execute(
        "UPDATE dead_letters SET reason = ?, message = ?, raw = ?, updated_ms = ? "
        "WHERE channel = ? AND channel_order_id = ? AND resolved_ms IS NULL",
        (letter.reason, letter.message[:2000], letter.raw, now, channel, letter.channel_order_id),
    )
    if updated.rowcount == 0:
        db.execute(
            "INSERT INTO dead_letters (channel, channel_order_id, reason, message, raw, created_ms, updated_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (channel, letter.channel_order_id, letter.reason, letter.message[:2000], letter.raw, now, now),
        )
    return updated.rowcount == 0
