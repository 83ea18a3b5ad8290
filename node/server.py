"""Running a node: the HTTP server (uvicorn) with the node inside it.

The server runs on uvloop with the httptools parser: every consensus message
is one HTTP request, so the per-request cost of the event loop and the parser
is on the critical path of every block.
"""

from __future__ import annotations

from pathlib import Path

import uvicorn

from node.api.app import create_app
from node.config import NodeConfig


def serve(home: Path, state_sync: bool | None = None) -> None:
    """Run the node of `home` until interrupted (`state_sync` as in `Node`)."""
    config = NodeConfig.load(home)
    app = create_app(home, state_sync)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
