"""The puller's figures for Prometheus, read from its state at each scrape (`--metrics-port`).

Per channel: orders pulled, committed, updated and dead-lettered (counters),
open dead letters, lag (seconds since last caught up), pulls failed in a row,
the time of the last successful pull, and one `oms_channel_alert` series per
alert rule that is 1 while it fires (`channels.alerts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from channels.alerts import ALERT_NAMES, compute_lag_s, evaluate_alerts
from channels.state import State, now_ms

COUNTERS = (
    ("pulled", "Channel orders read that were new or changed"),
    ("committed", "New ledger orders committed from the channel"),
    ("updated", "Cancellations and payments committed for the channel's orders"),
    ("dead_lettered", "Channel orders put in the dead letters"),
)


class ChannelCollector(Collector):
    """Reads a puller's state file at each scrape (its own connection: scrapes come on another thread)."""

    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path

    def collect(self) -> Iterator[Metric]:
        state = State(self.state_path)
        try:
            rows = state.load_channels()
        finally:
            state.close()
        now = now_ms()
        counters = {name: CounterMetricFamily(f"oms_channel_{name}", doc, labels=["channel"]) for name, doc in COUNTERS}
        open_letters = GaugeMetricFamily(
            "oms_channel_dead_letters_open", "Dead letters not resolved", labels=["channel"]
        )
        lag = GaugeMetricFamily(
            "oms_channel_lag_seconds", "Seconds since the channel was caught up", labels=["channel"]
        )
        failures = GaugeMetricFamily("oms_channel_failures", "Pulls failed in a row", labels=["channel"])
        success = GaugeMetricFamily(
            "oms_channel_last_success_timestamp_seconds", "Time of the last successful pull", labels=["channel"]
        )
        alert = GaugeMetricFamily("oms_channel_alert", "1 while the alert fires", labels=["channel", "alert"])
        for row in rows:
            for name, family in counters.items():
                family.add_metric([row.name], getattr(row, name))
            open_letters.add_metric([row.name], row.open_dead_letters)
            seconds = compute_lag_s(row, now)
            if seconds is not None:
                lag.add_metric([row.name], seconds)
            failures.add_metric([row.name], row.failures)
            if row.last_success_ms is not None:
                success.add_metric([row.name], row.last_success_ms / 1000)
            firing = {a.name for a in evaluate_alerts(row, now)}
            for name in ALERT_NAMES:
                alert.add_metric([row.name, name], 1.0 if name in firing else 0.0)
        yield from counters.values()
        yield from (open_letters, lag, failures, success, alert)


def serve_metrics(port: int, state_path: Path, host: str = "127.0.0.1") -> None:
    """Serve `/metrics` on `host:port` from a daemon thread."""
    registry = CollectorRegistry()
    registry.register(ChannelCollector(state_path))
    start_http_server(port, addr=host, registry=registry)
