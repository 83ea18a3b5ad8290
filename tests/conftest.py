"""Test-wide settings: hypothesis runs derandomized (seeded from each test) when CI is set.

Locally, hypothesis explores new examples on every run; in CI the same
examples run every time, so a landing is reproducible. Either way a failure
prints the example and the seed that reproduce it.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
