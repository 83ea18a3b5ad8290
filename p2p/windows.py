"""Envelope replay windows across restarts: what a node remembers of the envelopes it accepted.

An `EnvelopeGate` refuses an envelope whose sequence number it has already
accepted from that sender, but its windows live in memory: a restarted node
would take again every envelope a network observer recorded before. So the
node keeps in one small file of its home the highest sequence number
accepted from each sender, and on start counts everything up to it as seen
(`EnvelopeGate.restore_highest`). The file holds one integer per genesis
validator, whatever peers send, and only genesis validators are read back:
it stays bounded.

`WindowStore.run` writes the file when the windows moved, at most once per
`SAVE_INTERVAL_S`, and the node writes it once more when it stops; a write
goes to a file beside it, is fsynced, then renamed over it, so a crash
leaves the old file or the new one. After a clean stop nothing accepted
before can be accepted again; after a crash, at most the envelopes accepted
in the last interval before it can, once each (consensus and gossip take
duplicates in their stride anyway). A file that does not read back is
reported and set aside: the node starts with empty windows rather than not
at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from ledger.encoding import decode, encode
from ledger.errors import EncodingError
from p2p.envelope import EnvelopeGate

SAVE_INTERVAL_S = 1.0
"""How often the windows are written when they moved."""

log = logging.getLogger(__name__)


class WindowStore:
    """The file that keeps one gate's highest accepted sequence numbers across restarts."""

    def __init__(self, path: Path, gate: EnvelopeGate) -> None:
        self.path = path
        self.gate = gate
        self._saved: dict[str, int] = {}
        """What the file holds now."""

    def load(self) -> None:
        """Restore the gate's windows from the file, if there is one that reads back."""
        try:
            highest = decode(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, EncodingError) as exc:
            log.warning("envelope windows in %s not read, starting without them: %s", self.path, exc)
            return
        if not isinstance(highest, dict) or not all(type(seq) is int for seq in highest.values()):
            log.warning("envelope windows in %s are not a map of sequence numbers, starting without them", self.path)
            return
        self.gate.restore_highest(highest)
        self._saved = self.gate.get_highest()

    def save(self) -> None:
        """Write the gate's highest accepted sequence numbers, if they moved since the last write."""
        highest = self.gate.get_highest()
        if highest == self._saved:
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "wb") as file:
            file.write(encode(highest))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        self._saved = highest

    async def run(self, interval_s: float = SAVE_INTERVAL_S) -> None:
        """Save every `interval_s` (until cancelled); a failed write is logged and tried again next time."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.save()
            except OSError as exc:
                log.warning("envelope windows not saved to %s: %s", self.path, exc)
