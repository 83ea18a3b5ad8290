"""The message log: the votes a replica holds for the heights it may still need.

Messages are kept per height (a PBFT sequence number), and within a height per
view and sender, first one wins: a second, different vote from the same
sender for the same view is ignored. Only heights between the last stable
checkpoint and the high watermark are kept, so the log's size depends on the
checkpoint interval, never on how long the chain has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from consensus.messages import Commit, Prepare, PrePrepare

Vote = TypeVar("Vote", Prepare, Commit)
"""A prepare or a commit."""


@dataclass
class Slot:
    """Everything received for one height."""

    pre_prepares: dict[int, PrePrepare] = field(default_factory=dict)
    """View -> the first proposal the primary of that view made at this height."""
    prepares: dict[int, dict[str, Prepare]] = field(default_factory=dict)
    """View -> sender -> its prepare."""
    commits: dict[int, dict[str, Commit]] = field(default_factory=dict)
    """View -> sender -> its commit."""

    def size(self) -> int:
        return (
            len(self.pre_prepares)
            + sum(len(votes) for votes in self.prepares.values())
            + sum(len(votes) for votes in self.commits.values())
        )


class MessageLog:
    """Slots by height, garbage collected below the stable checkpoint."""

    def __init__(self) -> None:
        self.slots: dict[int, Slot] = {}

    def get(self, height: int) -> Slot | None:
        return self.slots.get(height)

    def slot(self, height: int) -> Slot:
        """The slot at `height`, created empty if needed."""
        found = self.slots.get(height)
        if found is None:
            found = self.slots[height] = Slot()
        return found

    def add_vote(self, vote: Prepare | Commit) -> bool:
        """Record `vote` unless its sender already voted in that view at that height; True if recorded."""
        slot = self.slot(vote.height)
        if isinstance(vote, Prepare):
            return _add_once(slot.prepares.setdefault(vote.view, {}), vote)
        return _add_once(slot.commits.setdefault(vote.view, {}), vote)

    def collect_garbage(self, height: int) -> None:
        """Forget every slot at or below `height`."""
        for old in [h for h in self.slots if h <= height]:
            del self.slots[old]

    def drop_above(self, height: int) -> None:
        """Forget every slot above `height` (their messages were checked against a validator set that changed)."""
        for later in [h for h in self.slots if h > height]:
            del self.slots[later]

    def drop_proposals(self, height: int, view: int) -> None:
        """Forget the proposals for heights above `height` made in views before `view` (left behind by a view
        change; the next height's are kept, as commits of an older view may still decide it)."""
        for later, slot in self.slots.items():
            if later > height:
                slot.pre_prepares = {v: p for v, p in slot.pre_prepares.items() if v >= view}

    def size(self) -> int:
        """How many messages the log holds."""
        return sum(slot.size() for slot in self.slots.values())


def _add_once(by_sender: dict[str, Vote], vote: Vote) -> bool:
    if vote.sender in by_sender:
        return False
    by_sender[vote.sender] = vote
    return True
