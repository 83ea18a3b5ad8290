"""Shared dependencies of the API routers: the running node, a read view of its state, and who is asking.

`authorize_route` is the gate of every route that reads or writes business
data: it answers 401 without a known token (`Authorization: Bearer T`), 429
when the token is in debt of work (`charge_work_to`), and 403 when the token
lacks the scope the roles table gives the route (`node.api.access`); the
route then narrows what it shows to the `Principal`'s organisation. Where
the token stands against its rate is kept as `request.state.quota`, for the
answer's `RateLimit` headers (`node.api.headers`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.state import StateView
from node.api.access import get_route_access
from node.api.errors import Forbidden, Unauthorized
from node.api.limits import CURRENT_WORK, MeteredReader
from node.node import Node
from node.tokens import Principal

bearer = HTTPBearer(auto_error=False, description="An API token made with `omsnode token create`.")


async def get_node(request: Request) -> Node:
    """The node this server runs (set on the app at start-up)."""
    node: Node = request.app.state.node
    return node


async def get_state(request: Request) -> StateView:
    """A read-only view of the committed world state, whose reads count as the request's work."""
    node: Node = request.app.state.node
    return StateView(MeteredReader(node.store))


def charge_work_to(request: Request, key: str, rate: float | None = None) -> None:
    """Count this request against `key` (`RateLimited` while the key is in debt), and have the work it does
    charged to the same key once it is answered (`node.api.limits.WorkMiddleware`); where the key then stands is
    kept for the answer's `RateLimit` headers."""
    request.state.quota = request.app.state.rate_limiter.take(key, rate)
    meter = CURRENT_WORK.get()
    if meter is not None:
        meter.key, meter.rate = key, rate


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def authorize_route(request: Request, credentials: Credentials) -> Principal:
    """The request's `Principal` if its token holds the scope the roles table gives the route
    (`node.api.access.ROUTES`; any valid token when it gives none), and a refusal otherwise."""
    scope = get_route_access(request).scope
    node: Node = request.app.state.node
    if credentials is None:
        raise Unauthorized("this route needs an API token: send `Authorization: Bearer <token>`")
    token = node.tokens.find(credentials.credentials)
    membership = node.executor.get_membership()
    identity = None if token is None else membership.identity(token.identity, node.store.height + 1)
    if token is None or identity is None:
        raise Unauthorized("unknown or revoked API token")
    charge_work_to(request, f"token:{token.id}", token.rate_per_s)
    if scope is not None and scope not in token.scopes:
        raise Forbidden(f"this route needs scope {scope!r}; the token has {', '.join(sorted(token.scopes))}")
    return Principal(token.id, identity, token.scopes)
