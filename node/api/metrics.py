"""`GET /metrics`: the node's metrics in the Prometheus exposition format, for Prometheus to scrape.

It lives outside `/v1`, where Prometheus looks by default. The route is
async on purpose: it then runs on the node's event loop, so the collector
reads the node's counters between two steps of the loop, never while a step
is changing them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client.exposition import choose_encoder

from node.api.deps import get_node
from node.api.errors import Forbidden
from node.node import Node

router = APIRouter(tags=["node"])

NodeDep = Annotated[Node, Depends(get_node)]

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
"""Client addresses of this machine."""


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Metrics for Prometheus: height, consensus view, commits, mempool, peers, dropped envelopes",
)
async def metrics(request: Request, node: NodeDep) -> Response:
    """The Prometheus text format, or OpenMetrics when the `Accept` header asks for it. With
    `metrics_loopback_only` in the node's config, only clients on this machine may scrape."""
    if node.config.metrics_loopback_only and (request.client is None or request.client.host not in LOOPBACK):
        raise Forbidden("this node serves metrics to clients on its own machine only")
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(node.metrics.registry), media_type=content_type)
