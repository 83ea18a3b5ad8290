"""The webhook sender of a node: subscriptions made through its API, and the task that delivers their events.

One task, off the consensus path, follows the feed for every subscription
(`node.notify.outbox`), starts the attempts that are due, and sleeps until the
next is due, a block commits, or an attempt ends. Attempts run as tasks of
their own, at most `webhook_max_in_flight` at once and `PER_SUBSCRIPTION` per
subscription, each bounded in time (`node.notify.delivery`): a receiver that
hangs holds one slot for `webhook_timeout_ms`, never the node. The consensus
driver only sets an event when a block commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from typing import Any

import httpx

from ledger.errors import LedgerError
from ledger.store import Store
from node.config import NodeConfig
from node.executor import Clock
from node.feed import get_last_cursor
from node.notify.delivery import compute_signature, encode_body, make_headers, post_delivery
from node.notify.outbox import Delivery, Outbox, RetryPolicy, UnknownDelivery, parse_delivery_id
from node.notify.subscriptions import (
    MAX_PER_ORG,
    Subscription,
    SubscriptionError,
    check_events,
    check_url,
    load_subscriptions,
    make_secret,
    new_subscription_id,
    remove_subscription,
    save_subscription,
)

log = logging.getLogger(__name__)

PER_SUBSCRIPTION = 4
"""Most attempts in flight to one subscription's receiver."""

IDLE_WAIT_S = 1.0
"""Longest sleep between two looks at the feed (a commit or an ended attempt wakes the task sooner)."""

ERROR_PAUSE_S = 1.0
"""Pause after an unexpected error of the sender's loop, before it goes on."""


class UnknownSubscription(LedgerError):
    """A subscription id that is not one of the caller's organisation."""

    code = "not_found"
    http_status = 404


