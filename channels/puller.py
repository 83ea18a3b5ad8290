"""One channel's puller: a page in, its orders sent, its outcome and the next cursor saved at once.

`pull_page` fetches the page after the saved cursor, maps every order
(`Unfit`: a dead letter), skips those the mapping cache has seen unchanged,
places the new ones in one import, finds in the ledger a cancelled order it
may have placed before a crash, sends the cancellations and payments, and
saves it all with the new cursor in one transaction (`State.save_page`). A
`ChannelError` or `NodeUnavailable` leaves the cursor where it was.

An order read again exactly as it lies in an open dead letter (the last
instant of a walk is read again) is skipped, as the cache skips an order
read again unchanged. `replay` sends one dead letter's order again, with
the channel's config as it is now (a SKU mapping added), outside any page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from channels.adapters import Adapter
from channels.cleaning import clean_order, make_external_ref
from channels.config import ChannelConfig, parse_since
from channels.records import ChannelOrder, Page, Unfit
from channels.sending import Refused, Sender, Update
from channels.state import Counts, KnownOrder, NewDeadLetter, State, encode_raw, name_unreadable

Log = Callable[..., None]
"""`log(event, **fields)`: one line of the puller's JSON log."""


@dataclass
class Batch:
    """What a page (or a replay) decided so far."""

    known: dict[str, KnownOrder] = field(default_factory=dict)
    """The mapping cache rows to save, by channel order id."""
    dead: list[NewDeadLetter] = field(default_factory=list)
    pulled: int = 0
    """Orders read that were new or changed."""
    committed: int = 0
    """New ledger orders."""
    updated: int = 0
    """Cancellations and payments committed."""

    def bury(self, order_id: str, raw: Any, reason: str, message: str) -> None:
        """Put a channel order in the dead letters."""
        self.dead.append(NewDeadLetter(order_id, reason, message, encode_raw(raw)))


@dataclass
class Step:
    """A cancellation or payment an order calls for, as it goes."""

    raw: Any
    order: ChannelOrder
    kind: Literal["cancel", "pay"]
    update: Update | None = None
    """What to send (None: nothing, e.g. nothing is due any more)."""
    refusal: Refused | None = None


