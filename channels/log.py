"""The puller's log: one JSON object a line on stderr (`time`, `level`, `event`, then the event's fields)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO


class JsonLog:
    """Writes log lines for one process."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out

    def __call__(self, event: str, *, level: str = "info", **fields: Any) -> None:
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level, "event": event}
        line.update(fields)
        self.out.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        self.out.flush()
