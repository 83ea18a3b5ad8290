"""The webhook outbox: what each subscription still has to be sent, what was sent, and what could not be.

Each subscription follows the change feed from its own cursor. Following it
copies each event the subscription wants into a pending delivery, and moves
the cursor past it, in one write to this node's own part of the store: a
node stopped at any point restarts with every event either pending or not
yet read, never lost. A delivery names its event by cursor (the body is
read from the feed when it is sent, the same bytes on every attempt) and has
an id that every attempt and every restart repeats, `<subscription>-<cursor>`:
the receiver's idempotency key.

    wh/c/<subscription>                    -> the cursor the subscription has read to
    wh/p/<subscription>\\0<cursor:8>        -> Delivery, pending (waiting, or retrying after a failure)
    wh/d/<subscription>\\0<cursor:8>        -> Delivery, delivered (the latest `KEEP_DELIVERED` kept)
    wh/x/<subscription>\\0<cursor:8>        -> Delivery, dead after its last attempt (the latest `KEEP_DEAD`)

Order per order: deliveries that share an ordering key (the order, else the
transfer, else the location and SKU, else the event type) go one at a time, in
feed order; a later one waits while an earlier one is pending, retrying
included, until it is delivered or dead. A subscription holds at most
`MAX_PENDING` pending deliveries: past that its cursor waits, so a receiver
that is down costs a bounded amount of memory and disk however long the feed
grows. A failed attempt is tried again after a delay that triples from
`retry_base_ms` up to `retry_cap_ms`, times a random factor in [0.8, 1.2]
(jitter, so the retries of many deliveries do not arrive together); after
`max_attempts` the delivery is dead, kept, listed, and sent again on request
(`replay`).

The outbox's writes do not wait for the disk (the node's event loop, which
also runs consensus, is not held by an fsync per delivery): a crash may lose
the latest of them, each batch whole or not at all, which only sends again
what was sent (a delivery recorded as delivered comes back pending) or reads
the feed again from an earlier cursor (events copied come back unread, to be
copied again with the same ids). Nothing is lost: the feed they come from is
written with the blocks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from ledger.encoding import decode, encode
from ledger.errors import LedgerError
from ledger.store import Store
from node.executor import Clock
from node.feed import read_event, read_events
from node.notify.subscriptions import Subscription

MAX_PENDING = 1000
"""Most pending deliveries of one subscription; its cursor waits past that."""

KEEP_DELIVERED = 1000
"""Delivered deliveries kept per subscription (for `webhook deliveries`), newest first."""

KEEP_DEAD = 10_000
"""Dead deliveries kept per subscription until replayed, newest first."""

MAX_ERROR_LENGTH = 200
"""Longest error text kept with a failed attempt."""

FEED_SCAN = 5000
"""Most feed entries one follow step reads (a subscription of few types in a busy feed moves on anyway)."""

_CURSOR = b"wh/c/"
_PENDING = b"wh/p/"
_DELIVERED = b"wh/d/"
_DEAD = b"wh/x/"

DeliveryStatus = Literal["pending", "delivered", "dead"]


class Delivery(TypedDict):
    """One event to send to one subscription, and how sending it went."""

    id: str
    """`<subscription>-<cursor>`: the same on every attempt (the `X-OMS-Delivery` header)."""
    subscription: str
    cursor: int
    type: str
    ordering_key: str
    status: DeliveryStatus
    attempts: int
    """Attempts made so far."""
    due_ms: int
    """When the next attempt may start (pending)."""
    created_ms: int
    last_status: int | None
    """The receiver's HTTP status of the last attempt (None: no answer)."""
    last_error: str
    done_ms: int | None
    """When it was delivered or given up."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a delivery is tried."""

    base_ms: int
    """Delay after the first failure; each further failure triples it."""
    cap_ms: int
    """Longest delay between two attempts."""
    max_attempts: int
    """Attempts before a delivery is dead."""

    def compute_delay_ms(self, failures: int, rng: random.Random) -> int:
        """Delay before the next attempt after `failures` failed ones, with jitter."""
        delay = min(self.base_ms * 3 ** (failures - 1), self.cap_ms)
        return int(delay * rng.uniform(0.8, 1.2))


