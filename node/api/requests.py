"""Counting API requests by route, method and status, for `/metrics` (`oms_api_requests_total`).

An ASGI middleware in front of the routes: once a request is answered it
counts it under its route's template (`/v1/orders/{order_id}`, never the
path itself, so the number of series stays that of the routes), its method
and its status; a request no route matched counts as `unmatched`. A request
whose handler raised counts as 500. `/p2p` frames are answered before it
(`node.api.inbox`) and not counted: they are consensus, not API.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestMetricsMiddleware:
    """Counts every HTTP request the app answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            node = getattr(scope["app"].state, "node", None)
            if node is not None:  # None only for an app served without its lifespan (the OpenAPI in tests)
                template = getattr(scope.get("route"), "path", None) or "unmatched"
                node.metrics.api_requests.labels(template, scope["method"], str(status)).inc()
