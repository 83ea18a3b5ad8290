"""Order load while faults happen: what the nodes acknowledged, kept for the checker.

`OrderLoad` stocks SKUs of its own (named for its run, so what one run's
orders reserve is told apart from every other run's) at the load warehouses
(`devnet.load.prepare_stock`), then offers `order.create` txs at a steady
rate from two threads, a small batch at a time, each batch to the next node
in turn (to the one after it when that node is dead or stalled). The senders
never wait for commits, so the offered load does not stop with the network:
the time commits take to resume after a fault is the network's own. A third
thread asks the nodes, in turn, about every tx not yet seen committed.
Whatever a node reports as committed (`committed` or `rejected`, both in a
block) is an acknowledgement, kept with the node, height and index it gave:
the checker later asks every node whether each acknowledged tx is where it
was said to be.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from devnet.baskets import Basket, Line
from devnet.load import make_order_payloads, prepare_stock
from devnet.network import Devnet
from omsclient import Client, Keyring, NodeError, tx_id

SKUS = 8
"""SKUs of one run's orders."""

STOCKED_FOR = 50_000
"""Orders the warehouses are stocked for (`prepare_stock` puts four units of each SKU a basket a warehouse), far
more than a run sends, so every order allocates."""

WINDOW_REFRESH_S = 10.0
"""How often the validity window the txs are signed with is asked again."""

BATCH = 4
"""Orders per request."""

SENDERS = 2
"""Threads sending at once: while one waits on a stalled node, the other goes on through another."""

REQUEST_TIMEOUT_S = 5.0
"""Time limit of one request to a node (a stopped node answers none)."""

CONFIRM_PAUSE_S = 0.3
"""Pause between two passes of asking the nodes about the unresolved txs."""

CHANNEL = "channel-1"


class NoNodeAnswered(RuntimeError):
    """Every node failed to answer (all of them down at once, say)."""


@dataclass(frozen=True)
class Ack:
    """One node's word that a tx is in the chain."""

    node: int
    status: str
    """`committed`, or `rejected` (in a block, refused by a contract)."""
    height: int
    index: int
    order_id: str | None
    """The order it created (None if rejected)."""


def make_baskets(tag: str, count: int) -> list[Basket]:
    """`count` baskets of one or two lines over the run's own SKUs."""
    return [
        tuple(Line(f"CHAOS-{tag}-{(i + k * 3) % SKUS}", 1 + (i + k) % 2, 500 + 10 * k) for k in range(1 + i % 2))
        for i in range(count)
    ]


