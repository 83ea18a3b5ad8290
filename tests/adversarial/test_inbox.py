"""What anyone who can reach `/p2p` can make a node spend: at most one signature check per frame, and
nothing at all once the source's budget of refusals is spent. Refusals are logged in one line."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import given, settings

from ledger.errors import LedgerError
from p2p import envelope as envelope_module
from p2p.envelope import Envelope, EnvelopeGate, encode_envelope, seal
from p2p.inbox import MAX_FRAME_ENVELOPES, Inbox, SourceBudget, encode_frame
from p2p.peers import PeerTable
from tests.adversarial.hostile import deep_array, hostile_bytes
from tests.helpers.builders import make_network

NET = make_network(4)
GENESIS = NET.genesis
ATTACKER = "203.0.113.9"
HOME = "node-3"
"""The node whose inbox the tests feed."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_inbox(clock: FakeClock | None = None) -> tuple[Inbox, list[Envelope]]:
    received: list[Envelope] = []
    budget = SourceBudget(capacity=8, refill_per_s=1.0, max_sources=16, clock=clock or FakeClock())
    inbox = Inbox(EnvelopeGate(GENESIS, HOME), PeerTable.from_genesis(GENESIS, HOME), budget=budget)

    async def handler(envelope: Envelope) -> None:
        received.append(envelope)

    inbox.register("consensus", handler)
    return inbox, received


def forged_frame(count: int, first_seq: int = 1, recipient: str = HOME) -> bytes:
    """`count` envelopes naming validator node-0, fresh sequence numbers, signatures of nobody."""
    envelopes = [
        encode_envelope(
            Envelope(
                sender="node-0",
                recipient=recipient,
                chain_id=GENESIS.chain_id,
                seq=first_seq + i,
                kind="consensus",
                body=b"x",
                signature=bytes(64),
            )
        )
        for i in range(count)
    ]
    return encode_frame(envelopes)


def honest(seq: int, body: bytes = b"vote", recipient: str = HOME) -> bytes:
    """An envelope node-1 sealed for `recipient`."""
    key = NET.keys["node-1"]
    return seal(
        key, sender="node-1", recipient=recipient, chain_id=GENESIS.chain_id, seq=seq, kind="consensus", body=body
    )


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = envelope_module.is_valid_signature

    def counting(key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(1)
        return real(key, message, signature)

    monkeypatch.setattr(envelope_module, "is_valid_signature", counting)
    return calls


def test_a_full_frame_of_forged_envelopes_costs_one_signature_check(signature_checks: list[int]) -> None:
    inbox, received = make_inbox()
    assert asyncio.run(inbox.receive(forged_frame(MAX_FRAME_ENVELOPES), ATTACKER)) == 0
    assert len(signature_checks) == 1 and received == []
    assert inbox.gate.dropped["bad_signature"] == 1


def test_a_source_that_spent_its_budget_costs_nothing_until_it_refills(signature_checks: list[int]) -> None:
    clock = FakeClock()
    inbox, received = make_inbox(clock)
    for round_ in range(20):
        asyncio.run(inbox.receive(forged_frame(4, first_seq=round_ * 10 + 1), ATTACKER))
    assert len(signature_checks) == 8
    assert inbox.gate.dropped["rate_limited"] == 12
    assert asyncio.run(inbox.receive(encode_frame([honest(1)]), "198.51.100.1")) == 1
    clock.now += 2.0
    asyncio.run(inbox.receive(forged_frame(1, first_seq=1000), ATTACKER))
    assert len(signature_checks) == 10 and len(received) == 1


def test_envelopes_for_another_node_cost_no_signature_check_and_are_charged(signature_checks: list[int]) -> None:
    inbox, received = make_inbox()
    meant_for_node_0 = encode_frame([honest(seq, recipient="node-0") for seq in range(1, 9)])
    assert asyncio.run(inbox.receive(meant_for_node_0, ATTACKER)) == 0
    assert asyncio.run(inbox.receive(forged_frame(4, recipient="node-0"), ATTACKER)) == 0
    assert signature_checks == [] and received == []
    assert inbox.gate.dropped["wrong_recipient"] == 8, "then the source's budget of 8 is spent"
    assert inbox.gate.dropped["rate_limited"] == 1


def test_replayed_frames_are_charged_to_their_source_once_each(signature_checks: list[int]) -> None:
    inbox, received = make_inbox()
    frame = encode_frame([honest(seq) for seq in range(1, 101)])
    assert asyncio.run(inbox.receive(frame, "198.51.100.1")) == 100
    for _ in range(50):
        asyncio.run(inbox.receive(frame, ATTACKER))
    assert len(received) == 100 and inbox.gate.dropped["replay"] == 8 * 100
    assert inbox.gate.dropped["rate_limited"] == 42, "a frame of replays costs one refusal, and the budget is 8"
    assert len(signature_checks) == 100, "a replay costs no signature check"
    assert asyncio.run(inbox.receive(encode_frame([honest(101)]), "198.51.100.1")) == 1, "the sender is not blamed"


def test_the_budget_table_stays_bounded() -> None:
    budget = SourceBudget(capacity=1, refill_per_s=0.0, max_sources=16, clock=FakeClock())
    for i in range(1000):
        budget.charge(f"10.0.{i // 256}.{i % 256}")
    assert len(budget._buckets) == 16


@settings(max_examples=200)
@given(hostile_bytes())
def test_any_frame_is_refused_or_delivered_and_never_raises(data: bytes) -> None:
    inbox, _received = make_inbox()
    asyncio.run(inbox.receive(data, ATTACKER))
    asyncio.run(inbox.receive(encode_frame([data]), ATTACKER))


def test_a_malformed_frame_is_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    inbox, _received = make_inbox()
    with caplog.at_level(logging.INFO, logger="p2p.inbox"):
        asyncio.run(inbox.receive(deep_array(600), ATTACKER))
        asyncio.run(inbox.receive(encode_frame([deep_array(600)]), ATTACKER))
    assert len(caplog.records) == 2
    for record in caplog.records:
        assert record.exc_info is None and "\n" not in record.getMessage() and len(record.getMessage()) < 400


def test_a_handler_refusing_an_envelope_is_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    inbox, _received = make_inbox()

    async def refuse(envelope: Envelope) -> None:
        raise LedgerError("not a message")

    inbox.register("consensus", refuse)
    frame = encode_frame([honest(1, b"junk")])
    with caplog.at_level(logging.INFO, logger="p2p.inbox"):
        assert asyncio.run(inbox.receive(frame, "198.51.100.1")) == 0
    (record,) = caplog.records
    assert record.exc_info is None and inbox.handler_errors == 1
