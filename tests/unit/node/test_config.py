"""The test-only fault settings of a node (clock offset, link faults): refused unless it was made for fault tests."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from node.config import CLIENTS_DIR, LINK_FAULTS_FILE, NodeConfig
from node.home import create_network
from node.node import Node


def test_a_clock_offset_is_refused_without_test_faults(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test-only"):
        NodeConfig(node_id="node-0", test_clock_offset_ms=60_000)
    (tmp_path / "config.toml").write_text('node_id = "node-0"\ntest_clock_offset_ms = -5\n')
    with pytest.raises(ValueError, match="test-only"):
        NodeConfig.load(tmp_path)


def test_a_node_with_test_faults_reads_its_clock_shifted_by_the_offset(tmp_path: Path) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    config = replace(NodeConfig.load(homes[0]), test_faults=True, test_clock_offset_ms=-180_000)
    config.save(homes[0])
    node = Node(homes[0], clock=lambda: 1_000_000)
    try:
        assert node.clock() == 820_000
    finally:
        asyncio.run(node.close())


def test_a_node_not_made_for_fault_tests_refuses_to_start_with_a_link_fault_file(tmp_path: Path) -> None:
    homes = [tmp_path / f"node-{i}" for i in range(4)]
    create_network(homes, [0] * 4, tmp_path / CLIENTS_DIR)
    (homes[0] / LINK_FAULTS_FILE).write_text('{"cut": ["node-1"]}')
    with pytest.raises(ValueError, match="not made for fault tests"):
        Node(homes[0])
    replace(NodeConfig.load(homes[0]), test_faults=True).save(homes[0])
    node = Node(homes[0])
    try:
        assert node.link_faults is not None and node.link_faults.is_cut("node-1")
    finally:
        asyncio.run(node.close())
