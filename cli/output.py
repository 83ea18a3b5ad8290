"""Printing for the CLI: JSON for scripts, one-line errors for people."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def fail(message: str) -> int:
    """Print `omsnode: error: message` to stderr and return the exit code 1."""
    print(f"omsnode: error: {message}", file=sys.stderr)
    return 1
