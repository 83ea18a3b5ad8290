"""The puller's alert rules over its state."""

from __future__ import annotations

from dataclasses import replace

from channels.alerts import evaluate_alerts
from channels.state import ChannelRow

NOW = 10_000_000
ROW = ChannelRow(
    name="shop",
    cursor="c",
    poll_seconds=60,
    last_pull_ms=NOW,
    last_success_ms=NOW,
    caught_up_ms=NOW - 1000,
    last_error=None,
    last_error_ms=None,
    failures=0,
    pulled=5,
    committed=5,
    updated=0,
    dead_lettered=0,
    open_dead_letters=0,
    recent_dead_letters=0,
)


def names(row: ChannelRow) -> list[str]:
    return [alert.name for alert in evaluate_alerts(row, NOW)]


def test_a_healthy_channel_raises_nothing() -> None:
    assert names(ROW) == []


def test_each_rule_fires_past_its_bound_and_not_before() -> None:
    assert names(replace(ROW, failures=2, last_error="HTTP 503")) == []
    assert names(replace(ROW, failures=3, last_error="HTTP 503")) == ["channel_failing"]
    assert names(replace(ROW, caught_up_ms=NOW - 240_000)) == []
    assert names(replace(ROW, caught_up_ms=NOW - 241_000)) == ["channel_lagging"]
    assert names(replace(ROW, recent_dead_letters=2, open_dead_letters=2)) == ["dead_letters_growing"]
    assert names(replace(ROW, open_dead_letters=2)) == [], "old dead letters alone are not growing"
