"""Test-wide settings: hypothesis runs derandomized (seeded from each test) when CI is set; the longest files first.

Locally, hypothesis explores new examples on every run; in CI the same
examples run every time, so a landing is reproducible. Either way a failure
prints the example and the seed that reproduce it.

`make test` spreads the files over worker processes, each file on one worker
(its devnet is shared by its tests); the files that take minutes are handed
out first (`LONG_FIRST`), so the others fill the workers around them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


LONG_FIRST = (
    "tests/e2e/test_chaos.py",
    "tests/e2e/test_network.py",
    "tests/e2e/test_sync.py",
    "tests/adversarial/test_devnet.py",
    "tests/e2e/test_upgrade.py",
    "tests/e2e/test_governance.py",
    "tests/e2e/test_channels.py",
)
"""The files that take longest (each runs its tests on one worker), longest first: they start before the rest so
that the run does not end waiting on one of them while the other workers idle. With `--no-loadscope-reorder`
the workers take files in this order, and every other file after them in the order collected."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of `LONG_FIRST` first, in its order; the order within each file is kept."""
    rank = {path: n for n, path in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
