"""Running a node: the HTTP server (uvicorn) with the node inside it.

The server runs on uvloop with the httptools parser: every consensus message
is one HTTP request, so the per-request cost of the event loop and the parser
is on the critical path of every block.

uvicorn closes a connection idle between requests (keep-alive timeout) but
sets no time limit on receiving a request, so a client that sends half a
request line, or headers one byte at a time, would hold its connection (and
a body it never finishes would hold a request task) forever; nor does it
bound how many connections are open at once, and each one costs a file
descriptor, buffers and, once it sends, a request task. The server's
protocol, `BoundedProtocol`, closes any connection whose request is not
complete, headers and body, within `REQUEST_DEADLINE_S` of its first byte
(or of the connection opening), and closes a new connection at once while
`max_connections` are open (`max_connections` in `config.toml`), before it
reads anything: the client sees the connection closed and tries again later.

Answers have a write deadline too: a connection whose write buffer stays
over its high-water mark (`ANSWER_BUFFER_BYTES`) for `WRITE_DEADLINE_S` (the
client does not read what it asked for) is aborted, which drops what was
buffered for it. Answer bodies reach the connection in pieces
(`node.api.limits.AnswerPacing`), each written once the buffer drained, so
what one connection buffers stays about a piece plus the high-water mark.

Large request bodies are read, copied and parsed in buffers of many
megabytes. glibc's allocator serves a buffer that large from the heap once
it has seen such buffers freed (its threshold for `mmap` rises with them),
and a heap does not shrink below what is still in use above it, so a burst of
large bodies left the node holding hundreds of megabytes it no longer used.
`serve` pins the threshold (`return_large_buffers`): every buffer over
`MMAP_THRESHOLD_BYTES` is mapped on its own and given back to the system
when freed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import socket
import struct
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from node.api.app import create_app
from node.config import NodeConfig
from node.logs import configure_logging

REQUEST_DEADLINE_S = 30.0
"""Longest a client may take to send one whole request (a 16 MiB body at 1 MB/s fits)."""

WRITE_DEADLINE_S = 10.0
"""Longest a connection's answer may wait unread (its buffer over the high-water mark) before it is aborted."""

ANSWER_BUFFER_BYTES = 256 * 1024
"""A connection's write buffer above which the server waits for the client to read (its high-water mark)."""

KERNEL_SEND_BUFFER_BYTES = 256 * 1024
"""The kernel's send buffer of a connection (Linux doubles it), instead of growing to 4 MiB by itself: a client
that does not read holds at most this much kernel memory (30 such clients held 120 MB, which put every
connection of the machine under memory pressure), and a reader 50 ms away still gets 10 MB/s."""

REFUSAL_LOG_INTERVAL_S = 10.0
"""Refused connections are logged at most once per this interval (a flood would fill the log)."""

M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter for the size from which allocations are mapped on their own."""

MMAP_THRESHOLD_BYTES = 128 * 1024
"""Buffers larger than this are mapped on their own, and unmapped when freed (glibc's initial threshold)."""

log = logging.getLogger(__name__)


def return_large_buffers() -> None:
    """Have glibc map every buffer over `MMAP_THRESHOLD_BYTES` on its own, so that it goes back to the system
    when freed; nothing happens where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None or not mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        log.info("the C library's allocator keeps its own threshold for large buffers")


GC_YOUNG_THRESHOLD = 50_000
"""Container allocations between two collections of the youngest generation (CPython's default is 700)."""


def tune_garbage_collection() -> None:
    """Collect less often, and never look again at what the node set up before serving.

    Executing a block allocates millions of short-lived maps and lists (decoded records, payloads), and
    CPython's default thresholds then run a young collection every 700 of them and, every so often, a full one
    over everything the process holds, which grows with its caches: about a sixth of a node's CPU under load.
    Reference counting frees these values anyway (they hold no cycles); the collector is only for cycles, and
    those are rare here. `gc.freeze()` moves what exists now (modules, contracts, the app) out of the
    collector's sight for good.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for receiving each request and a cap on open connections."""

    max_connections = NodeConfig.max_connections
    """Most connections open at once; `make_protocol` sets it from the node's config."""
    write_deadline_s = WRITE_DEADLINE_S
    refused = 0
    """Connections closed at once because `max_connections` were open (over the server's life)."""
    abandoned = 0
    """Connections aborted because their client left an answer unread past the write deadline."""
    _logged_at = -REFUSAL_LOG_INTERVAL_S
    _deadline: asyncio.TimerHandle | None = None
    _write_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse()
            return
        transport.set_write_buffer_limits(high=ANSWER_BUFFER_BYTES)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER_BYTES)
        self._arm()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.write_deadline_s, self._abandon)

    def resume_writing(self) -> None:
        self._cancel_write_deadline()
        super().resume_writing()

    def _cancel_write_deadline(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _abandon(self) -> None:
        self._write_deadline = None
        type(self).abandoned += 1
        log.warning(
            "aborting connection from %s: its answer lay unread for %.1f s (%d bytes buffered)",
            self.client,
            self.write_deadline_s,
            self.transport.get_write_buffer_size(),
        )
        # Reset, not close: the kernel drops what it buffered instead of trying to send it for minutes, and the
        # requests the client pipelined behind it are never answered.
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.pipeline.clear()
        if self.cycle is not None:
            self.cycle.disconnected = True
        self.transport.abort()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._cancel_write_deadline()
        super().connection_lost(exc)

    def _refuse(self) -> None:
        cls = type(self)
        cls.refused += 1
        now = time.monotonic()
        if now - cls._logged_at >= REFUSAL_LOG_INTERVAL_S:
            cls._logged_at = now
            log.warning(
                "closing connection from %s: %d connections are open, the most allowed (%d refused so far)",
                self.client,
                self.max_connections,
                cls.refused,
            )
        self.transport.close()

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


def make_protocol(max_connections: int, write_deadline_s: float = WRITE_DEADLINE_S) -> type[BoundedProtocol]:
    """The server protocol that keeps at most `max_connections` open and aborts a connection whose answer lies
    unread for `write_deadline_s`."""
    settings = {"max_connections": max_connections, "write_deadline_s": write_deadline_s, "refused": 0, "abandoned": 0}
    return type("BoundedProtocol", (BoundedProtocol,), settings)


SHUTDOWN_GRACE_S = 3
"""How long a stopping node waits for requests in flight (a change-feed long-poll may wait a minute)."""


def serve(home: Path, state_sync: bool | None = None, overrides: dict[str, Any] | None = None) -> None:
    """Run the node of `home` until interrupted (`state_sync` as in `Node`; `overrides`: settings of its config
    that the command line replaces for this run, such as `host`, `port`, `advertise`, `log_format`)."""
    config = replace(NodeConfig.load(home), **(overrides or {}))
    configure_logging(config.log_format, config.log_level)
    return_large_buffers()
    origins = [origin.strip() for origin in config.cors_origins.split(",") if origin.strip()]
    app = create_app(home, state_sync, origins, config)
    tune_garbage_collection()
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http=make_protocol(config.max_connections),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        ssl_certfile=config.tls_cert_file or None,
        ssl_keyfile=config.tls_key_file or None,
    )
