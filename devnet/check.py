"""The devnet's invariant checker: one chain, one view, every validator voting, nothing left pending.

Run after a load or a fault scenario, through the nodes' public API only (as
CometBFT's end-to-end tests do), it reports what an operator would want to
know before calling the network healthy:

- **one chain**: every node holds the same block at the lowest head among them
  (blocks are hash-chained, so the same block there means the same chain
  below it; a fork is the worst bug a ledger can have);
- **one view**: every node is in the same consensus view, none is changing
  view or abstaining;
- **every vote counted**: in each node's last `blocks` blocks, its own COMMIT
  is in the certificate it stored (a replica that only follows by sync or by
  others' commits is up but adds nothing to fault tolerance);
- **nothing pending**: every mempool is empty (each admitted tx was committed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devnet.network import Devnet
from omsclient import Client


@dataclass
class CheckReport:
    """What `check_devnet` found; `problems` is empty when every invariant holds."""

    heights: list[int]
    views: list[int]
    pending: list[int]
    unvoted: dict[int, list[int]] = field(default_factory=dict)
    """Node index -> heights among the last blocks whose certificate lacks that node's own commit."""
    problems: list[str] = field(default_factory=list)

    @property
    def is_healthy(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.is_healthy,
            "heights": self.heights,
            "views": self.views,
            "pending": self.pending,
            "unvoted": {str(index): heights for index, heights in self.unvoted.items()},
            "problems": self.problems,
        }


def check_devnet(devnet: Devnet, blocks: int = 20) -> CheckReport:
    """Check the devnet's invariants through every node's API (every node must be up)."""
    clients = [devnet.client(node.index) for node in devnet.nodes]
    try:
        statuses = [client.status() for client in clients]
        report = CheckReport(
            heights=[s["height"] for s in statuses],
            views=[s["view"] for s in statuses],
            pending=[s["mempool"] for s in statuses],
        )
        _check_one_view(statuses, report)
        _check_one_chain(clients, min(report.heights), report)
        for index, (client, status) in enumerate(zip(clients, statuses, strict=True)):
            _check_votes(index, client, status, blocks, report)
        if any(report.pending):
            report.problems.append(f"txs still pending in the mempools: {report.pending}")
        return report
    finally:
        for client in clients:
            client.close()


def _check_one_view(statuses: list[dict[str, Any]], report: CheckReport) -> None:
    if len(set(report.views)) > 1:
        report.problems.append(f"nodes are in different views: {report.views}")
    for index, status in enumerate(statuses):
        if not status.get("voting", True):
            report.problems.append(f"node {index} is not voting (view changing: {status.get('view_changing')})")


def _check_one_chain(clients: list[Client], height: int, report: CheckReport) -> None:
    if height == 0:
        return
    hashes = {client.get(f"/v1/blocks/{height}")["hash"] for client in clients}
    if len(hashes) > 1:
        report.problems.append(f"fork: {len(hashes)} different blocks at height {height}")


def _check_votes(index: int, client: Client, status: dict[str, Any], blocks: int, report: CheckReport) -> None:
    node_id = status["node_id"]
    top = status["height"]
    unvoted = []
    for h in range(max(status.get("base_height", 1) or 1, top - blocks + 1), top + 1):
        signers = {signer for signer, _ in client.get(f"/v1/blocks/{h}")["certificate"]["signatures"]}
        if node_id not in signers:
            unvoted.append(h)
    if unvoted:
        report.unvoted[index] = unvoted
        report.problems.append(f"node {index} did not vote for {len(unvoted)} of its last {blocks} blocks")
