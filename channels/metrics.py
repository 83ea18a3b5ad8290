"""The puller's figures for Prometheus, read from its state at each scrape (`--metrics-port`).

Per channel: orders pulled, committed, updated and dead-lettered (counters),
open dead letters, lag (seconds since last caught up), pulls failed in a row,
the poll interval, the time of the last successful pull, and one
`oms_channel_alert` series per alert rule that is 1 while it fires
(`channels.alerts`; `deploy/prometheus/alerts.yml`, group `oms-ledger-channels`, has the same rules
for Prometheus).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

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


GAUGES = (
    ("dead_letters_open", "Dead letters not resolved"),
    ("lag_seconds", "Seconds since the channel was last caught up"),
    ("failures", "Pulls failed in a row"),
    ("poll_seconds", "Seconds between pulls once caught up"),
    ("last_success_timestamp_seconds", "Time of the last successful pull"),
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
        gauges = {name: GaugeMetricFamily(f"oms_channel_{name}", doc, labels=["channel"]) for name, doc in GAUGES}
        alert = GaugeMetricFamily("oms_channel_alert", "1 while the alert fires", labels=["channel", "alert"])
        for row in rows:
            for name, family in counters.items():
                family.add_metric([row.name], getattr(row, name))
            lag = compute_lag_s(row, now)
            values = {
                "dead_letters_open": row.open_dead_letters,
                "lag_seconds": lag,
                "failures": row.failures,
                "poll_seconds": row.poll_seconds,
                "last_success_timestamp_seconds": None if row.last_success_ms is None else row.last_success_ms / 1000,
            }
            for name, value in values.items():
                if value is not None:
                    gauges[name].add_metric([row.name], value)
            firing = {a.name for a in evaluate_alerts(row, now)}
            for name in ALERT_NAMES:
                alert.add_metric([row.name, name], 1.0 if name in firing else 0.0)
        yield from counters.values()
        yield from gauges.values()
        yield alert


def serve_metrics(port: int, state_path: Path, host: str = "127.0.0.1") -> WSGIServer:
    """Serve `/metrics` on `host:port` from a daemon thread; the server (to shut down)."""
    registry = CollectorRegistry()
    registry.register(ChannelCollector(state_path))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
