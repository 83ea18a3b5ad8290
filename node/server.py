"""Running a node: the HTTP server (uvicorn) with the node inside it."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from node.api.app import create_app
from node.config import NodeConfig


def serve(home: Path) -> None:
    """Run the node of `home` until interrupted."""
    config = NodeConfig.load(home)
    app = create_app(home)
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level, access_log=False)
