"""Faults of the links between nodes: partitions and lossy links, through each node's fault layer.

(`set_link_faults` writes the control file, which also holds the full disk of `devnet.chaos.disk`.)

The nodes share one network interface, so the links are cut or made lossy by
the control file each node's transport obeys (`p2p.faults`): a partition is
every node cutting the nodes on the other side; a lossy network is every node
dropping, delaying and duplicating what it sends, each with a chance.
"""

from __future__ import annotations

import json
import os
from typing import Any

from devnet.chaos.stage import ScenarioError, Stage
from node.config import LINK_FAULTS_FILE, NodeConfig

LOSSY = {"drop": 0.1, "duplicate": 0.1, "delay": 0.2, "delay_ms": 300}
"""The chances of `lossy`: a tenth of the envelopes dropped, a tenth sent twice, a fifth of the batches late."""

SETTLE_S = 2.0
"""How long after a split the chain may still grow by what was already under way."""


def set_link_faults(stage: Stage, index: int, spec: dict[str, Any] | None) -> None:
    """Write (or, for None, remove) node `index`'s control file, atomically."""
    home = stage.devnet.node(index).home
    if not NodeConfig.load(home).test_faults:
        raise ScenarioError(f"node {index} does not accept test faults: make the devnet with `devnet chaos`")
    path = home / LINK_FAULTS_FILE
    if spec is None:
        path.unlink(missing_ok=True)
        return
    draft = path.with_suffix(".draft")
    draft.write_text(json.dumps(spec))
    os.replace(draft, path)


def split(stage: Stage, *sides: set[int]) -> None:
    """Cut every link between nodes on different sides."""
    ids = {row["index"]: row["node_id"] for row in stage.statuses() if row["up"]}
    if len(ids) < len(stage.devnet.nodes):
        raise ScenarioError("a node does not answer: its id is unknown")
    for side in sides:
        for index in side:
            set_link_faults(stage, index, {"cut": sorted(ids[other] for other in ids if other not in side)})


def heal_links(stage: Stage) -> None:
    for node in stage.devnet.nodes:
        set_link_faults(stage, node.index, None)


def partition(stage: Stage) -> None:
    """One node cut off for `seconds` (the other three go on), then a 2|2 split for `seconds` (no side holds a
    quorum: no block may commit), then every link healed."""
    everyone = {node.index for node in stage.devnet.nodes}
    alone = stage.rng.choice(sorted(everyone))
    stage.fault(f"cut node {alone} off from the others")
    split(stage, {alone}, everyone - {alone})
    stage.pause(stage.seconds)
    pair = set(stage.rng.sample(sorted(everyone), 2))
    split(stage, pair, everyone - pair)
    stage.note(f"split the network {sorted(pair)} | {sorted(everyone - pair)}")
    stage.pause(SETTLE_S)
    before = stage.height()
    stage.pause(stage.seconds)
    grown = stage.height() - before
    if grown:
        stage.problems.append(f"{grown} blocks committed while no side of a 2|2 split held a quorum")
    heal_links(stage)
    stage.heal("healed every link")


def lossy(stage: Stage) -> None:
    """Every node drops, delays and duplicates what it sends (`LOSSY`) for `seconds`; then clean links."""
    stage.fault(f"make every link lossy: {LOSSY}")
    for node in stage.devnet.nodes:
        set_link_faults(stage, node.index, {**LOSSY, "seed": stage.rng.randrange(2**31)})
    stage.pause(stage.seconds)
    heal_links(stage)
    stage.heal("clean links again")
