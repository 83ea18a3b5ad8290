"""The FastAPI application of a node: routers, error handlers, and the node's lifetime.

The API explorer (`/docs`, `/redoc`) loads its scripts and styles from the node itself (`fastapi-offline`
ships them), so it works on a network with no way out to the internet.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from starlette.requests import Request
from starlette.routing import Route

from node.api import (
    activity,
    analytics,
    backup,
    blocks,
    catalogue,
    configuration,
    events,
    fulfilments,
    governance,
    inventory,
    invoices,
    messages,
    metrics,
    orders,
    p2p,
    proofs,
    reconciliations,
    returns,
    status,
    trace,
    txs,
    web,
    webhooks,
)
from node.api.content import JsonBodyMiddleware
from node.api.errors import install_error_handlers
from node.api.headers import AnswerHeadersMiddleware
from node.api.inbox import InboxMiddleware
from node.api.limits import AnswerPacing, BodyLimitMiddleware, RateLimiter, WorkMiddleware
from node.api.models import InvalidRequestBody
from node.api.params import refuse_unknown_parameters
from node.api.requests import RequestMetricsMiddleware
from node.config import NodeConfig
from node.logs import log_startup
from node.node import Node

DESCRIPTION = """
The HTTP API of one oms-ledger node. Integrators (sales channels, WMS, ERP,
finance) submit signed transactions and read orders, stock, the stock journal,
invoices and blocks. Every write is a signed tx: `POST /v1/tx` answers 202 with
the tx id, and `GET /v1/tx/{tx_id}` tells when it is committed and what its
receipt says. A tx signs `valid_until`, the last height that may take it
(`tx_valid_until` of `GET /v1/status` is a good value). Errors are JSON
bodies with `error` (a code) and `message`; a request that does not fit its
route (an unknown query parameter or enum value, a body of another shape) is
422 `invalid_request` with `fields`, a list of `{path, problem}`; a request
body over 16 MiB is refused with 413 before it is read. Bodies are read as
JSON whatever `Content-Type` they declare (but msgpack on `/v1/txs` and CSV
on `/v1/reconciliations/stock`). Times in filters are milliseconds since the
epoch or ISO 8601. Every answer carries `X-Request-Id` (the client's own if
it sent a sane one). A signer with its quota of txs waiting in the mempool
gets 429, a full mempool 503; both carry `Retry-After`.

Every route that reads or writes business data needs an API token (made with
`omsnode token create`), sent as `Authorization: Bearer <token>`: 401 without
a known token, 403 when the token lacks the route's scope or its identity's
role, 429 with `Retry-After` over the token's rate; every answer to a request
with a token announces its rate in `RateLimit-Limit`, `RateLimit-Remaining`
and `RateLimit-Reset` (seconds until the token's bucket is full again). A store's or a channel's
token reads its organisation's data; operators and auditors read all.
`/health`, `/v1/status`, `/v1/peers`, `/metrics` and these docs are public;
a client-signed tx on `POST /v1/tx` or `/v1/txs` is authenticated by its
signature.
"""


def create_app(
    home: Path, state_sync: bool | None = None, cors_origins: Sequence[str] = (), config: NodeConfig | None = None
) -> FastAPI:
    """The app for the node whose home is `home` (with `config`, by default the home's); the node starts and
    stops with the server. Web pages of `cors_origins` may call it (with a token)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = Node(home, state_sync=state_sync, config=config)
        app.state.node = node
        app.state.rate_limiter = RateLimiter(node.config.api_rate_per_s, node.config.api_burst)
        app.state.address_rate_per_s = node.config.api_address_rate_per_s
        await node.start()
        log_startup(
            node.genesis.chain_id,
            node.node_id,
            "validator" if node.is_validator else "follower",
            node.store.height,
            node.config.advertised_url,
            {peer.id: peer.address for peer in node.peers},
        )
        try:
            yield
        finally:
            await node.close()

    app = FastAPIOffline(
        title="oms-ledger node",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(refuse_unknown_parameters)],
        responses={422: {"model": InvalidRequestBody, "description": "The request does not fit the route"}},
    )
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "idempotency-key", "x-request-id"],
            expose_headers=[
                "location",
                "retry-after",
                "x-request-id",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
            ],
        )
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(InboxMiddleware)
    app.add_middleware(AnswerHeadersMiddleware)
    app.add_middleware(WorkMiddleware)
    app.add_middleware(AnswerPacing)
    install_error_handlers(app)
    routers = (
        status,
        txs,
        blocks,
        orders,
        fulfilments,
        returns,
        inventory,
        invoices,
        catalogue,
        configuration,
        governance,
    )
    for module in (
        *routers,
        trace,
        proofs,
        messages,
        reconciliations,
        analytics,
        activity,
        events,
        webhooks,
        p2p,
        metrics,
        backup,
        web,
    ):
        app.include_router(module.router)
    serve_openapi(app)
    return app


def serve_openapi(app: FastAPI) -> None:
    """`/openapi.json` rendered once (the docs read it too): rendering the 170 KB document took about 10 ms of
    the event loop per request, which anyone could ask for again and again."""
    rendered: list[bytes] = []

    async def openapi_json(request: Request) -> Response:
        if not rendered:
            rendered.append(json.dumps(app.openapi(), separators=(",", ":")).encode())
        return Response(rendered[0], media_type="application/json")

    path = app.openapi_url
    app.router.routes[:] = [r for r in app.router.routes if not (isinstance(r, Route) and r.path == path)]
    app.add_route(str(path), openapi_json, include_in_schema=False)
