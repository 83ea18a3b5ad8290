"""Running a node: the HTTP server (uvicorn) with the node inside it.

The server runs on uvloop with the httptools parser: every consensus message
is one HTTP request, so the per-request cost of the event loop and the parser
is on the critical path of every block.

uvicorn closes a connection idle between requests (keep-alive timeout) but
sets no time limit on receiving a request, so a client that sends half a
request line, or headers one byte at a time, would hold its connection (and
a body it never finishes would hold a request task) forever. The server's
protocol, `DeadlineProtocol`, closes any connection whose request is not
complete, headers and body, within `REQUEST_DEADLINE_S` of its first byte
(or of the connection opening).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from node.api.app import create_app
from node.config import NodeConfig

REQUEST_DEADLINE_S = 30.0
"""Longest a client may take to send one whole request (a 16 MiB body at 1 MB/s fits)."""

log = logging.getLogger(__name__)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for receiving each request."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_DEADLINE_S, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning(
                "closing connection from %s: no complete request within %.0f s", self.client, REQUEST_DEADLINE_S
            )
            self.transport.close()


SHUTDOWN_GRACE_S = 3
"""How long a stopping node waits for requests in flight (a change-feed long-poll may wait a minute)."""


def serve(home: Path, state_sync: bool | None = None) -> None:
    """Run the node of `home` until interrupted (`state_sync` as in `Node`)."""
    config = NodeConfig.load(home)
    origins = [origin.strip() for origin in config.cors_origins.split(",") if origin.strip()]
    app = create_app(home, state_sync, origins)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        loop="uvloop",
        http=DeadlineProtocol,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
