"""The FastAPI application of a node: routers, error handlers, and the node's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from node.api import (
    blocks,
    catalogue,
    configuration,
    events,
    fulfilments,
    inventory,
    invoices,
    messages,
    metrics,
    orders,
    p2p,
    reconciliations,
    returns,
    status,
    txs,
    webhooks,
)
from node.api.errors import install_error_handlers
from node.api.inbox import InboxMiddleware
from node.api.limits import BodyLimitMiddleware, RateLimiter
from node.api.requests import RequestMetricsMiddleware
from node.node import Node

DESCRIPTION = """
The HTTP API of one oms-ledger node. Integrators (sales channels, WMS, ERP,
finance) submit signed transactions and read orders, stock, the stock journal,
invoices and blocks. Every write is a signed tx: `POST /v1/tx` answers 202 with
the tx id, and `GET /v1/tx/{tx_id}` tells when it is committed and what its
receipt says. A tx signs `valid_until`, the last height that may take it
(`tx_valid_until` of `GET /v1/status` is a good value). Errors are JSON
bodies with `error` (a code) and `message`; a request body over 16 MiB is
refused with 413 before it is read. A signer with its quota of txs waiting in
the mempool gets 429, a full mempool 503; both carry `Retry-After`.

Every route that reads or writes business data needs an API token (made with
`omsnode token create`), sent as `Authorization: Bearer <token>`: 401 without
a known token, 403 when the token lacks the route's scope or its identity's
role, 429 with `Retry-After` over the token's rate. A store's or a channel's
token reads its organisation's data; operators and auditors read all.
`/health`, `/v1/status`, `/v1/peers`, `/metrics` and these docs are public;
a client-signed tx on `POST /v1/tx` or `/v1/txs` is authenticated by its
signature.
"""


def create_app(home: Path, state_sync: bool | None = None, cors_origins: Sequence[str] = ()) -> FastAPI:
    """The app for the node whose home is `home`; the node starts and stops with the server. Web pages of
    `cors_origins` may call it (with a token)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = Node(home, state_sync=state_sync)
        app.state.node = node
        app.state.rate_limiter = RateLimiter(node.config.api_rate_per_s, node.config.api_burst)
        await node.start()
        try:
            yield
        finally:
            await node.close()

    app = FastAPI(title="oms-ledger node", version="1", description=DESCRIPTION, lifespan=lifespan)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "idempotency-key"],
            expose_headers=["location", "retry-after"],
        )
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(InboxMiddleware)
    install_error_handlers(app)
    routers = (status, txs, blocks, orders, fulfilments, returns, inventory, invoices, catalogue, configuration)
    for module in (*routers, messages, reconciliations, events, webhooks, p2p, metrics):
        app.include_router(module.router)
    return app
