"""The schedule search, CI-sized: 1,500 seeded schedules over every fault the simulator knows.

Each seed draws a whole schedule (`tests.sim.search.draw_schedule`) and must
run without a fork, a certificate-less block, a tx committed twice, a replica
that signs twice for one slot or cannot restart, a message that costs an
honest replica too many signature checks, a stall once the network is fair,
or an honest replica that does not vote again after the last fault healed.
`make sim` runs the long search over 10,000 seeds. A seed that fails for a
finding not fixed yet is left out of `test_schedule_search` and run on its
own as a strict expected failure naming the finding, so that the fix flips
it (seeds 413 and 561 were, until view synchronisation: a replica that
missed a view change never voted again).
"""

from __future__ import annotations

import pytest

from tests.sim.search import search

CI_SEEDS = range(1500)

CHUNKS = 15
"""The seeds are run in this many tests, so that parallel workers share them."""


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_schedule_search(chunk):
    failures = search(CI_SEEDS[chunk::CHUNKS])
    assert not failures, "\n".join(map(str, failures))
