"""Prometheus metrics of one node: what an operator scrapes from `GET /metrics`.

Almost every figure worth scraping is already counted somewhere in the node:
the store's height, the replica's view, the mempool's size, the peer table's
per-peer traffic, errors, reachability and heights, the envelope gate's drops
by reason, the `/p2p` route's oversized requests. `NodeCollector` reads them
when Prometheus scrapes, so the consensus path pays nothing for being
observed. What exists only as it happens (how many txs each committed block
carried, how long it took from proposal to commit) is recorded by
`NodeMetrics.on_commit`, a commit listener of the consensus driver, into
counters and histograms. Blocks applied by block sync do not pass through
consensus: they move `oms_chain_height` but not the commit counters.

The business figures: orders committed and refused per channel (and
reason) are counted by the same commit listener from the blocks' receipts;
the fulfilment backlog per location is read from the counts the commit keeps
(`node.backlog`); webhook deliveries from the outbox (`node.notify`); API
requests by route template, method and status by `node.api.requests`. Alert
rules read these figures (`node.notify.alerts`; `deploy/prometheus/alerts.yml`
holds the same rules for Prometheus).

The same listener keeps the last `RECENT_COMMITS` commits (`CommitSample`:
height, time, txs, latency) in memory, for the web page's charts of commit
rate, block size and commit latency, and when each channel's orders last
committed (`GET /v1/activity`).

Each node has its own `CollectorRegistry`, not the library's global one, so
several nodes in one process (as in tests) never mix their figures. Metric
names follow Prometheus conventions: an `oms_` prefix, `_total` on counters,
base units (seconds, bytes).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ledger.block import Block, Receipt
from ledger.tx import Tx
from node.backlog import read_backlog
from node.feed import ORDER_KINDS, compute_refused_orders
from node.lowstock import read_low_stock
from node.notify.alerts import RULES
from p2p.peers import PeerInfo

if TYPE_CHECKING:
    from node.node import Node

PEER_COUNTERS: tuple[tuple[str, str, Callable[[PeerInfo], int]], ...] = (
    (
        "oms_peer_messages_received_total",
        "Envelopes received from the peer that passed the gate.",
        attrgetter("msgs_in"),
    ),
    ("oms_peer_bytes_received_total", "Bytes of the envelopes received from the peer.", attrgetter("bytes_in")),
    ("oms_peer_messages_sent_total", "Envelopes delivered to the peer.", attrgetter("msgs_out")),
    ("oms_peer_bytes_sent_total", "Bytes of the envelopes delivered to the peer.", attrgetter("bytes_out")),
    (
        "oms_peer_errors_total",
        "Failed exchanges with the peer (timeouts, refusals, error statuses).",
        attrgetter("errors"),
    ),
    (
        "oms_peer_send_queue_dropped_total",
        "Envelopes for the peer dropped because its send queue was full or retries ran out.",
        attrgetter("queue_dropped"),
    ),
)
"""Per-peer counters of the peer table, as (metric name, help, reader)."""


RECENT_COMMITS = 240
"""Commits `NodeMetrics.recent` keeps (a few minutes of a busy network)."""


@dataclass(frozen=True)
class CommitSample:
    """One block committed through consensus on this node."""

    height: int
    time_ms: int
    """When this node committed it (its clock)."""
    txs: int
    latency_ms: int
    """From the block's timestamp (the primary's proposal) to its commit here; 0 when this clock is behind."""


def compute_txs_buckets(max_block_txs: int) -> tuple[int, ...]:
    """Upper bounds of the txs-per-block histogram: powers of two below `max_block_txs`, then a full block."""
    bounds = []
    bound = 1
    while bound < max_block_txs:
        bounds.append(bound)
        bound *= 2
    return (*bounds, max_block_txs)


class NodeCollector(Collector):
    """Reads the node's own counters and gauges at scrape time."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        yield from self._collect_chain()
        yield from self._collect_mempool()
        yield from self._collect_peers()
        yield from self._collect_p2p()
        yield from self._collect_business()
        yield from self._collect_webhooks()

    def _collect_chain(self) -> Iterator[Metric]:
        node = self.node
        info = InfoMetricFamily("oms_node", "The node this process runs and its chain.")
        info.add_metric([], {"node_id": node.node_id, "chain_id": node.genesis.chain_id})
        yield info
        yield GaugeMetricFamily("oms_chain_height", "Height of the last committed block.", node.store.height)
        yield CounterMetricFamily(
            "oms_gossip_resent_txs_total",
            "Mempool txs gossiped again after waiting two view timeouts without a block.",
            node.gossip.resent,
        )
        if node.replica is None or node.driver is None:
            return
        yield GaugeMetricFamily("oms_consensus_view", "Current consensus view of the replica.", node.replica.view)
        yield GaugeMetricFamily(
            "oms_consensus_is_primary", "1 while this node is the primary of the current view.", node.replica.is_primary
        )
        yield GaugeMetricFamily(
            "oms_consensus_voting",
            "1 while the replica signed a vote at one of its last few heights and would vote on its next "
            "(0 while it only follows by sync, changes view, is muted, behind or halted).",
            node.replica.is_voting and not node.driver.halted,
        )
        yield GaugeMetricFamily(
            "oms_consensus_halted",
            "1 once the replica stopped signing because its consensus log could not be written (until restart).",
            node.driver.halted is not None,
        )
        yield GaugeMetricFamily(
            "oms_consensus_last_voted_height",
            "Height of the last PREPARE or COMMIT this replica signed (as its consensus log shows).",
            node.replica.last_voted_height,
        )
        yield CounterMetricFamily(
            "oms_consensus_dropped_messages_total",
            "Consensus messages from peers that could not be decoded.",
            node.driver.dropped_messages,
        )
        stages = CounterMetricFamily(
            "oms_consensus_stage_seconds",
            "Wall seconds the event loop spent in each stage of the consensus rounds: propose (the primary builds "
            "its block), vote (a proposal is re-executed), log_sync (consensus log fsync), commit.",
            labels=["stage"],
        )
        for stage, seconds in node.driver.stage_seconds.items():
            stages.add_metric([stage], seconds)
        yield stages

    def _collect_mempool(self) -> Iterator[Metric]:
        mempool = self.node.mempool
        yield GaugeMetricFamily("oms_mempool_txs", "Admitted txs waiting for a block.", len(mempool))
        yield GaugeMetricFamily("oms_mempool_bytes", "Encoded size of the txs in the mempool.", mempool.bytes)
        yield GaugeMetricFamily(
            "oms_mempool_limit_txs",
            "Work the mempool takes from clients now, in the units proposals are filled by (a single order is one;"
            " its count bound, or the work of its wait bound at the commit rate).",
            mempool.limit(self.node.clock()),
        )
        yield CounterMetricFamily(
            "oms_mempool_evicted_txs_total", "Txs dropped from the mempool after waiting too long.", mempool.evicted
        )
        yield CounterMetricFamily(
            "oms_mempool_refused_over_quota_total",
            "Txs refused because their signer had its quota waiting in the mempool.",
            mempool.refused_over_quota,
        )

    def _collect_peers(self) -> Iterator[Metric]:
        peers = sorted(self.node.peers, key=attrgetter("id"))
        for name, documentation, read in PEER_COUNTERS:
            counter = CounterMetricFamily(name, documentation, labels=["peer"])
            for peer in peers:
                counter.add_metric([peer.id], read(peer))
            yield counter
        reachable = GaugeMetricFamily(
            "oms_peer_reachable",
            "1 if the last exchange with the peer succeeded, 0 after a failure or before any.",
            labels=["peer"],
        )
        height = GaugeMetricFamily(
            "oms_peer_last_height_seen", "Highest committed height the peer has reported.", labels=["peer"]
        )
        rtt = GaugeMetricFamily(
            "oms_peer_rtt_seconds", "Smoothed round-trip time of requests to the peer (once measured).", labels=["peer"]
        )
        for peer in peers:
            reachable.add_metric([peer.id], peer.reachable is True)
            height.add_metric([peer.id], peer.last_height_seen)
            if peer.rtt_ms is not None:
                rtt.add_metric([peer.id], peer.rtt_ms / 1000)
        yield from (reachable, height, rtt)

    def _collect_p2p(self) -> Iterator[Metric]:
        gate = self.node.transport.inbox.gate
        yield CounterMetricFamily(
            "oms_p2p_envelopes_accepted_total", "Incoming envelopes that passed every check.", gate.accepted
        )
        dropped = CounterMetricFamily(
            "oms_p2p_envelopes_dropped_total", "Incoming envelopes or frames refused, by reason.", labels=["reason"]
        )
        for reason, count in sorted(gate.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        over_budget = CounterMetricFamily(
            "oms_p2p_over_budget_total",
            "Sealed envelopes refused unchecked because their validator had spent its budget, by sender.",
            labels=["sender"],
        )
        for sender, count in sorted(gate.budget.refused.items() if gate.budget is not None else ()):
            over_budget.add_metric([sender], count)
        yield over_budget
        yield CounterMetricFamily(
            "oms_p2p_oversized_requests_total",
            "`/p2p` requests refused with 413 because their body was too large.",
            self.node.oversized_requests,
        )

    def _collect_business(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "oms_fulfilment_backlog",
            "Fulfilments a location has yet to ship (allocated, released or picked); locations with none are absent.",
            labels=["location"],
        )
        for location, count in sorted(read_backlog(self.node.store).items()):
            backlog.add_metric([location], count)
        yield backlog
        short = GaugeMetricFamily(
            "oms_stock_below_safety_units",
            "Units a SKU at a location lacks to reach its safety stock, for each one below it (at most 1,000).",
            labels=["location", "sku"],
        )
        for low in read_low_stock(self.node.store):
            short.add_metric([low.location, low.sku], low.safety - low.available)
        yield short
        yield GaugeMetricFamily(
            "oms_seconds_since_commit",
            "Seconds since this node last committed a block (or since it started).",
            max(self.node.clock() - self.node.last_commit_ms, 0) / 1000,
        )

    def _collect_webhooks(self) -> Iterator[Metric]:
        webhooks = self.node.webhooks
        outbox = webhooks.outbox
        deliveries = CounterMetricFamily(
            "oms_webhook_deliveries_total",
            "Webhook deliveries done since start: delivered (a 2xx answer) or dead (after the last attempt).",
            labels=["result"],
        )
        deliveries.add_metric(["delivered"], outbox.delivered)
        deliveries.add_metric(["dead"], outbox.dead)
        yield deliveries
        yield CounterMetricFamily(
            "oms_webhook_failed_attempts_total",
            "Webhook attempts that failed (an error status, no answer in time, no connection) since start.",
            outbox.failed,
        )
        yield GaugeMetricFamily(
            "oms_webhook_pending_deliveries", "Webhook deliveries waiting or retrying.", webhooks.pending
        )
        failing = GaugeMetricFamily(
            "oms_webhook_consecutive_failures",
            "Failed attempts in a row of each subscription's deliveries (0 after a delivery).",
            labels=["subscription"],
        )
        for subscription, count in sorted(webhooks.failing.items()):
            failing.add_metric([subscription], count)
        yield failing
        firing = GaugeMetricFamily(
            "oms_alerts_firing",
            "Subjects (node, peers, subscriptions, SKUs) each alert rule finds firing.",
            labels=["rule"],
        )
        for rule in RULES:
            firing.add_metric([rule], sum(1 for fired, _ in self.node.alerts.firing if fired == rule))
        yield firing


class NodeMetrics:
    """The registry `GET /metrics` exposes for one node, and the commit listener that feeds it."""

    def __init__(self, node: Node) -> None:
        self.clock = node.clock
        self.registry = CollectorRegistry()
        """This node's metrics only (never the library's global registry)."""
        self.registry.register(NodeCollector(node))
        ProcessCollector(registry=self.registry)
        self.blocks_committed = Counter(
            "oms_blocks_committed_total", "Blocks committed through consensus since start.", registry=self.registry
        )
        self.txs_committed = Counter(
            "oms_txs_committed_total",
            "Txs in blocks committed through consensus since start, by receipt (accepted or rejected by a contract).",
            ["result"],
            registry=self.registry,
        )
        for result in ("accepted", "rejected"):
            self.txs_committed.labels(result)
        self.block_txs = Histogram(
            "oms_block_txs",
            "Txs per block committed through consensus.",
            buckets=compute_txs_buckets(node.genesis.consensus.max_block_txs),
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "oms_block_proposal_to_commit_seconds",
            "From a block's timestamp (set by the primary as it proposes) to its commit on this node"
            " (0 when this node's clock is behind the primary's).",
            registry=self.registry,
        )
        self.orders_committed = Counter(
            "oms_orders_committed_total",
            "New orders committed through consensus since start, by channel (duplicates of a reference not counted).",
            ["channel"],
            registry=self.registry,
        )
        self.orders_rejected = Counter(
            "oms_orders_rejected_total",
            "Orders refused by the contracts in blocks committed through consensus since start, by channel and reason.",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "oms_api_requests_total",
            "API requests answered, by route template, method and status (`/p2p` not included).",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.recent: deque[CommitSample] = deque(maxlen=RECENT_COMMITS)
        """The latest commits through consensus, oldest first."""
        self.last_order_ms: dict[str, int] = {}
        """When this node last committed an order of each channel, by channel identity."""
        if node.driver is not None:
            node.driver.listeners.append(self.on_commit)

    def on_commit(self, block: Block, receipts: list[Receipt]) -> None:
        """Count a block committed through consensus (a `ConsensusDriver` listener)."""
        self.blocks_committed.inc()
        accepted = sum(receipt.ok for receipt in receipts)
        self.txs_committed.labels("accepted").inc(accepted)
        self.txs_committed.labels("rejected").inc(len(receipts) - accepted)
        self.block_txs.observe(len(block.txs))
        now = self.clock()
        latency_ms = max(now - block.header.timestamp_ms, 0)
        self.commit_latency.observe(latency_ms / 1000)
        self.recent.append(CommitSample(block.header.height, now, len(block.txs), latency_ms))
        for tx, receipt in zip(block.txs, receipts, strict=True):
            if tx.kind in ORDER_KINDS:
                self._count_orders(tx, receipt)
                self.last_order_ms[tx.signer] = now

    def _count_orders(self, tx: Tx, receipt: Receipt) -> None:
        """Count the orders a committed `order.create` or `order.import` placed and those it had refused."""
        if tx.kind == "order.import":
            placed = int(receipt.result.get("placed", 0))
        else:
            placed = int(receipt.result.get("duplicate") is False)
        if receipt.ok and placed:
            self.orders_committed.labels(tx.signer).inc(placed)
        for _, code, _ in compute_refused_orders(tx, receipt):
            self.orders_rejected.labels(tx.signer, code).inc()
