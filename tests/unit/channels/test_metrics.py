"""The puller's `/metrics`: its figures and alerts per channel, read from its state file at each scrape."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from channels.metrics import serve_metrics
from channels.state import Counts, KnownOrder, NewDeadLetter, State
from devnet.network import free_ports


def test_a_scrape_shows_each_channel_figures_and_alerts(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    state.save_channel("shop", "c0", 60)
    known = [KnownOrder("1", "SO1", "t", False, False)]
    dead = [NewDeadLetter("2", "unknown_sku", "no such SKU", "{}")]
    state.save_page("shop", "c1", known, dead, Counts(pulled=2, committed=1), caught_up=True)
    for _ in range(3):
        state.save_failure("shop", "HTTP 503")
    (port,) = free_ports(1)
    server = serve_metrics(port, tmp_path / "s.sqlite")
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        server.shutdown()
        server.server_close()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    shop = (("channel", "shop"),)
    assert samples[("oms_channel_pulled_total", shop)] == 2
    assert samples[("oms_channel_committed_total", shop)] == 1
    assert samples[("oms_channel_dead_lettered_total", shop)] == 1
    assert samples[("oms_channel_dead_letters_open", shop)] == 1
    assert samples[("oms_channel_failures", shop)] == 3
    assert samples[("oms_channel_alert", (("alert", "channel_failing"), ("channel", "shop")))] == 1
    assert samples[("oms_channel_alert", (("alert", "dead_letters_growing"), ("channel", "shop")))] == 1
    assert samples[("oms_channel_alert", (("alert", "channel_lagging"), ("channel", "shop")))] == 0
