"""The FastAPI application of a node: routers, error handlers, and the node's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from node.api import blocks, inventory, invoices, metrics, orders, p2p, status, txs
from node.api.errors import install_error_handlers
from node.api.inbox import InboxMiddleware
from node.api.limits import BodyLimitMiddleware
from node.node import Node

DESCRIPTION = """
The HTTP API of one oms-ledger node. Integrators (sales channels, WMS, ERP,
finance) submit signed transactions and read orders, stock, the stock journal,
invoices and blocks. Every write is a signed tx: `POST /v1/tx` answers 202 with
the tx id, and `GET /v1/tx/{tx_id}` tells when it is committed and what its
receipt says. Errors are JSON bodies with `error` (a code) and `message`; a
request body over 16 MiB is refused with 413 before it is read.
"""


def create_app(home: Path, state_sync: bool | None = None) -> FastAPI:
    """The app for the node whose home is `home`; the node starts and stops with the server."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = Node(home, state_sync=state_sync)
        app.state.node = node
        await node.start()
        try:
            yield
        finally:
            await node.close()

    app = FastAPI(title="oms-ledger node", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(InboxMiddleware)
    install_error_handlers(app)
    for module in (status, txs, blocks, orders, inventory, invoices, p2p, metrics):
        app.include_router(module.router)
    return app
