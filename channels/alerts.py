"""The puller's alert rules, evaluated over its state: a channel failing, lagging behind, dead letters growing.

Each rule is a pure function of a channel's row of the state and the time,
so `channel status`, the puller's log and its `/metrics` all say the same;
`deploy/prometheus/alerts.yml` (group `oms-ledger-channels`) holds the same rules over the
`oms_channel_*` figures for Prometheus users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from channels.state import ChannelRow

AlertName = Literal["channel_failing", "channel_lagging", "dead_letters_growing"]

FAILING_AFTER = 3
"""Pulls failed in a row that make a channel failing."""

LAG_POLLS = 3
"""Poll intervals a channel may go without being caught up (plus `LAG_GRACE_S`) before it is lagging."""

LAG_GRACE_S = 60.0
"""Seconds of lag always allowed (a large page takes time)."""

ALERT_NAMES: tuple[AlertName, ...] = ("channel_failing", "channel_lagging", "dead_letters_growing")


@dataclass(frozen=True)
class Alert:
    """A rule that fires for a channel."""

    name: AlertName
    channel: str
    message: str


def compute_lag_s(row: ChannelRow, now_ms: int) -> float | None:
    """Seconds since the channel was last caught up (None: never yet)."""
    return None if row.caught_up_ms is None else max(0.0, (now_ms - row.caught_up_ms) / 1000)


def evaluate_alerts(row: ChannelRow, now_ms: int) -> list[Alert]:
    """The alerts that fire for one channel now."""
    alerts = []
    if row.failures >= FAILING_AFTER:
        alerts.append(Alert("channel_failing", row.name, f"{row.failures} pulls failed in a row: {row.last_error}"))
    lag = compute_lag_s(row, now_ms)
    allowed = LAG_POLLS * row.poll_seconds + LAG_GRACE_S
    if lag is not None and lag > allowed:
        alerts.append(Alert("channel_lagging", row.name, f"last caught up {lag:.0f} s ago (allowed {allowed:.0f} s)"))
    if row.recent_dead_letters > 0:
        alerts.append(
            Alert("dead_letters_growing", row.name, f"{row.recent_dead_letters} dead letters opened in the last hour")
        )
    return alerts