class UnknownDelivery(LedgerError):
    """A delivery id that names no delivery of the caller's subscriptions."""

    code = "not_found"
    http_status = 404


class DeliveryPending(LedgerError):
    """A replay of a delivery that is pending already."""

    code = "conflict"
    http_status = 409


def compute_ordering_key(event: dict[str, Any]) -> str:
    """What the deliveries of `event` are ordered with: its order, else its transfer, else its stock record,
    else its type."""
    data = event["data"]
    if data.get("order_id"):
        return f"order/{data['order_id']}"
    if data.get("transfer_id"):
        return f"transfer/{data['transfer_id']}"
    if data.get("location") and data.get("sku"):
        return f"stock/{data['location']}/{data['sku']}"
    return f"type/{event['type']}"


def parse_delivery_id(delivery_id: str) -> tuple[str, int]:
    """(subscription id, cursor) of a delivery id; `NotFound` if it cannot be one."""
    subscription, _, cursor = delivery_id.rpartition("-")
    if not subscription or not cursor.isdigit() or len(cursor) > 20:
        raise UnknownDelivery(f"no delivery {delivery_id!r}")
    return subscription, int(cursor)


def _cursor_key(subscription: str) -> bytes:
    return _CURSOR + subscription.encode()


def _prefix(space: bytes, subscription: str) -> bytes:
    return space + subscription.encode() + b"\x00"


def _key(space: bytes, subscription: str, cursor: int) -> bytes:
    return _prefix(space, subscription) + cursor.to_bytes(8, "big")


