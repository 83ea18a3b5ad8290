"""Node clocks: each node reads its own clock, skewed and drifting from simulated time.

Simulated time is the one true time of the run (milliseconds since genesis).
A node's clock starts `offset_ms` away from it and runs `drift_ppm` parts per
million fast (or slow, when negative), so two nodes disagree by a skew that
changes as the run goes on, as real quartz clocks do. A clock that is far
off may be stepped forward once (`jump_at_ms`, `jump_ms`), as a time daemon
corrects it. A clock never runs backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ClockFault:
    """How one node's clock departs from true time."""

    offset_ms: int = 0
    """Where the clock stands at time 0, relative to true time."""
    drift_ppm: int = 0
    """How many milliseconds per million it gains (or loses, if negative); above -1,000,000."""
    jump_at_ms: int | None = None
    """True time at which the clock is stepped forward by `jump_ms`; never if None."""
    jump_ms: int = 0

    def read(self, genesis_time_ms: int, now_ms: int) -> int:
        """The node's clock reading when the true time is `now_ms` after genesis."""
        jumped = self.jump_ms if self.jump_at_ms is not None and now_ms >= self.jump_at_ms else 0
        return genesis_time_ms + self.offset_ms + now_ms + now_ms * self.drift_ppm // 1_000_000 + jumped


def make_clock(fault: ClockFault, genesis_time_ms: int, true_time: Callable[[], int]) -> Callable[[], int]:
    """The clock a node's app reads: `fault` applied to the simulator's true time."""
    return lambda: fault.read(genesis_time_ms, true_time())
