"""The runner's schedule: a channel is pulled until caught up; `--once` gives up on one that keeps failing,
with its failures in the state and the alert in the log."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from channels.fetch import ChannelError
from channels.log import JsonLog
from channels.records import Page
from channels.runner import ONCE_ATTEMPTS, Runner
from channels.state import Counts, State
from tests.unit.channels.conftest import make_config


class ScriptedPuller:
    """A puller whose pages are a script: True (caught up), False (more waiting) or an error to raise."""

    def __init__(self, name: str, state: State, script: list[Any]) -> None:
        self.config = make_config(name=name, adapter="rest", url="https://x.example/o", poll_seconds=0.05)
        self.state = state
        self.script: Iterator[Any] = iter(script)
        self.pulls = 0
        state.save_channel(name, "c0", 0.05)

    def pull_page(self) -> Page:
        self.pulls += 1
        step = next(self.script)
        if isinstance(step, Exception):
            raise step
        self.state.save_page(self.config.name, f"c{self.pulls}", [], [], Counts(), caught_up=step)
        return Page(orders=[], cursor=f"c{self.pulls}", caught_up=step)


def test_once_pulls_each_channel_until_caught_up_and_gives_up_on_a_failing_one(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    out = io.StringIO()
    busy = ScriptedPuller("busy", state, [False, ChannelError("HTTP 503"), False, True])
    broken = ScriptedPuller("broken", state, [ChannelError("HTTP 401")] * ONCE_ATTEMPTS)
    assert Runner([busy, broken], state, JsonLog(out)).run_once() == 1  # type: ignore[list-item]
    assert busy.pulls == 4 and broken.pulls == ONCE_ATTEMPTS
    rows = {row.name: row for row in state.load_channels()}
    assert (rows["busy"].failures, rows["busy"].cursor) == (0, "c4")
    assert (rows["broken"].failures, rows["broken"].last_error) == (ONCE_ATTEMPTS, "HTTP 401")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    alerts = [(e["alert"], e["channel"]) for e in events if e["event"] == "alert"]
    assert alerts == [("channel_failing", "broken")]


def test_once_ends_well_when_every_channel_is_caught_up(tmp_path: Path) -> None:
    state = State(tmp_path / "s.sqlite")
    puller = ScriptedPuller("shop", state, [False, False, True])
    assert Runner([puller], state, JsonLog(io.StringIO())).run_once() == 0  # type: ignore[list-item]
    assert puller.pulls == 3
