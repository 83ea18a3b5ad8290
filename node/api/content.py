"""Request bodies are JSON whatever `Content-Type` they declare, but on the routes that read another type.

An integrator's first call often declares no type, `text/plain` (curl's
`-d` says `application/x-www-form-urlencoded`) or `application/json;
charset=utf-8`: each is read as the JSON it is. The only bodies read as
something else are those of the routes that take another type as well:
msgpack on `POST /v1/txs`, CSV on `POST /v1/reconciliations/stock`
(`OWN_TYPES`). A body that is not JSON is then refused as such: 422
`invalid_request` naming the body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

OWN_TYPES: dict[str, bytes] = {"/v1/txs": b"application/msgpack", "/v1/reconciliations/stock": b"text/csv"}
"""The routes that read a body of another type than JSON, and that type."""

JSON = b"application/json"


def get_media_type(scope: Scope) -> bytes:
    """The declared media type of a request's body, lower case, without parameters (empty if none)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).split(b";")[0].strip().lower()
    return b""


class JsonBodyMiddleware:
    """Declares every request body JSON to the routes, but a body of its route's own other type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            media_type = get_media_type(scope)
            if media_type != JSON and media_type != OWN_TYPES.get(scope["path"]):
                headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", JSON)]}
        await self.app(scope, receive, send)