class Webhooks:
    """This node's subscriptions and their sender."""

    def __init__(self, store: Store, clock: Clock, config: NodeConfig, rng: random.Random | None = None) -> None:
        self.store = store
        self.clock = clock
        self.timeout_s = config.webhook_timeout_ms / 1000
        self.max_in_flight = config.webhook_max_in_flight
        policy = RetryPolicy(config.webhook_retry_base_ms, config.webhook_retry_cap_ms, config.webhook_max_attempts)
        self.outbox = Outbox(store, clock, policy, rng)
        self.outbox.load(load_subscriptions(store))
        self.failing: dict[str, int] = dict.fromkeys(self.outbox.subscriptions, 0)
        """Failed attempts in a row per subscription (0 after a delivery): what the alert rule reads."""
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    # -- subscriptions (the API's side) ----------------------------------------------------

    def subscribe(
        self, *, org: str, sees_all: bool, identity: str, url: str, events: list[str], secret: str | None
    ) -> Subscription:
        """Make a subscription of `org` that receives the events after the newest one of the feed now."""
        if sum(1 for s in self.outbox.subscriptions.values() if s["org"] == org) >= MAX_PER_ORG:
            raise SubscriptionError(f"an organisation has at most {MAX_PER_ORG} subscriptions on a node")
        subscription: Subscription = {
            "id": new_subscription_id(),
            "org": org,
            "sees_all": sees_all,
            "url": check_url(url),
            "events": check_events(events),
            "secret": make_secret(secret),
            "created_ms": self.clock(),
            "created_by": identity,
            "start_cursor": get_last_cursor(self.store),
        }
        save_subscription(self.store, subscription)
        self.outbox.add(subscription)
        self.failing[subscription["id"]] = 0
        self.wake()
        return subscription

    def list_subscriptions(self, org: str) -> list[Subscription]:
        return [s for s in self.outbox.subscriptions.values() if s["org"] == org]

    def get_subscription(self, org: str, subscription_id: str) -> Subscription:
        """The subscription of `org` with this id; `UnknownSubscription` (404) for any other, so an organisation
        cannot tell another's ids from ids that do not exist."""
        subscription = self.outbox.subscriptions.get(subscription_id)
        if subscription is None or subscription["org"] != org:
            raise UnknownSubscription(f"no subscription {subscription_id!r}")
        return subscription

    def unsubscribe(self, org: str, subscription_id: str) -> Subscription:
        subscription = self.get_subscription(org, subscription_id)
        remove_subscription(self.store, subscription_id)
        self.outbox.remove(subscription_id)
        self.failing.pop(subscription_id, None)
        for delivery_id, task in self._in_flight.items():
            if delivery_id.startswith(subscription_id + "-"):
                task.cancel()
        return subscription

    def list_deliveries(self, org: str, subscription_id: str | None, failed: bool, limit: int) -> list[Delivery]:
        if subscription_id is not None:
            ids = [self.get_subscription(org, subscription_id)["id"]]
        else:
            ids = [s["id"] for s in self.list_subscriptions(org)]
        return self.outbox.list_deliveries(ids, failed, limit)

    def replay(self, org: str, delivery_id: str) -> Delivery:
        subscription_id, _ = parse_delivery_id(delivery_id)
        subscription = self.outbox.subscriptions.get(subscription_id)
        if subscription is None or subscription["org"] != org:
            raise UnknownDelivery(f"no delivery {delivery_id!r}")
        delivery = self.outbox.replay(delivery_id)
        self.wake()
        return delivery

    # -- sending ---------------------------------------------------------------------------

    def wake(self, *_: Any) -> None:
        """Look at the feed and the due deliveries now (a commit listener)."""
        self._wake.set()

    @property
    def pending(self) -> int:
        return sum(len(pending) for pending in self.outbox.pending.values())

    async def run(self) -> None:
        """Deliver, until cancelled."""
        limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False, limits=limits) as client:
            try:
                while True:
                    try:
                        wait_s = self._step(client)
                    except LedgerError as exc:
                        log.error("webhooks: %s", exc)
                        wait_s = ERROR_PAUSE_S
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait_s)
            finally:
                for task in self._in_flight.values():
                    task.cancel()
                await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    def _step(self, client: httpx.AsyncClient) -> float:
        """Follow the feed, start what is due; how long to sleep."""
        self._wake.clear()
        now = self.clock()
        in_flight = set(self._in_flight)
        for subscription_id in list(self.outbox.subscriptions):
            self.outbox.follow(subscription_id)
            mine = sum(1 for d in in_flight if d.startswith(subscription_id + "-"))
            room = min(PER_SUBSCRIPTION - mine, self.max_in_flight - len(self._in_flight))
            if room <= 0:
                continue
            for delivery in self.outbox.find_ready(subscription_id, now, in_flight, room):
                task = asyncio.create_task(self._attempt(client, delivery))
                self._in_flight[delivery["id"]] = task
                task.add_done_callback(functools.partial(self._on_done, delivery["id"]))
        due = self.outbox.next_due_ms(set(self._in_flight))
        if due is None:
            return IDLE_WAIT_S
        return min(max((due - self.clock()) / 1000, 0.0), IDLE_WAIT_S)

    def _on_done(self, delivery_id: str, _: asyncio.Task[None]) -> None:
        self._in_flight.pop(delivery_id, None)
        self._wake.set()

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        subscription = self.outbox.subscriptions.get(delivery["subscription"])
        if subscription is None:
            return
        try:
            body = encode_body(self.outbox.read_body(delivery))
        except LedgerError as exc:
            log.error("webhooks: %s", exc)
            self.outbox.on_failed(delivery, None, str(exc))
            return
        signature = compute_signature(subscription["secret"], self.clock() // 1000, body)
        headers = make_headers(delivery["type"], delivery["id"], signature)
        attempt = await post_delivery(
            client, url=subscription["url"], body=body, headers=headers, timeout_s=self.timeout_s
        )
        sid = subscription["id"]
        if attempt.ok and attempt.status is not None:
            self.outbox.on_delivered(delivery, attempt.status)
            self.failing[sid] = 0
            return
        now = self.outbox.on_failed(delivery, attempt.status, attempt.error)
        if now is None:
            return
        self.failing[sid] = self.failing.get(sid, 0) + 1
        if now["status"] == "dead":
            log.warning(
                "webhook delivery %s to %s is dead after %d attempts: %s",
                delivery["id"],
                subscription["url"],
                now["attempts"],
                attempt.error,
            )
        else:
            log.info("webhook delivery %s attempt %d failed: %s", delivery["id"], now["attempts"], attempt.error)
