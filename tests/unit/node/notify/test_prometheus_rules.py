"""`deploy/prometheus/alerts.yml` holds the node's own alert rules, over metrics a node serves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from node.api.app import create_app
from node.config import CLIENTS_DIR
from node.home import create_network
from node.notify.alerts import RULES

ROOT = Path(__file__).resolve().parents[4]

METRIC = re.compile(r"\boms_[a-z_]+")


def test_every_rule_of_the_node_is_a_prometheus_rule_over_metrics_the_node_serves(tmp_path: Path) -> None:
    groups = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
    rules = [rule for group in groups if group["name"] == "oms-ledger-node" for rule in group["rules"]]
    assert sorted(rule["labels"]["rule"] for rule in rules) == sorted(RULES)
    home = tmp_path / "node-0"
    create_network([home], [0], home / CLIENTS_DIR)
    with TestClient(create_app(home)) as client:
        families = list(text_string_to_metric_families(client.get("/metrics").text))
    served = {family.name for family in families} | {sample.name for family in families for sample in family.samples}
    assert "oms_stock_below_safety_units" in served, "a family with no series yet is served all the same"
    for rule in rules:
        used = set(METRIC.findall(rule["expr"]))
        assert used and used <= served, (rule["alert"], used - served)
