"""Document numbers the ledger assigns: order numbers and per-issuer invoice numbers.

An order number is derived from the block height and the tx's position in the
block, so every node computes the same one without coordination, and no two
txs ever get the same: `SO` + height (10 digits) + tx index (5 digits) + a Luhn
check digit that catches any single mistyped digit (the orders of an
`order.import` add their place in it, 3 digits, before the check digit); stock transfers are
numbered the same way with `TR`. Invoice numbers run in an
unbroken sequence per issuing organisation: `<issuer>-<8-digit sequence>`.
"""

from __future__ import annotations

from contracts import keys
from ledger.state import StateView

ORDER_PREFIX = "SO"
"""Every order number starts with this."""


def compute_check_digit(digits: str) -> int:
    """Luhn check digit of a string of decimal digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def compute_document_number(prefix: str, height: int, tx_index: int, item: int | None = None) -> str:
    """`prefix` + height (10 digits) + tx index (5 digits) [+ item (3 digits)] + Luhn check digit: unique per tx
    (and item of a tx), no coordination."""
    digits = f"{height:010d}{tx_index:05d}" + ("" if item is None else f"{item:03d}")
    return f"{prefix}{digits}{compute_check_digit(digits)}"


def compute_order_number(height: int, tx_index: int, item: int | None = None) -> str:
    """The number of the order a tx places; `item`: its place among the orders of an `order.import`."""
    return compute_document_number(ORDER_PREFIX, height, tx_index, item)


def is_valid_order_number(number: str) -> bool:
    body = number[len(ORDER_PREFIX) :]
    if not number.startswith(ORDER_PREFIX) or len(body) not in (16, 19) or not body.isdigit():
        return False
    return compute_check_digit(body[:-1]) == int(body[-1])


def compute_fulfilment_id(order_id: str, index: int) -> str:
    """Fulfilments are numbered from their order: `<order>-1`, `<order>-2`, ..."""
    return f"{order_id}-{index}"


def take_invoice_number(state: StateView, issuer: str) -> tuple[str, int]:
    """The next number in `issuer`'s sequence (and the sequence value), consumed."""
    seq = int(state.get(keys.invoice_seq_key(issuer)) or 0) + 1
    state.put(keys.invoice_seq_key(issuer), seq)
    return f"{issuer}-{seq:08d}", seq
