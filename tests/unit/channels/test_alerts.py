"""The puller's alert rules over its state."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from channels.alerts import ALERT_NAMES, FAILING_AFTER, LAG_GRACE_S, LAG_POLLS, evaluate_alerts
from channels.state import ChannelRow

ROOT = Path(__file__).resolve().parents[3]
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


def test_the_prometheus_rules_are_the_puller_rules_over_its_figures() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    (group,) = [group for group in rules["groups"] if group["name"] == "oms-ledger-channels"]
    assert sorted(rule["labels"]["rule"] for rule in group["rules"]) == sorted(ALERT_NAMES)
    by_rule = {rule["labels"]["rule"]: rule["expr"] for rule in group["rules"]}
    assert f">= {FAILING_AFTER}" in by_rule["channel_failing"]
    assert f"{LAG_POLLS} * oms_channel_poll_seconds + {LAG_GRACE_S:.0f}" in by_rule["channel_lagging"]
