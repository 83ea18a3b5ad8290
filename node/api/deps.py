"""Shared dependencies of the API routers: the running node, a read view of its state, and who is asking.

`authorize(scope)` is the gate of every route that reads or writes business
data: it answers 401 without a known token (`Authorization: Bearer T`), 429
when the token is over its rate, and 403 when the token lacks `scope`; the
route then narrows what it shows to the `Principal`'s organisation. Where
the token stands against its rate is kept as `request.state.quota`, for the
answer's `RateLimit` headers (`node.api.headers`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.state import StateView
from node.api.errors import Forbidden, Unauthorized
from node.node import Node
from node.tokens import Principal

bearer = HTTPBearer(auto_error=False, description="An API token made with `omsnode token create`.")


async def get_node(request: Request) -> Node:
    """The node this server runs (set on the app at start-up)."""
    node: Node = request.app.state.node
    return node


async def get_state(request: Request) -> StateView:
    """A read-only view of the committed world state."""
    node: Node = request.app.state.node
    return StateView(node.store)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def authorize(scope: str | None) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """A dependency that answers the request's `Principal` if its token holds `scope` (any valid token when
    `scope` is None), and refuses it otherwise."""

    async def principal(request: Request, credentials: Credentials) -> Principal:
        node: Node = request.app.state.node
        if credentials is None:
            raise Unauthorized("this route needs an API token: send `Authorization: Bearer <token>`")
        token = node.tokens.find(credentials.credentials)
        membership = node.executor.get_membership()
        identity = None if token is None else membership.identity(token.identity, node.store.height + 1)
        if token is None or identity is None:
            raise Unauthorized("unknown or revoked API token")
        request.state.quota = request.app.state.rate_limiter.take(token.id, token.rate_per_s)
        if scope is not None and scope not in token.scopes:
            raise Forbidden(f"this route needs scope {scope!r}; the token has {', '.join(sorted(token.scopes))}")
        return Principal(token.id, identity, token.scopes)

    return principal
