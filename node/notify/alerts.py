"""Alert rules the node evaluates itself, raised as `alert` events on its feed, to its webhooks and in its log.

Every `alert_interval_ms` the node looks at what it already counts and
compares it with its rules:

- `consensus_stalled`: txs wait in the mempool and no block committed for `alert_stall_ms`;
- `peer_unreachable`: every exchange with a peer failed for `alert_peer_unreachable_ms`;
- `webhook_failing`: a subscription's deliveries failed `alert_webhook_failures` times in a row;
- `stock_below_safety`: a SKU at a location has fewer units available than its safety stock (`node.lowstock`).

Each rule holds one state per subject (the node, a peer, a subscription, a
location and SKU): an alert event is raised when a subject starts firing
(`state: firing`) and again when it stops (`state: resolved`), not at every
look. The events are this node's own: written to its feed outside any block
(`node.feed.write_node_event`), so each node tells its own view, and a
subscriber of another node does not see them. Consensus and peer alerts
belong to no organisation (operators and auditors read them); a webhook
alert to the subscription's organisation, a stock alert to the location's.
The rules start quiet: what is already firing when the node starts is
raised at its first look. `deploy/prometheus/alerts.yml` holds the same rules
over the same figures of `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ledger.errors import LedgerError
from ledger.state import StateView
from node.feed import ALERT_TYPE, write_node_event
from node.lowstock import read_low_stock
from node.visibility import get_location_org

if TYPE_CHECKING:
    from node.node import Node

log = logging.getLogger(__name__)

Rule = Literal["consensus_stalled", "peer_unreachable", "webhook_failing", "stock_below_safety"]

RULES: tuple[Rule, ...] = ("consensus_stalled", "peer_unreachable", "webhook_failing", "stock_below_safety")
"""Every rule, in the order the module lists them."""


@dataclass(frozen=True)
class Finding:
    """One subject a rule finds firing now."""

    rule: Rule
    subject: str
    message: str
    orgs: tuple[str, ...] = ()
    """Who may read the alert (none: operators and auditors only)."""


class AlertRules:
    """The node's rules and which subjects fire now."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config = node.config
        self.firing: dict[tuple[Rule, str], Finding] = {}
        """What fires now, by (rule, subject)."""
        self._down_since: dict[str, int] = {}
        """When each peer was first seen unreachable in a row."""
        self.raised = 0
        """Alert events raised since start (firing and resolved)."""

    def find(self, now: int) -> list[Finding]:
        """Every subject firing now."""
        node, config = self.node, self.config
        found: list[Finding] = []
        idle_ms = now - node.last_commit_ms
        if len(node.mempool) and idle_ms >= config.alert_stall_ms:
            found.append(
                Finding(
                    "consensus_stalled",
                    node.node_id,
                    f"{len(node.mempool)} txs wait and no block committed for {idle_ms // 1000} s",
                )
            )
        for peer in node.peers:
            if peer.reachable is True:
                self._down_since.pop(peer.id, None)
                continue
            since = self._down_since.setdefault(peer.id, now)
            if now - since >= config.alert_peer_unreachable_ms:
                found.append(
                    Finding(
                        "peer_unreachable",
                        peer.id,
                        f"no exchange with {peer.id} succeeded for {(now - since) // 1000} s",
                    )
                )
        subscriptions = node.webhooks.outbox.subscriptions
        for subscription_id, failures in sorted(node.webhooks.failing.items()):
            subscription = subscriptions.get(subscription_id)
            if subscription is not None and failures >= config.alert_webhook_failures:
                message = f"{failures} deliveries to {subscription['url']} failed in a row"
                found.append(Finding("webhook_failing", subscription_id, message, (subscription["org"],)))
        state = StateView(node.store)
        for low in read_low_stock(node.store):
            org = get_location_org(state.get, low.location)
            message = f"{low.sku} at {low.location}: {low.available} available, safety stock {low.safety}"
            found.append(Finding("stock_below_safety", f"{low.location}/{low.sku}", message, (org,) if org else ()))
        return found

    def evaluate(self, now: int) -> list[tuple[Finding, str]]:
        """Look once: raise what started and what stopped firing; those (finding, state) pairs."""
        found = {(f.rule, f.subject): f for f in self.find(now)}
        changes = [(f, "firing") for key, f in found.items() if key not in self.firing]
        changes += [(f, "resolved") for key, f in self.firing.items() if key not in found]
        self.firing = found
        for finding, state in changes:
            self._raise(finding, state, now)
        return changes

    def _raise(self, finding: Finding, state: str, now: int) -> None:
        data = {
            "rule": finding.rule,
            "state": state,
            "subject": finding.subject,
            "message": finding.message,
            "node": self.node.node_id,
        }
        write_node_event(self.node.store, ALERT_TYPE, orgs=list(finding.orgs), data=data, time_ms=now)
        self.raised += 1
        self.node.webhooks.wake()
        level = logging.WARNING if state == "firing" else logging.INFO
        log.log(level, "alert %s %s (%s): %s", finding.rule, state, finding.subject, finding.message)

    async def run(self) -> None:
        """Evaluate every `alert_interval_ms`, until cancelled."""
        while True:
            await asyncio.sleep(self.config.alert_interval_ms / 1000)
            try:
                self.evaluate(self.node.clock())
            except LedgerError as exc:
                log.error("alert rules: %s", exc)
