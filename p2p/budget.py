"""Token buckets: the refusals one address may cost, and the sealed traffic one validator may send.

`SourceBudget` is one token bucket per key, with a bounded table of keys. The
`/p2p` inbox charges refused frames to their source address with it, the API
failed tx signatures.

`SenderBudget` is what one validator may send this node in validly sealed
envelopes: two such buckets, keyed by validator id, one of bytes and one of
envelopes. The envelope gate asks it after the cheap checks (size, shape,
known sender, chain, recipient, replay) and before the signature check, so an
envelope over its sender's budget costs no signature check, and nothing inside
it is decoded: it is dropped as `over_budget`. Only an envelope whose
signature verified is charged, so a forger naming another validator cannot
spend that validator's budget. A bucket may run into debt by one envelope
(an envelope is allowed while its sender's tokens are positive), so a single
envelope larger than the bucket still passes when the bucket is full.

The sizing, from genesis, for an honest validator's heaviest traffic to one
peer: the largest burst is a NEW-VIEW (the largest envelope the chain allows,
`compute_max_envelope_bytes`) followed by its view's full proposal, and well
under one frame of envelopes (`MAX_FRAME_ENVELOPES`); the bucket holds twice
that burst of bytes and one frame of envelopes, and refills that much every
view timer. With the default genesis (1 MiB blocks, 3 s view timer) that is
16 MiB at once and about 5.3 MiB and 341 envelopes a second, per validator.
An honest validator sends one peer a few envelopes per block (a proposal,
its votes, a checkpoint, gossip batches), so even at the highest block rate
measured (25 blocks a second, one tx each) it stays well inside, while a
flooding validator gets at most that share of this node's event loop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from ledger.genesis import Genesis

MAX_FRAME_ENVELOPES = 1024
"""Most envelopes one `/p2p` frame may carry."""

BURST_ENVELOPES = 2
"""Largest envelopes an honest validator may send at once: a NEW-VIEW and its view's proposal."""


class SourceBudget:
    """A token bucket per key: `capacity` tokens at once, refilled at `refill_per_s`; by default a key's
    refusals (`/p2p` frames or tx signatures that failed).

    Keys past `max_sources` evict the least recently seen, so the table itself stays bounded.
    """

    def __init__(
        self,
        capacity: float = 64,
        refill_per_s: float = 8.0,
        max_sources: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Source -> (tokens, when they were counted)."""

    def _tokens(self, source: str) -> float:
        tokens, then = self._buckets.get(source, (self.capacity, self._clock()))
        return min(self.capacity, tokens + (self._clock() - then) * self.refill_per_s)

    def allows(self, source: str) -> bool:
        """Whether `source` has a token left to spend."""
        return source not in self._buckets or self._tokens(source) >= 1

    def charge(self, source: str, refusals: float = 1) -> None:
        """Spend `refusals` of the source's tokens (it may go into debt, repaid by the refill)."""
        self._buckets[source] = (self._tokens(source) - refusals, self._clock())
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)


class SenderBudget:
    """Bytes and envelopes of validly sealed traffic each validator may send, as two token buckets."""

    def __init__(
        self,
        max_bytes: float,
        max_envelopes: float,
        refill_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`max_bytes` and `max_envelopes` a validator may send at once; each bucket fills again in `refill_s`."""
        self.bytes = SourceBudget(max_bytes, max_bytes / refill_s, clock=clock)
        self.envelopes = SourceBudget(max_envelopes, max_envelopes / refill_s, clock=clock)
        self.refused: dict[str, int] = {}
        """Envelopes dropped over budget, by sender."""

    @classmethod
    def for_genesis(cls, genesis: Genesis, max_envelope_bytes: int) -> SenderBudget:
        """The budget an honest validator never reaches (see the module docstring)."""
        return cls(BURST_ENVELOPES * max_envelope_bytes, MAX_FRAME_ENVELOPES, genesis.consensus.view_timeout_ms / 1000)

    def allows(self, sender: str) -> bool:
        """Whether `sender` may have one more envelope looked at; counts a refusal if not."""
        if self.bytes.allows(sender) and self.envelopes.allows(sender):
            return True
        self.refused[sender] = self.refused.get(sender, 0) + 1
        return False

    def charge(self, sender: str, size: int) -> None:
        """Spend one envelope of `size` bytes from `sender`'s budget."""
        self.bytes.charge(sender, size)
        self.envelopes.charge(sender)
