"""Headers every answer carries: its request id, and where the caller's token stands against its rate.

Every answer, whichever layer gives it (a route, an error handler, the body
limit, the envelope inbox), has `X-Request-Id`: the client's own, when it
sent one that is sane (`REQUEST_ID`: 1 to 128 letters, digits and `._:-`),
else a new random one, so a client and the node's operator can name one
request to each other. An answer to a request counted against a token's rate
(`node.api.deps.authorize`) also has the `RateLimit` headers of its `Quota`
(`node.api.limits`); a refusal for rate carries them itself.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
"""A request id the node echoes; any other is replaced by one of its own."""

REQUEST_ID_HEADER = b"x-request-id"


def choose_request_id(scope: Scope) -> bytes:
    """The client's request id if it sent a sane one, else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and REQUEST_ID.fullmatch(value):
            return bytes(value)
    return uuid.uuid4().hex.encode()


class AnswerHeadersMiddleware:
    """Adds `X-Request-Id` to every HTTP answer, and the `RateLimit` headers when the request was counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(scope)
        state = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id)]
                quota = state.get("quota")
                if quota is not None:
                    headers += [(name.encode(), value.encode()) for name, value in quota.headers().items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
