"""CatchUp hands the replica the synced head's certificate, and only when it certifies that head."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from node.catchup import CatchUp
from p2p.sync import SyncReport


class FakeExecutor:
    """Heights only: commit moves the head to the block's height."""

    def __init__(self) -> None:
        self.height = 0

    def head(self) -> tuple[int, bytes]:
        return self.height, self.height.to_bytes(32, "big")

    def commit(self, block: Any, certificate: Any) -> list:
        self.height = block.height
        return []


class FakeSync:
    """Applies blocks start+1..start+count with certificates named after their height."""

    def __init__(self, apply: Any, count: int, last_certificate_height: int | None = None) -> None:
        self.apply = apply
        self.count = count
        self.last_certificate_height = last_certificate_height

    async def sync(self, height: int, head_hash: bytes) -> SyncReport:
        for h in range(height + 1, height + self.count + 1):
            cert_height = h
            if h == height + self.count and self.last_certificate_height is not None:
                cert_height = self.last_certificate_height
            self.apply(SimpleNamespace(height=h, txs=()), SimpleNamespace(height=cert_height))
        return SyncReport(height, height + self.count, height + self.count, blocks=self.count)


def run_catchup(count: int, last_certificate_height: int | None = None) -> list[tuple[int, Any]]:
    synced: list[tuple[int, Any]] = []
    catchup = CatchUp(
        FakeExecutor(),  # type: ignore[arg-type]
        lambda apply: FakeSync(apply, count, last_certificate_height),  # type: ignore[arg-type,return-value]
        lambda block, receipts: None,
        lambda height, certificate: synced.append((height, certificate)),
    )
    asyncio.run(catchup._sync())
    return synced


def test_synced_head_certificate_is_passed_on():
    ((height, certificate),) = run_catchup(5)
    assert height == 5
    assert certificate is not None and certificate.height == 5


def test_no_certificate_when_nothing_was_synced():
    assert run_catchup(0) == [(0, None)]


def test_a_certificate_for_another_height_is_not_passed_on():
    assert run_catchup(3, last_certificate_height=2) == [(3, None)]
