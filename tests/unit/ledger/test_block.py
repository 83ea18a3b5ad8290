"""A block's room: full by work (the measure proposals are filled by) or by bytes says the primary was busy."""

from __future__ import annotations

from ledger.block import WORK_BASE_BYTES, WORK_UNIT_BYTES, Block, compute_tx_work, encode_block, has_room
from ledger.commitment import EMPTY
from ledger.encoding import encode
from ledger.genesis import ConsensusParams
from tests.helpers.builders import make_network
from tests.helpers.chain import make_block

NET = make_network(4)


def size_of(units: int) -> int:
    """The largest size of a tx of `units` units of work."""
    return WORK_BASE_BYTES + units * WORK_UNIT_BYTES


def block_of(count: int) -> Block:
    txs = [NET.tx("channel-1", "order.create", {"ref": f"R-{i}"}) for i in range(count)]
    return make_block(NET, 1, b"\0" * 32, txs, [], EMPTY, 1)


def test_a_block_has_room_until_its_work_or_its_bytes_reach_the_limits():
    three, small = block_of(3), 500
    assert has_room(three, ConsensusParams(max_block_txs=4), small), "three orders of one unit each, and one more"
    assert not has_room(three, ConsensusParams(max_block_txs=3), small)
    assert not has_room(three, ConsensusParams(max_block_txs=4), size_of(1) + 1), "no room for a tx of 2 units"
    assert not has_room(block_of(0), ConsensusParams(max_block_bytes=1024)), "less than one largest tx fits"
    assert has_room(block_of(0), ConsensusParams())


def test_a_block_of_few_bulk_txs_full_by_work_has_no_room():
    bulk = [NET.tx("channel-1", "kv.set", {"key": f"R-{i}", "value": "x" * 600}) for i in range(10)]
    block = make_block(NET, 1, b"\0" * 32, bulk, [], EMPTY, 1)
    assert all(compute_tx_work(len(tx.signing_bytes()) + len(tx.signature)) == 3 for tx in bulk)
    assert not has_room(block, ConsensusParams(max_block_txs=32), size_of(2) + 1), "30 of 32 units, 3 more"
    assert has_room(block, ConsensusParams(max_block_txs=32), size_of(2))


def test_a_tx_weighs_its_size_past_its_envelope_in_units():
    assert [compute_tx_work(size) for size in (0, 1, size_of(1), size_of(1) + 1, size_of(92))] == [1, 1, 1, 2, 92]
    orders = [
        {
            "external_ref": f"web-{i}",
            "currency": "EUR",
            "customer_hash": f"{i:064x}",
            "payment_terms": "on_account",
            "delivery": {"region": "BR", "lat": -23_500_000, "lon": -46_600_000},
            "lines": [{"sku": "SKU-0001", "qty": 1}],
        }
        for i in range(100)
    ]
    bulk = NET.tx("channel-1", "order.import", {"orders": orders})
    single = NET.tx("channel-1", "order.create", orders[0])
    assert compute_tx_work(len(single.signing_bytes()) + len(single.signature)) == 1
    work = compute_tx_work(len(bulk.signing_bytes()) + len(bulk.signature))
    assert 40 <= work <= 100, f"an import of 100 orders weighs {work} units, near the orders it carries"


def test_a_block_spliced_from_its_txs_signed_bytes_encodes_as_its_wire_map():
    for count in (0, 1, 15, 16, 300):
        block = block_of(count)
        assert encode_block(block) == encode(block.to_wire())