class OrderLoad:
    """Orders sent in the background over every node of `devnet`, at most `rate` a second."""

    def __init__(self, devnet: Devnet, tag: str, rate: float) -> None:
        self.devnet = devnet
        self.tag = tag
        """Names this run's SKUs and external references."""
        self.rate = rate
        self.acks: dict[str, Ack] = {}
        """Tx id -> the first acknowledgement of it."""
        self.sent = 0
        """Orders sent (some perhaps more than once)."""
        self.unresolved: set[str] = set()
        """Sent txs no node has reported committed yet."""
        self.refused: Counter[str] = Counter()
        """How many submissions were refused, by error code (`duplicate_transaction` for a tx sent again)."""
        self.errors: list[str] = []
        """Why a thread ended early (a bug in the load, not a fault of the nodes)."""
        self.skus = [f"CHAOS-{tag}-{k}" for k in range(SKUS)]
        self._payloads = make_order_payloads(make_baskets(tag, SKUS), tag)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._next = 0
        self._via = 0
        self._window: tuple[float, int] | None = None
        self._signed: dict[str, dict[str, Any]] = {}
        self._keyring = Keyring(devnet.clients_dir, devnet.genesis.chain_id, self.valid_until)

    @property
    def external_prefix(self) -> str:
        """The start of every external reference this run sends."""
        return f"load-{self.tag}-"

    def any_acknowledged(self) -> dict[str, Any] | None:
        """A signed tx (JSON form) some node acknowledged, if any."""
        with self._lock:
            txid = next(iter(self.acks), None)
            return None if txid is None else self._signed[txid]

    def prepare(self) -> None:
        """Register the run's SKUs and stock them at every load warehouse, through the first node that answers."""
        one_each: list[Basket] = [(Line(sku, 1, 500),) for sku in self.skus]
        baskets = one_each * (STOCKED_FOR // SKUS)
        self._through_any(lambda client: prepare_stock(client, self._keyring, self.devnet, baskets))

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(SENDERS)]
        self._threads.append(threading.Thread(target=self._confirm, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop sending and asking."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def resolve(self, timeout: float = 60.0) -> None:
        """Ask every node about each tx still unresolved until one reports it committed, or until a pass in which
        every node answered finds none of them pending anywhere (a tx no node holds can no longer commit: it was
        lost with a node's mempool, or dropped), or `timeout`."""
        deadline = time.monotonic() + timeout
        while self.unresolved and time.monotonic() < deadline:
            held = False
            for index in range(len(self.devnet.nodes)):
                with self.devnet.client(index, timeout=REQUEST_TIMEOUT_S) as client:
                    for txid in sorted(self.unresolved):
                        held |= self._ask(client, index, txid) in ("pending", None)
            if self.unresolved and held:
                time.sleep(1.0)
            else:
                return

    # -- the threads --------------------------------------------------------------------

    def _send(self, offset: int) -> None:
        """Offer a batch every `BATCH * SENDERS / rate` seconds, each to the next node that takes it."""
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    txs = self._sign_batch()
                except NoNodeAnswered:
                    self._stop.wait(1.0)
                    continue
                self._deliver(txs, offset)
                offset += 1
                self._stop.wait(max(BATCH * SENDERS / self.rate - (time.monotonic() - started), 0.0))
        except Exception as exc:  # reported with the run's figures
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _sign_batch(self) -> list[dict[str, Any]]:
        with self._lock:
            first, self._next = self._next, self._next + BATCH
        txs = []
        for n in range(first, first + BATCH):
            payload = {**self._payloads[n % SKUS], "external_ref": f"{self.external_prefix}{n}"}
            txs.append(self._keyring.sign(CHANNEL, "order.create", payload))
        with self._lock:
            self.sent += len(txs)
            self.unresolved.update(tx_id(tx) for tx in txs)
            self._signed.update((tx_id(tx), tx) for tx in txs)
        return txs

    def _deliver(self, txs: list[dict[str, Any]], offset: int) -> None:
        """Submit `txs` to node `offset` (in turn), or the next that answers; none answering, they stay
        unresolved (a node may have taken them before it failed)."""
        count = len(self.devnet.nodes)
        for attempt in range(count):
            with self.devnet.client((offset + attempt) % count, timeout=REQUEST_TIMEOUT_S) as client:
                client.retries = 0
                try:
                    verdicts = client.submit_many(txs)
                except (httpx.HTTPError, NodeError):
                    continue
                with self._lock:
                    self.refused.update(v["error"] for v in verdicts if not v["accepted"])
                return

    def _confirm(self) -> None:
        """Ask the nodes in turn about every unresolved tx, skipping a node for the pass once it fails to answer."""
        index = 0
        try:
            while not self._stop.is_set():
                index = (index + 1) % len(self.devnet.nodes)
                with self.devnet.client(index, timeout=REQUEST_TIMEOUT_S) as client:
                    client.retries = 0
                    for txid in sorted(self.unresolved):
                        if self._stop.is_set() or self._ask(client, index, txid) is None:
                            break
                self._stop.wait(CONFIRM_PAUSE_S)
        except Exception as exc:  # reported with the run's figures
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _ask(self, client: Client, index: int, txid: str) -> str | None:
        """What node `index` reports of `txid` (`committed` and `rejected` are recorded as its acknowledgement;
        `pending`, `dropped`, or `unknown` when it does not hold it); None if it did not answer or answered with an
        error."""
        try:
            status = client.get(f"/v1/tx/{txid}")
        except NodeError as exc:
            return "unknown" if exc.status == 404 else None
        except httpx.HTTPError:
            return None
        if status["status"] not in ("committed", "rejected"):
            return str(status["status"])
        result = (status.get("receipt") or {}).get("result") or {}
        ack = Ack(index, status["status"], status["height"], status["index"], result.get("order_id"))
        with self._lock:
            self.acks.setdefault(txid, ack)
            self.unresolved.discard(txid)
        return str(status["status"])

    # -- helpers --------------------------------------------------------------------

    def valid_until(self) -> int:
        """The window the nodes suggest for a tx signed now, asked again every `WINDOW_REFRESH_S`."""
        now = time.monotonic()
        if self._window is None or now - self._window[0] > WINDOW_REFRESH_S:
            self._window = (now, self._through_any(lambda client: int(client.status()["tx_valid_until"])))
        return self._window[1]

    def _through_any(self, action: Any) -> Any:
        """`action(client)` through the first node that carries it out."""
        last: Exception | None = None
        for attempt in range(3 * len(self.devnet.nodes)):
            with self.devnet.client(attempt % len(self.devnet.nodes), timeout=REQUEST_TIMEOUT_S) as client:
                try:
                    return action(client)
                except (httpx.HTTPError, NodeError, TimeoutError) as exc:
                    last = exc
            time.sleep(0.2)
        raise NoNodeAnswered(f"no node answered: {last}")
