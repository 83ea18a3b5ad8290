"""A block's room: full by count or by bytes says the primary was busy."""

from __future__ import annotations

from ledger.block import Block, encode_block, has_room
from ledger.commitment import EMPTY
from ledger.encoding import encode
from ledger.genesis import ConsensusParams
from tests.helpers.builders import make_network
from tests.helpers.chain import make_block

NET = make_network(4)


def block_of(count: int) -> Block:
    txs = [NET.tx("channel-1", "order.create", {"ref": f"R-{i}"}) for i in range(count)]
    return make_block(NET, 1, b"\0" * 32, txs, [], EMPTY, 1)


def test_a_block_has_room_until_its_count_or_its_bytes_reach_the_limits():
    three = block_of(3)
    assert has_room(three, ConsensusParams(max_block_txs=4))
    assert not has_room(three, ConsensusParams(max_block_txs=3))
    assert not has_room(block_of(0), ConsensusParams(max_block_bytes=1024)), "less than one largest tx fits"
    assert has_room(block_of(0), ConsensusParams())


def test_a_block_spliced_from_its_txs_signed_bytes_encodes_as_its_wire_map():
    for count in (0, 1, 15, 16, 300):
        block = block_of(count)
        assert encode_block(block) == encode(block.to_wire())
