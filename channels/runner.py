"""Running the pullers of a config: each channel pulled page after page until caught up, then every
`poll_seconds`; a failing channel backs off without holding up the others.

With `once` every channel is pulled until it is caught up and the run ends
(exit status 0), or ends with 1 once a channel has failed `ONCE_ATTEMPTS`
times in a row (its error is in the log and in `channel status`). The
alert rules are evaluated after every pull; an alert that starts or stops
firing is logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from channels.alerts import evaluate_alerts
from channels.fetch import ChannelError
from channels.log import JsonLog
from channels.puller import Puller
from channels.sending import NodeUnavailable
from channels.state import State, now_ms

ONCE_ATTEMPTS = 5
"""Pulls of one channel failed in a row after which `--once` gives up."""

MAX_BACKOFF_S = 300.0
"""Longest wait before pulling a failing channel again."""


class Pulled(NamedTuple):
    """How a pull went."""

    ok: bool
    wait_s: float
    """Seconds until the channel should be pulled again (0: more is waiting)."""


class Runner:
    """The pullers of one process."""

    def __init__(self, pullers: Sequence[Puller], state: State, log: JsonLog) -> None:
        self.pullers = list(pullers)
        self.state = state
        self.log = log
        self.firing: set[tuple[str, str]] = set()

    def pull(self, puller: Puller) -> Pulled:
        """Pull one page of a channel."""
        name = puller.config.name
        try:
            page = puller.pull_page()
        except (ChannelError, NodeUnavailable) as exc:
            self.state.save_failure(name, str(exc))
            row = next(r for r in self.state.load_channels() if r.name == name)
            self.log("pull_failed", level="warning", channel=name, error=str(exc), failures=row.failures)
            return Pulled(False, min(MAX_BACKOFF_S, puller.config.poll_seconds * 2 ** min(row.failures, 10)))
        finally:
            self.check_alerts()
        return Pulled(True, puller.config.poll_seconds if page.caught_up else 0.0)

    def check_alerts(self) -> None:
        """Log each alert that starts or stops firing."""
        now = now_ms()
        alerts = [alert for row in self.state.load_channels() for alert in evaluate_alerts(row, now)]
        firing: set[tuple[str, str]] = {(alert.name, alert.channel) for alert in alerts}
        for alert in alerts:
            if (alert.name, alert.channel) not in self.firing:
                self.log("alert", level="error", alert=alert.name, channel=alert.channel, message=alert.message)
        for name, channel in sorted(self.firing - firing):
            self.log("alert_resolved", alert=name, channel=channel)
        self.firing = firing

    def run_once(self) -> int:
        """Pull every channel until it is caught up; 0, or 1 if one kept failing."""
        status = 0
        for puller in self.pullers:
            failures = 0
            while True:
                pulled = self.pull(puller)
                if pulled.ok and pulled.wait_s > 0:
                    break
                failures = 0 if pulled.ok else failures + 1
                if failures >= ONCE_ATTEMPTS:
                    status = 1
                    break
                time.sleep(min(pulled.wait_s, 2.0 * failures))
        return status

    def run_forever(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Pull each channel when it is due, for ever."""
        due = {puller.config.name: 0.0 for puller in self.pullers}
        while True:
            for puller in self.pullers:
                if time.monotonic() >= due[puller.config.name]:
                    due[puller.config.name] = time.monotonic() + self.pull(puller).wait_s
            sleep(max(0.0, min(1.0, min(due.values()) - time.monotonic())))
