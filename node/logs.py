"""How a running node logs: one JSON object a line for log collectors, or plain text for people.

A JSON line holds the time (UTC, ISO 8601 with milliseconds), the level, the
logger, the message, the fields a caller passed with `extra=`, and the
traceback of an exception if there was one. The startup line (`log_startup`)
is always written, whatever the level: it says which release runs which node
of which chain, at what height, reached where, with which peers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

FORMATS = ("json", "text")
"""The values of `log_format` (config) and `--log-format` (start)."""

STARTUP_LOGGER = "omsnode"
"""The logger of the startup line, which logs at INFO whatever the node's level."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
"""Attributes every log record has; any other attribute came from `extra=` and goes into the JSON line."""


def get_release() -> str:
    """The installed release of the node."""
    try:
        return version("oms-ledger")
    except PackageNotFoundError:
        return "unknown"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure_logging(log_format: str, level: str) -> None:
    """Send every logger's records at `level` or above to stderr in `log_format` (`json` or `text`)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: choose one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger(STARTUP_LOGGER).setLevel(logging.INFO)


def log_startup(chain_id: str, node_id: str, role: str, height: int, advertise: str, peers: dict[str, str]) -> None:
    """The first line a node logs once it runs."""
    logging.getLogger(STARTUP_LOGGER).info(
        "omsnode %s started: chain %s, node %s (%s), height %d, advertised at %s, %d peers",
        get_release(),
        chain_id,
        node_id,
        role,
        height,
        advertise,
        len(peers),
        extra={
            "event": "start",
            "release": get_release(),
            "chain_id": chain_id,
            "node_id": node_id,
            "role": role,
            "height": height,
            "advertise": advertise,
            "peers": peers,
        },
    )
