"""Sending channel orders and their updates to a node, through its public API only.

- New orders go a page at a time as `POST /v1/orders/import?wait=commit`
  (each order its own `order.create` tx, one answer each), with an
  `Idempotency-Key` derived from the orders sent, so a re-send after a crash
  is the very same txs; and the ledger answers a re-sent external reference
  with the order it placed before (`duplicate`), whatever the key. If the
  node refuses the whole list (one order it will not take), each order is
  sent on its own (`POST /v1/orders`) so only that one is dead-lettered.
- A cancellation in the channel is `POST /v1/orders/{id}/cancel` (the ledger
  cancels what has not shipped); an order the ledger has cancelled already
  counts as done. A payment is `POST /v1/orders/{id}/pay` of what the ledger
  says is due, with the reference `<external ref>:paid`, which the ledger
  takes once per order. A page's updates are all sent first and then each
  asked again with `?wait=commit` (the same key: the same tx), `WORKERS` at
  a time, so they share the wait for their blocks.

What the ledger refuses for good (a committed tx with a rejected receipt, a
4xx for the request) is a `Refused` with the reason: a dead letter. What
says nothing about the order (the node unreachable, busy, failing, the token
refused, a tx not committed in time, a full mempool) is `NodeUnavailable`:
the page is not saved and is sent again at the next poll.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from channels.records import Unfit
from omsclient import Client, NodeError

MAX_IMPORT = 500
"""Most orders the node takes in one import."""

WORKERS = 8
"""Updates (and the reads they need) in flight at once: each waits on the node, not on this process."""

BUSY = frozenset({"mempool_full", "signer_over_quota", "signature_checks_exhausted"})
"""Refusals that say only that the node is busy now."""


class Refused(Unfit):
    """The ledger refused an order or an update: as an unfit order, it goes to the dead letters with `reason`
    (the ledger's code, such as `unknown_sku`)."""


class NodeUnavailable(Exception):
    """The node cannot take the page now (nothing is decided about its orders)."""


@dataclass(frozen=True)
class Placed:
    """The ledger order of a channel order: placed now, or found placed before."""

    order_id: str
    duplicate: bool
    """The ledger had placed it before (re-sent after a crash, or placed by a replay)."""


@dataclass(frozen=True)
class Update:
    """A cancellation or payment to send for an order placed before."""

    path: str
    body: dict[str, Any]
    key: str


def derive_key(*parts: str) -> str:
    """An idempotency key: the same parts give the same key."""
    return "channel-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:48]


def split_reason(reason: str | None) -> Refused:
    """A `code: message` reason of the node as a `Refused`."""
    code, _, message = (reason or "rejected").partition(": ")
    return Refused(code, message or code)


class Sender:
    """The node's API, as a puller uses it."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="sender")

    def call(self, method: str, path: str, **options: Any) -> Any:
        """A request whose failures are `Refused` (a 4xx about it) or `NodeUnavailable` (anything else)."""
        try:
            return self.client.request(method, path, **options)
        except NodeError as exc:
            if exc.status in (401, 403, 408, 429) or exc.status >= 500:
                raise NodeUnavailable(f"HTTP {exc.status} {exc.code}: {exc.message}") from exc
            raise Refused(exc.code or f"http_{exc.status}", exc.message) from exc
        except (httpx.HTTPError, OSError) as exc:
            raise NodeUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def write(self, path: str, body: dict[str, Any], key: str, wait: str | None = "commit") -> dict[str, Any]:
        """POST a write (waiting for its commit): its receipt's result; `Refused` if it was rejected."""
        answer = self.call("POST", path, json=body, idempotency_key=key, wait=wait)
        if answer.get("status") == "rejected":
            raise split_reason(answer.get("reason"))
        if answer.get("status") == "committed":
            return dict(answer["receipt"]["result"])
        if wait is None:
            return {}
        raise NodeUnavailable(f"tx {answer.get('tx_id')} is {answer.get('status')} after the commit wait")

    def place(self, payloads: Sequence[dict[str, Any]], attempt: int = 0) -> list[Placed | Refused]:
        """Place the orders of some `order.create` payloads; per order, its ledger order or the refusal.
        `attempt` > 0 is a dead letter's replay: a new key, so the ledger decides again."""
        results: list[Placed | Refused] = []
        for start in range(0, len(payloads), MAX_IMPORT):
            chunk = list(payloads[start : start + MAX_IMPORT])
            key = derive_key("import", json.dumps(chunk, sort_keys=True), str(attempt))
            try:
                answer = self.call("POST", "/v1/orders/import", json=chunk, idempotency_key=key, wait="commit")
            except Refused:
                results.extend(self.place_one(payload, attempt) for payload in chunk)
                continue
            results.extend(read_import_item(item) for item in answer["items"])
        return results

    def place_one(self, payload: dict[str, Any], attempt: int) -> Placed | Refused:
        """Place one order on its own (`POST /v1/orders`)."""
        key = derive_key("create", json.dumps(payload, sort_keys=True), str(attempt))
        try:
            result = self.write("/v1/orders", payload, key)
        except Refused as refusal:
            return refusal
        return Placed(order_id=str(result["order_id"]), duplicate=bool(result.get("duplicate")))

    def find(self, external_ref: str) -> str | None:
        """The ledger order the token's channel placed with `external_ref`, if any."""
        try:
            page = self.call("GET", "/v1/orders", params={"external_ref": external_ref})
        except Refused as refusal:
            raise NodeUnavailable(f"cannot look up {external_ref!r}: {refusal}") from refusal
        items = page.get("items") or []
        return str(items[0]["order_id"]) if items else None

    def prepare_cancel(self, order_id: str, external_ref: str, attempt: int = 0) -> Update:
        """The cancellation of what has not shipped of an order the channel cancelled."""
        body = {"reason": "cancelled in the channel"}
        return Update(f"/v1/orders/{order_id}/cancel", body, derive_key("cancel", external_ref, str(attempt)))

    def prepare_pay(self, order_id: str, external_ref: str, attempt: int = 0) -> Update | None:
        """The capture of what the ledger says is still due of an order the channel says is paid (None: nothing
        is due, or the order is cancelled)."""
        order = self.call("GET", f"/v1/orders/{order_id}")
        payment = order.get("payment") or {}
        due = int(order["total"]) - int(payment.get("cancelled", 0)) - int(payment.get("captured", 0))
        if due <= 0 or order.get("status") == "cancelled":
            return None
        body = {"amount": due, "reference": f"{external_ref}:paid"}
        return Update(f"/v1/orders/{order_id}/pay", body, derive_key("pay", external_ref, str(due), str(attempt)))

    def apply(self, updates: Sequence[Update]) -> list[Refused | None]:
        """Send updates, then wait for each to commit, `WORKERS` at a time; per update, None once committed
        (or nothing was left to do), else its refusal."""

        def send(update: Update, wait: str | None) -> Refused | None:
            try:
                self.write(update.path, update.body, update.key, wait=wait)
            except Refused as refusal:
                return None if is_done(update, refusal) else refusal
            return None

        sent = list(self.pool.map(lambda update: send(update, None), updates))
        confirmed = self.pool.map(lambda pair: pair[1] or send(pair[0], "commit"), zip(updates, sent, strict=True))
        return list(confirmed)

    def prepare_pays(self, orders: Sequence[tuple[str, str]], attempt: int = 0) -> list[Update | Refused | None]:
        """`prepare_pay` of each (order id, external reference), `WORKERS` at a time; a refusal in its place."""

        def prepare(order: tuple[str, str]) -> Update | Refused | None:
            try:
                return self.prepare_pay(*order, attempt=attempt)
            except Refused as refusal:
                return refusal

        return list(self.pool.map(prepare, orders))


def is_done(update: Update, refusal: Refused) -> bool:
    """A cancellation refused because the order is cancelled already has nothing left to do."""
    return (
        update.path.endswith("/cancel")
        and refusal.reason == "invalid_transition"
        and refusal.message.endswith("is cancelled")
    )


def read_import_item(item: dict[str, Any]) -> Placed | Refused:
    """One answer of an import: the order placed, or why not (`NodeUnavailable` if the node was only busy)."""
    status = item.get("status")
    if status == "committed":
        return Placed(order_id=str(item["order_id"]), duplicate=bool(item.get("duplicate")))
    refusal = split_reason(item.get("reason"))
    if status == "rejected" or (status == "refused" and refusal.reason not in BUSY):
        return refusal
    raise NodeUnavailable(f"order {item.get('external_ref')!r} is {status}: {item.get('reason')}")