class Puller:
    """Pulls one channel into the ledger."""

    def __init__(
        self, config: ChannelConfig, adapter: Adapter, state: State, sender: Sender, log: Log, customer_key: bytes
    ) -> None:
        self.config = config
        self.customer_key = customer_key
        """The organisation's secret that customer references are hashed with."""
        self.adapter = adapter
        self.state = state
        self.sender = sender
        self.log = log

    def load_cursor(self) -> str:
        """The saved cursor, or the first one of a new channel (`since`)."""
        cursor = self.state.load_cursor(self.config.name)
        if cursor is None:
            cursor = self.adapter.start_cursor(parse_since(self.config.since, datetime.now(UTC)))
        self.state.save_channel(self.config.name, cursor, self.config.poll_seconds)
        return self.state.load_cursor(self.config.name) or cursor

    def pull_page(self) -> Page:
        """Pull, send and save one page; the page (`caught_up` says whether more is waiting)."""
        page = self.adapter.fetch(self.load_cursor())
        batch = self.send_orders(page.orders, attempt=0)
        counts = Counts(pulled=batch.pulled, committed=batch.committed, updated=batch.updated)
        self.state.save_page(
            self.config.name, page.cursor, list(batch.known.values()), batch.dead, counts, page.caught_up
        )
        self.adapter.finish(page.cursor)
        for letter in batch.dead:
            self.log("dead_letter", level="warning", order=letter.channel_order_id, reason=letter.reason)
        self.log(
            "page",
            orders=len(page.orders),
            pulled=batch.pulled,
            committed=batch.committed,
            updated=batch.updated,
            dead_lettered=len(batch.dead),
            caught_up=page.caught_up,
        )
        return page

    def replay(self, letter_id: int, raw_text: str) -> Batch:
        """Send one dead letter's order again; what became of it is saved (its dead letter resolved if it went
        through, updated if not)."""
        attempt = self.state.count_replay(letter_id)
        self.load_cursor()
        batch = self.send_orders([json.loads(raw_text)], attempt=attempt)
        batch.pulled = 0
        self.save(batch, None, caught_up=False)
        return batch

    def save(self, batch: Batch, cursor: str | None, caught_up: bool) -> None:
        """Save what a batch decided, with the cursor after it (None: the cursor stays)."""
        counts = Counts(pulled=batch.pulled, committed=batch.committed, updated=batch.updated)
        self.state.save_page(self.config.name, cursor, list(batch.known.values()), batch.dead, counts, caught_up)

    def map_all(self, raws: Sequence[Any], batch: Batch) -> list[tuple[Any, ChannelOrder]]:
        """The orders an adapter can map; the others buried."""
        mapped = []
        for raw in raws:
            try:
                mapped.append((raw, self.adapter.map_order(raw)))
            except Unfit as unfit:
                batch.bury(name_raw(raw), raw, unfit.reason, unfit.message)
                batch.pulled += 1
        return mapped

    def drop_buried(self, raws: Sequence[Any]) -> list[Any]:
        """The orders of a page less those read again exactly as they lie in an open dead letter."""
        buried = self.state.load_open_raws(self.config.name, [name_raw(raw) for raw in raws])
        return [raw for raw in raws if buried.get(name_raw(raw)) != encode_raw(raw)]

    def send_orders(self, raws: Sequence[Any], attempt: int) -> Batch:
        """Map, place and update the orders of a page (`attempt` > 0: a replay, sent whatever the cache says)."""
        batch = Batch()
        mapped = self.map_all(raws if attempt else self.drop_buried(raws), batch)
        cache = self.state.load_known(self.config.name, [order.order_id for _, order in mapped])
        fresh: list[tuple[Any, ChannelOrder, dict[str, Any]]] = []
        changed: list[tuple[Any, ChannelOrder]] = []
        for raw, order in mapped:
            prior = batch.known.get(order.order_id) or cache.get(order.order_id)
            if attempt == 0 and prior is not None and is_unchanged(prior, order):
                continue
            batch.pulled += 1
            if prior is None and order.cancelled:
                prior = self.find_placed(order)
            if prior is not None and prior.ledger_order_id is not None:
                batch.known[order.order_id] = prior
                changed.append((raw, order))
            elif order.cancelled:
                batch.known[order.order_id] = KnownOrder(order.order_id, None, order.updated_at, False, True)
            else:
                try:
                    fresh.append((raw, order, clean_order(self.config, order, self.customer_key)))
                except Unfit as unfit:
                    batch.bury(order.order_id, raw, unfit.reason, unfit.message)
        changed.extend(self.place(fresh, batch, attempt))
        self.update(changed, batch, attempt)
        return batch

    def place(
        self, fresh: list[tuple[Any, ChannelOrder, dict[str, Any]]], batch: Batch, attempt: int
    ) -> list[tuple[Any, ChannelOrder]]:
        """Place new orders; those placed (their payment may be still to send)."""
        placed = []
        results = self.sender.place([payload for _, _, payload in fresh], attempt) if fresh else []
        for (raw, order, _), result in zip(fresh, results, strict=True):
            if isinstance(result, Refused):
                batch.bury(order.order_id, raw, result.reason, result.message)
                continue
            batch.committed += 1
            batch.known[order.order_id] = KnownOrder(order.order_id, result.order_id, order.updated_at, False, False)
            placed.append((raw, order))
        return placed

    def find_placed(self, order: ChannelOrder) -> KnownOrder | None:
        """The ledger order of a channel order the cache does not know, if it was placed before a crash."""
        found = self.sender.find(self.make_ref(order))
        return None if found is None else KnownOrder(order.order_id, found, "", paid=False, cancelled=False)

    def update(self, orders: list[tuple[Any, ChannelOrder]], batch: Batch, attempt: int) -> None:
        """Send the cancellations and payments the channel's orders call for; remember what the ledger now knows."""
        steps = []
        for raw, order in orders:
            known = replace(batch.known[order.order_id], updated_at=order.updated_at)
            batch.known[order.order_id] = known
            ref = make_external_ref(self.config.name, order.order_id)
            if known.ledger_order_id is None:
                continue
            if order.cancelled and not known.cancelled:
                steps.append(
                    Step(raw, order, "cancel", self.sender.prepare_cancel(known.ledger_order_id, ref, attempt))
                )
            elif order.paid and not known.paid and not known.cancelled:
                steps.append(Step(raw, order, "pay"))
        pays = [step for step in steps if step.kind == "pay"]
        wanted = [(str(batch.known[s.order.order_id].ledger_order_id), self.make_ref(s.order)) for s in pays]
        for step, prepared in zip(pays, self.sender.prepare_pays(wanted, attempt), strict=True):
            if isinstance(prepared, Refused):
                step.refusal = prepared
            else:
                step.update = prepared
        sendable = [step for step in steps if step.update is not None and step.refusal is None]
        refusals = self.sender.apply([step.update for step in sendable if step.update is not None]) if sendable else []
        for step, refusal in zip(sendable, refusals, strict=True):
            step.refusal = refusal
        for step in steps:
            if step.refusal is not None:
                batch.bury(step.order.order_id, step.raw, step.refusal.reason, f"{step.kind}: {step.refusal.message}")
                continue
            batch.updated += step.update is not None
            known = batch.known[step.order.order_id]
            done = replace(known, paid=True) if step.kind == "pay" else replace(known, cancelled=True)
            batch.known[step.order.order_id] = done

    def make_ref(self, order: ChannelOrder) -> str:
        """The order's external reference in the ledger."""
        return make_external_ref(self.config.name, order.order_id)


def name_raw(raw: Any) -> str:
    """A channel order's id as its dead letter names it: its own `id`, or a hash of it when it has none."""
    order_id = raw.get("id") if isinstance(raw, dict) else None
    return (str(order_id) if isinstance(order_id, int | str) and str(order_id) else name_unreadable(raw))[:200]


def is_unchanged(prior: KnownOrder, order: ChannelOrder) -> bool:
    """The cache has seen this order as it is (nothing to send)."""
    return (
        prior.updated_at == order.updated_at
        and (prior.cancelled or not order.cancelled)
        and (prior.paid or prior.cancelled or not order.paid)
    )
