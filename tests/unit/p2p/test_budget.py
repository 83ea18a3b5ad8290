"""Each validator's budget of sealed traffic: a flooder is cut to it before any signature check, forgers cannot
spend another validator's budget, the budget refills, and honest senders beside a flooder lose nothing."""

from __future__ import annotations

import asyncio

from consensus.messages import Prepare, encode_message, sign_message
from ledger.genesis import ConsensusParams
from p2p.budget import BURST_ENVELOPES, MAX_FRAME_ENVELOPES, SenderBudget
from p2p.envelope import Envelope, EnvelopeGate, compute_max_envelope_bytes, seal
from p2p.errors import Dropped
from p2p.inbox import Inbox, encode_frame
from p2p.peers import PeerTable
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
HOME = "node-0"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sealed(sender: str, seq: int, body: bytes = b"b", kind: str = "consensus", signer: str | None = None) -> bytes:
    return seal(
        NET.keys[signer or sender],
        sender=sender,
        recipient=HOME,
        chain_id=GENESIS.chain_id,
        seq=seq,
        kind=kind,
        body=body,
    )


def opened(gate: EnvelopeGate, data: bytes) -> str:
    """`accepted` or the reason `data` was dropped for."""
    try:
        gate.open(data)
    except Dropped as exc:
        return exc.reason
    return "accepted"


def test_the_default_budget_is_sized_from_genesis() -> None:
    genesis = make_network(4, consensus=ConsensusParams(max_block_bytes=4 * 1024 * 1024, view_timeout_ms=2000)).genesis
    budget = SenderBudget.for_genesis(genesis, compute_max_envelope_bytes(genesis))
    carried = (genesis.quorum + 1) * 4 * 1024 * 1024
    assert budget.bytes.capacity == BURST_ENVELOPES * compute_max_envelope_bytes(genesis) > 2 * carried, (
        "room for a NEW-VIEW carrying q+1 full blocks, twice"
    )
    assert budget.bytes.refill_per_s == budget.bytes.capacity / 2
    assert budget.envelopes.capacity == MAX_FRAME_ENVELOPES and budget.envelopes.refill_per_s == 512


def test_a_sender_past_its_envelopes_is_refused_unchecked_until_the_budget_refills() -> None:
    clock = Clock()
    gate = EnvelopeGate(GENESIS, HOME, budget=SenderBudget(10_000_000, 5, refill_s=1.0, clock=clock))
    assert [opened(gate, sealed("node-1", seq)) for seq in range(7)] == ["accepted"] * 5 + ["over_budget"] * 2
    assert opened(gate, sealed("node-1", 7, signer="node-2")) == "over_budget", "no signature is checked"
    assert opened(gate, sealed("node-2", 0)) == "accepted", "other validators keep their own budget"
    clock.now += 0.2
    assert opened(gate, sealed("node-1", 8)) == "accepted"
    assert opened(gate, sealed("node-1", 9)) == "over_budget"
    assert gate.dropped["over_budget"] == 4 and gate.budget is not None and gate.budget.refused == {"node-1": 4}


def test_bytes_are_budgeted_and_one_envelope_larger_than_the_bucket_still_passes_when_it_is_full() -> None:
    clock = Clock()
    gate = EnvelopeGate(GENESIS, HOME, budget=SenderBudget(10_000, 1000, refill_s=1.0, clock=clock))
    assert opened(gate, sealed("node-1", 0, b"x" * 30_000)) == "accepted"
    assert opened(gate, sealed("node-1", 1)) == "over_budget", "the sender is in debt for its large envelope"
    clock.now += 2.0
    assert opened(gate, sealed("node-1", 2)) == "over_budget", "30 kB at 10 kB/s is repaid after 2 s, not before"
    clock.now += 0.1
    assert opened(gate, sealed("node-1", 3)) == "accepted"


def test_forged_envelopes_naming_a_validator_do_not_spend_its_budget() -> None:
    gate = EnvelopeGate(GENESIS, HOME, budget=SenderBudget(10_000_000, 3, refill_s=1000.0))
    forged = [opened(gate, sealed("node-1", seq, signer="node-3")) for seq in range(10)]
    assert forged == ["bad_signature"] * 10
    assert [opened(gate, sealed("node-1", seq)) for seq in range(10, 13)] == ["accepted"] * 3


def test_a_flooding_validator_reaches_the_handler_with_its_budget_alone_and_honest_ones_with_everything() -> None:
    """node-1 floods frames of real signed PREPAREs, node-2 and node-3 send a few: what reached the handler is
    counted per sender, in envelopes and bytes."""
    budget = SenderBudget(max_bytes=200_000, max_envelopes=300, refill_s=1000.0)
    inbox = Inbox(EnvelopeGate(GENESIS, HOME, budget=budget), PeerTable.from_genesis(GENESIS, HOME))
    reached: dict[str, list[int]] = {}

    async def handler(envelope: Envelope) -> None:
        reached.setdefault(envelope.sender, []).append(len(envelope.body))

    inbox.register("consensus", handler)

    def prepare(sender: str, height: int) -> bytes:
        vote = Prepare(chain_id=GENESIS.chain_id, view=0, height=height, block_hash=bytes(32), sender=sender)
        return encode_message(sign_message(vote, NET.keys[sender]))

    async def run() -> None:
        seq = 0
        for _frame in range(10):
            flood = []
            for _ in range(100):
                flood.append(sealed("node-1", seq, prepare("node-1", seq + 1)))
                seq += 1
            await inbox.receive(encode_frame(flood), "10.0.0.1")
        for sender in ("node-2", "node-3"):
            await inbox.receive(encode_frame([sealed(sender, h, prepare(sender, h + 1)) for h in range(50)]), sender)

    asyncio.run(run())
    flooded = len(reached["node-1"])
    assert 250 <= flooded <= 300, "the flooder is cut to its 300 envelopes (fewer if its bytes ran out first)"
    assert sum(reached["node-1"]) <= 200_000
    assert len(reached["node-2"]) == len(reached["node-3"]) == 50
    assert inbox.gate.dropped["over_budget"] == 1000 - flooded
    assert inbox.gate.dropped["bad_signature"] == 0