class Outbox:
    """The subscriptions of this node and their deliveries, in memory and in the store."""

    def __init__(self, store: Store, clock: Clock, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.rng = rng or random.Random()
        self.subscriptions: dict[str, Subscription] = {}
        self.cursors: dict[str, int] = {}
        self.pending: dict[str, dict[int, Delivery]] = {}
        """Pending deliveries per subscription, by cursor (inserted in cursor order)."""
        self._kept: dict[tuple[bytes, str], int] = {}
        """How many delivered and dead records each subscription keeps."""
        self.delivered = 0
        """Deliveries the receivers accepted, since start."""
        self.failed = 0
        """Failed attempts (error statuses, timeouts, refused connections), since start."""
        self.dead = 0
        """Deliveries given up after their last attempt, since start."""

    def load(self, subscriptions: list[Subscription]) -> None:
        """Take up the subscriptions kept in the store, with their cursors and pending deliveries."""
        for subscription in subscriptions:
            self._take(subscription)

    def _take(self, subscription: Subscription) -> None:
        sid = subscription["id"]
        self.subscriptions[sid] = subscription
        raw = self.store.get_local(_cursor_key(sid))
        self.cursors[sid] = subscription["start_cursor"] if raw is None else int(decode(raw))
        prefix = _prefix(_PENDING, sid)
        self.pending[sid] = {}
        for _, value in self.store.scan_local(prefix, prefix + b"\xff"):
            delivery: Delivery = decode(value)
            self.pending[sid][delivery["cursor"]] = delivery
        for space in (_DELIVERED, _DEAD):
            prefix = _prefix(space, sid)
            self._kept[(space, sid)] = sum(1 for _ in self.store.scan_local(prefix, prefix + b"\xff"))

    def add(self, subscription: Subscription) -> None:
        """Start a new subscription (already saved) at its start cursor."""
        self.store.write_local({_cursor_key(subscription["id"]): encode(subscription["start_cursor"])}, sync=False)
        self._take(subscription)

    def remove(self, subscription_id: str) -> None:
        """Forget a subscription's cursor and deliveries (the subscription record is the caller's)."""
        self.subscriptions.pop(subscription_id, None)
        self.cursors.pop(subscription_id, None)
        self.pending.pop(subscription_id, None)
        forget: dict[bytes, bytes | None] = {_cursor_key(subscription_id): None}
        for space in (_PENDING, _DELIVERED, _DEAD):
            self._kept.pop((space, subscription_id), None)
            prefix = _prefix(space, subscription_id)
            forget.update((key, None) for key, _ in self.store.scan_local(prefix, prefix + b"\xff"))
        self.store.write_local(forget, sync=False)

    # -- following the feed ---------------------------------------------------------

    def follow(self, subscription_id: str) -> int:
        """Copy the subscription's next events of the feed into pending deliveries (as many as room allows);
        the number copied."""
        subscription = self.subscriptions[subscription_id]
        pending = self.pending[subscription_id]
        room = MAX_PENDING - len(pending)
        if room <= 0:
            return 0
        after = self.cursors[subscription_id]
        org = None if subscription["sees_all"] else subscription["org"]
        events, last = read_events(self.store, org, after, room, frozenset(subscription["events"]), FEED_SCAN)
        if last == after:
            return 0
        now = self.clock()
        writes: dict[bytes, bytes | None] = {_cursor_key(subscription_id): encode(last)}
        made = []
        for event in events:
            cursor = int(event["cursor"])
            delivery: Delivery = {
                "id": f"{subscription_id}-{cursor}",
                "subscription": subscription_id,
                "cursor": cursor,
                "type": event["type"],
                "ordering_key": compute_ordering_key(event),
                "status": "pending",
                "attempts": 0,
                "due_ms": now,
                "created_ms": now,
                "last_status": None,
                "last_error": "",
                "done_ms": None,
            }
            writes[_key(_PENDING, subscription_id, cursor)] = encode(dict(delivery))
            made.append(delivery)
        self.store.write_local(writes, sync=False)
        self.cursors[subscription_id] = last
        for delivery in made:
            pending[delivery["cursor"]] = delivery
        return len(made)

    # -- sending ----------------------------------------------------------------------

    def find_ready(self, subscription_id: str, now: int, in_flight: set[str], limit: int) -> list[Delivery]:
        """Up to `limit` pending deliveries of the subscription that may be attempted now: due, not in flight,
        and first of their ordering key among the pending ones."""
        ready: list[Delivery] = []
        held: set[str] = set()
        for delivery in self.pending.get(subscription_id, {}).values():
            if len(ready) >= limit:
                break
            key = delivery["ordering_key"]
            if key in held:
                continue
            held.add(key)
            if delivery["id"] not in in_flight and delivery["due_ms"] <= now:
                ready.append(delivery)
        return ready

    def next_due_ms(self, in_flight: set[str]) -> int | None:
        """The earliest time a delivery not in flight, and first of its ordering key, may be attempted (None if
        there is none)."""
        due = None
        for pending in self.pending.values():
            held: set[str] = set()
            for delivery in pending.values():
                key = delivery["ordering_key"]
                if key in held:
                    continue
                held.add(key)
                if delivery["id"] not in in_flight and (due is None or delivery["due_ms"] < due):
                    due = delivery["due_ms"]
        return due

    def read_body(self, delivery: Delivery) -> dict[str, Any]:
        """The event a delivery sends, as `/v1/events` shows it."""
        event = read_event(self.store, delivery["cursor"])
        if event is None:
            raise LedgerError(f"delivery {delivery['id']} names event {delivery['cursor']}, which the feed lacks")
        return event

    def on_delivered(self, delivery: Delivery, status: int) -> None:
        """The receiver accepted the delivery."""
        if self._pop_pending(delivery) is None:
            return
        self.delivered += 1
        done: Delivery = {
            **delivery,
            "status": "delivered",
            "attempts": delivery["attempts"] + 1,
            "last_status": status,
            "done_ms": self.clock(),
        }
        self._finish(done, _DELIVERED, KEEP_DELIVERED)

    def on_failed(self, delivery: Delivery, status: int | None, error: str) -> Delivery | None:
        """An attempt failed: schedule the next one, or give the delivery up after the last; the delivery as it
        now stands (None if it was removed meanwhile)."""
        if (
            delivery["subscription"] not in self.pending
            or delivery["cursor"] not in self.pending[delivery["subscription"]]
        ):
            return None
        self.failed += 1
        attempts = delivery["attempts"] + 1
        now = self.clock()
        updated: Delivery = {
            **delivery,
            "attempts": attempts,
            "last_status": status,
            "last_error": error[:MAX_ERROR_LENGTH],
        }
        if attempts >= self.policy.max_attempts:
            self._pop_pending(delivery)
            self.dead += 1
            dead: Delivery = {**updated, "status": "dead", "done_ms": now}
            self._finish(dead, _DEAD, KEEP_DEAD)
            return dead
        updated["due_ms"] = now + self.policy.compute_delay_ms(attempts, self.rng)
        self.pending[delivery["subscription"]][delivery["cursor"]] = updated
        self.store.write_local(
            {_key(_PENDING, delivery["subscription"], delivery["cursor"]): encode(dict(updated))}, sync=False
        )
        return updated

    def _pop_pending(self, delivery: Delivery) -> Delivery | None:
        pending = self.pending.get(delivery["subscription"])
        return None if pending is None else pending.pop(delivery["cursor"], None)

    def _finish(self, done: Delivery, space: bytes, keep: int) -> None:
        """Move a delivery from pending to `space` (one write), dropping the oldest record past `keep`."""
        sid, cursor = done["subscription"], done["cursor"]
        writes: dict[bytes, bytes | None] = {
            _key(_PENDING, sid, cursor): None,
            _key(space, sid, cursor): encode(dict(done)),
        }
        kept = self._kept.get((space, sid), 0) + 1
        if kept > keep:
            prefix = _prefix(space, sid)
            for key, _ in self.store.scan_local(prefix, prefix + b"\xff"):
                writes[key] = None
                kept -= 1
                break
        self._kept[(space, sid)] = kept
        self.store.write_local(writes, sync=False)

    # -- reading and replaying --------------------------------------------------------

    def list_deliveries(self, subscription_ids: list[str], failed: bool, limit: int) -> list[Delivery]:
        """The newest deliveries of the subscriptions, pending first, then dead, then delivered (only those that
        failed at least once with `failed`), each group newest first, at most `limit`."""
        found: list[Delivery] = []
        for sid in subscription_ids:
            pending = sorted(self.pending.get(sid, {}).values(), key=lambda d: -d["cursor"])
            found.extend(d for d in pending if not failed or d["attempts"] > 0)
            found.extend(self._scan_newest(_DEAD, sid, limit))
            if not failed:
                found.extend(self._scan_newest(_DELIVERED, sid, limit))
        return found[:limit]

    def _scan_newest(self, space: bytes, subscription_id: str, limit: int) -> Iterator[Delivery]:
        prefix = _prefix(space, subscription_id)
        records = [decode(value) for _, value in self.store.scan_local(prefix, prefix + b"\xff")]
        yield from reversed(records[-limit:])

    def find(self, delivery_id: str) -> Delivery | None:
        """A delivery, pending, dead or delivered (None if none has this id)."""
        sid, cursor = parse_delivery_id(delivery_id)
        if sid not in self.subscriptions:
            return None
        if cursor in self.pending[sid]:
            return self.pending[sid][cursor]
        for space in (_DEAD, _DELIVERED):
            raw = self.store.get_local(_key(space, sid, cursor))
            if raw is not None:
                found: Delivery = decode(raw)
                return found
        return None

    def replay(self, delivery_id: str) -> Delivery:
        """Send a dead (or delivered) delivery again, now, with the same id and a fresh count of attempts."""
        delivery = self.find(delivery_id)
        if delivery is None:
            raise UnknownDelivery(f"no delivery {delivery_id!r}")
        if delivery["status"] == "pending":
            raise DeliveryPending(
                f"delivery {delivery_id} is pending already (attempt {delivery['attempts'] + 1} is next)"
            )
        sid, cursor = delivery["subscription"], delivery["cursor"]
        space = _DEAD if delivery["status"] == "dead" else _DELIVERED
        again: Delivery = {**delivery, "status": "pending", "attempts": 0, "due_ms": self.clock(), "done_ms": None}
        self.store.write_local(
            {_key(space, sid, cursor): None, _key(_PENDING, sid, cursor): encode(dict(again))}, sync=False
        )
        self._kept[(space, sid)] = max(self._kept.get((space, sid), 1) - 1, 0)
        pending = self.pending[sid]
        pending[cursor] = again
        self.pending[sid] = dict(sorted(pending.items()))
        return again
