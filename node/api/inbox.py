"""The envelope inbox, `POST /p2p`: peers' frames straight to the node's transport.

Every consensus message is one such request, so the inbox is an ASGI
middleware in front of the routes rather than a FastAPI route: a frame skips
routing, dependency injection and the exception layers, which cost about as
much CPU as handling the frame itself. Every other request passes through.

A body larger than `MAX_INBOX_BYTES` is refused with 413 before it is held in
memory: a declared Content-Length above the limit is refused without reading
anything, and a body streamed without one (or longer than it declared) is cut
off as soon as it passes the limit. Each refusal is counted in
`Node.oversized_requests` and charged to the source's budget of refusals
(`p2p.inbox.SourceBudget`), as every refused frame is: the source is the
client's address. A source whose budget is spent is answered 429 before its
body is read. A frame is answered 202 with `x-accepted`, the number of
envelopes that reached a handler.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from node.api.errors import BodyTooLarge, InvalidRequest
from node.api.limits import read_capped_body
from p2p.envelope import DEFAULT_MAX_ENVELOPE_BYTES
from p2p.errors import Dropped
from p2p.transport import P2P_PATH

MAX_INBOX_BYTES = 2 * DEFAULT_MAX_ENVELOPE_BYTES
"""Largest `/p2p` POST body read: room for the largest envelope a peer accepts, and its framing."""


class InboxMiddleware:
    """Answers `POST /p2p` itself; hands every other request to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != P2P_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        node = scope["app"].state.node
        client = scope.get("client")
        source = client[0] if client else None
        inbox = node.transport.inbox
        if not inbox.admits(source):
            await _respond(send, 429, [(b"retry-after", b"1"), (b"connection", b"close")])
            return
        try:
            body = await read_capped_body(scope, receive, MAX_INBOX_BYTES)
        except BodyTooLarge:
            node.oversized_requests += 1
            inbox.refuse_frame(source, Dropped("oversized", f"frame over {MAX_INBOX_BYTES} bytes"))
            await _respond(send, 413, [(b"connection", b"close")])
            return
        except InvalidRequest:
            return  # the peer left before its frame was complete: nobody to answer
        accepted = await node.transport.receive(body, source)
        await _respond(send, 202, [(b"x-accepted", str(accepted).encode())])


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0"), *headers]})
    await send({"type": "http.response.body", "body": b""})
