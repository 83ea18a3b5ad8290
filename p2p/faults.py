"""The fault layer: links cut, or messages dropped, delayed or duplicated, as a fault test asks.

Nodes of a devnet share one network interface, so a partition cannot be
made with a firewall: instead each node's transport obeys a control file in
its home (`node.config.LINK_FAULTS_FILE`), read again whenever it changes.
It holds

    {"cut": ["node-1"], "drop": 0.1, "duplicate": 0.1, "delay": 0.1, "delay_ms": 300, "seed": 7,
     "disk_full": false}

- `cut`: peers this node neither sends to nor fetches blocks or snapshots
  from (a partition is every node cutting the other side);
- `drop`, `duplicate`: the chance that one outgoing envelope is left out of
  its batch, or sent twice in it;
- `delay`, `delay_ms`: the chance that one outgoing batch waits `delay_ms`
  before it leaves (the peer's queue waits behind it, as on a slow link);
- `seed`: for the random draws (absent: seeded from the system);
- `disk_full`: every write of the node's consensus log fails as on a full
  disk (the node's log obeys this one, through `is_disk_full`).

The layer exists only on a node made for fault tests (`NodeConfig.test_faults`);
any other node refuses to start while the file is in its home. A file that
does not parse or holds values out of range is logged and obeyed as no
faults at all.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 64 * 1024
"""Largest control file read."""

MAX_DELAY_MS = 60_000
"""Longest delay a control file may ask for."""

RELOAD_EVERY_S = 0.2
"""How often the file's modification time is looked at."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaultSpec:
    """What a control file asks for (see the module docstring)."""

    cut: frozenset[str] = field(default_factory=frozenset)
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    delay_ms: int = 0
    seed: int | None = None
    disk_full: bool = False


NO_FAULTS = FaultSpec()


def parse_spec(text: str) -> FaultSpec:
    """The spec a control file holds; `ValueError` with the reason when it is not one."""
    wire = json.loads(text)
    if not isinstance(wire, dict):
        raise ValueError("a link fault file holds one JSON object")
    unknown = sorted(set(wire) - {"cut", "drop", "duplicate", "delay", "delay_ms", "seed", "disk_full"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}")
    cut = wire.get("cut", [])
    if not isinstance(cut, list) or not all(isinstance(peer, str) for peer in cut):
        raise ValueError("cut must be a list of node ids")
    chances = {name: wire.get(name, 0.0) for name in ("drop", "duplicate", "delay")}
    for name, chance in chances.items():
        if isinstance(chance, bool) or not isinstance(chance, int | float) or not 0.0 <= chance <= 1.0:
            raise ValueError(f"{name} must be a chance between 0 and 1")
    delay_ms, seed = wire.get("delay_ms", 0), wire.get("seed")
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or not 0 <= delay_ms <= MAX_DELAY_MS:
        raise ValueError(f"delay_ms must be an integer from 0 to {MAX_DELAY_MS}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError("seed must be an integer")
    disk_full = wire.get("disk_full", False)
    if not isinstance(disk_full, bool):
        raise ValueError("disk_full must be true or false")
    chance = {name: float(value) for name, value in chances.items()}
    return FaultSpec(frozenset(cut), **chance, delay_ms=delay_ms, seed=seed, disk_full=disk_full)


class LinkFaults:
    """The faults a node's control file asks for now."""

    def __init__(self, path: Path, clock: Any = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._spec = NO_FAULTS
        self._stamp: float | None = None
        self._looked = float("-inf")
        self._rng = random.Random()

    @property
    def spec(self) -> FaultSpec:
        """The spec in force, the file read again if it changed."""
        now = self._clock()
        if now - self._looked >= RELOAD_EVERY_S:
            self._looked = now
            self._reload()
        return self._spec

    def _reload(self) -> None:
        try:
            stamp: float | None = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        spec = NO_FAULTS
        if stamp is not None:
            try:
                with open(self.path, "rb") as source:
                    data = source.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:
                    raise ValueError(f"longer than {MAX_FILE_BYTES} bytes")
                spec = parse_spec(data.decode())
            except (OSError, ValueError) as exc:
                log.error("link faults: %s is not obeyed: %s", self.path, exc)
        if spec != self._spec:
            log.warning("link faults now: %s", spec)
        self._spec = spec
        self._rng = random.Random(spec.seed)

    def is_disk_full(self) -> bool:
        """Whether the node's consensus log must fail every write now."""
        return self.spec.disk_full

    def is_cut(self, peer_id: str) -> bool:
        """Whether the link to `peer_id` is cut."""
        return peer_id in self.spec.cut

    def plan(self, peer_id: str, batch: list[bytes]) -> tuple[list[bytes], float]:
        """What of `batch` goes to `peer_id` (envelopes dropped or doubled), and after how many seconds."""
        spec = self.spec
        if peer_id in spec.cut:
            return [], 0.0
        if spec == NO_FAULTS:
            return batch, 0.0
        sent = []
        for envelope in batch:
            if self._rng.random() < spec.drop:
                continue
            sent.append(envelope)
            if self._rng.random() < spec.duplicate:
                sent.append(envelope)
        delay = spec.delay_ms / 1000 if self._rng.random() < spec.delay else 0.0
        return sent, delay
