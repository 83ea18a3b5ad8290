"""What a node is doing now, for the web page's live views: recent commits, backlog, channels and alerts.

Everything here is this node's own view, held in memory or in the small
counts each block keeps, never a scan of the ledger: the last commits
through consensus (height, time, txs, latency; `node.metrics`), the
fulfilments each location has yet to ship (`node.backlog`), per channel the
orders committed and refused since the node started and when its last order
committed, and the alert rules firing now (`node.notify.alerts`). A store's
or channel's token sees the backlog, channels and alerts of its own
organisation; commits carry no organisation's data and are shown to every
token. The answer also says who the token acts as (`viewer`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ledger.state import StateView
from node.api.deps import authorize_route, get_node, get_state
from node.backlog import read_backlog
from node.node import Node
from node.tokens import Principal
from node.visibility import get_location_org

router = APIRouter(prefix="/v1", tags=["node"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


class Commit(BaseModel):
    """One block committed through consensus on this node."""

    height: int
    time_ms: int = Field(description="when this node committed it, ms since the epoch")
    txs: int
    latency_ms: int = Field(description="from the block's timestamp (its proposal) to its commit here")


class Backlog(BaseModel):
    location: str
    open: int = Field(description="fulfilments allocated, released or picked, not yet shipped")


class ChannelActivity(BaseModel):
    channel: str = Field(description="the channel's client identity")
    org: str
    orders_committed: int = Field(description="orders placed since this node started")
    orders_refused: int = Field(description="orders the contracts refused since this node started")
    last_order_ms: int | None = Field(description="when this node last committed one of its orders (null: not yet)")


class Alert(BaseModel):
    rule: str
    subject: str
    message: str


class Viewer(BaseModel):
    """Who the token acts as, so the page offers only what it may do."""

    identity: str
    org: str
    roles: list[str]
    scopes: list[str]
    sees_all: bool = Field(description="operators and auditors read every organisation's data")


class Activity(BaseModel):
    """This node's live figures, as the token may see them."""

    node_id: str
    viewer: Viewer
    now_ms: int = Field(description="this node's clock, to measure lags against")
    commits: list[Commit] = Field(description="the latest commits through consensus since start, oldest first")
    backlog: list[Backlog]
    channels: list[ChannelActivity]
    alerts: list[Alert] = Field(description="the alert rules firing now")


def count_refused(node: Node, channel: str) -> int:
    """Orders of `channel` the contracts refused, every reason together."""
    return int(
        sum(
            sample.value
            for metric in node.metrics.orders_rejected.collect()
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("channel") == channel
        )
    )


@router.get("/activity", response_model=Activity, summary="Recent commits, fulfilment backlog, channels and alerts")
async def get_activity(node: NodeDep, state: StateDep, reader: Reader) -> Activity:
    metrics = node.metrics
    membership = node.executor.get_membership()
    backlog = [
        Backlog(location=location, open=count)
        for location, count in sorted(read_backlog(node.store).items())
        if reader.can_see([get_location_org(state.get, location) or ""])
    ]
    channels = []
    for client in membership.clients:
        if "channel" not in client.roles or not reader.can_see([client.org]):
            continue
        committed = metrics.registry.get_sample_value("oms_orders_committed_total", {"channel": client.id}) or 0
        channels.append(
            ChannelActivity(
                channel=client.id,
                org=client.org,
                orders_committed=int(committed),
                orders_refused=count_refused(node, client.id),
                last_order_ms=metrics.last_order_ms.get(client.id),
            )
        )
    alerts = [
        Alert(rule=finding.rule, subject=finding.subject, message=finding.message)
        for finding in node.alerts.firing.values()
        if reader.sees_all or reader.org in finding.orgs
    ]
    return Activity(
        node_id=node.node_id,
        viewer=Viewer(
            identity=reader.identity.id,
            org=reader.org,
            roles=sorted(reader.identity.roles),
            scopes=sorted(reader.scopes),
            sees_all=reader.sees_all,
        ),
        now_ms=node.clock(),
        commits=[Commit(**asdict(sample)) for sample in metrics.recent],
        backlog=backlog,
        channels=channels,
        alerts=alerts,
    )
