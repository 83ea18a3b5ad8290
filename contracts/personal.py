"""Personal data of orders: sealed on the ledger, granted to the organisations that fulfil, erased on request.

An order may carry `personal`: its ship-to and notes sealed by the sender
(`ledger.personal`: ciphertext, a salted commitment, and the data key
wrapped to each reader organisation). Contracts cannot encrypt, so they only
keep and check: `record_personal` stores it under `personal/<order_id>`,
keyed by organisation, when the order is placed; the channel's own
organisation must be among the readers, each reader a member with an
encryption key.

`order.grant_personal`: when allocation names a fulfilling organisation, a
node of the ordering organisation (it alone can unwrap the data key) wraps
the key to that organisation and sends the wrap in this ordinary signed tx;
the rule takes it only from the ordering organisation, for an organisation
one of the order's fulfilments names, once.

`order.erase_personal`: an operator of the ordering organisation destroys
the order's wrapped keys and ciphertext in the state (crypto-shredding); the
commitment and the time of erasure stay, every block still hashes as it did,
and no node serves the data again.
"""

from __future__ import annotations

from typing import Any

from contracts import keys
from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.lifecycle import require_fulfilment, require_order
from contracts.payload import choice, digest, hexbytes, ident, items, mapping, payload, read_payload
from contracts.records import PersonalRecord
from contracts.roles import roles_for
from ledger.personal import KEY_SIZE, MAX_CIPHERTEXT, MAX_READERS, SCHEME, WRAPPED_SIZE, Sealed
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("order.grant_personal", "order.erase_personal")

WRAP_FIELDS = (
    hexbytes("ephemeral", KEY_SIZE, KEY_SIZE, doc="the wrap's ephemeral X25519 public key"),
    hexbytes("wrapped", WRAPPED_SIZE, WRAPPED_SIZE, doc="the data key, ChaCha20-Poly1305 under the wrap's key"),
)
"""A data key wrapped to one organisation's X25519 key."""

SEALED = mapping(
    "personal",
    choice("scheme", (SCHEME,)),
    digest("commitment", doc="sha256 of the salted plaintext"),
    hexbytes("ciphertext", 1, MAX_CIPHERTEXT, doc="nonce and ChaCha20-Poly1305 ciphertext of ship-to and notes"),
    items("keys", ident("org", doc="the reader organisation"), *WRAP_FIELDS, max_items=MAX_READERS),
    required=False,
    doc="the ship-to and notes, sealed to the channel's organisation (never in clear)",
)
"""An order's sealed personal data as the sender puts it in `order.create` (see `ledger.personal`)."""

PAYLOADS = {
    "order.grant_personal": payload(
        ident("order_id"), ident("org", doc="the fulfilling organisation given the key"), *WRAP_FIELDS
    ),
    "order.erase_personal": payload(ident("order_id")),
}


def get_personal(state: StateView, order_id: str) -> PersonalRecord | None:
    record: PersonalRecord | None = state.get(keys.personal_key(order_id))
    return record


def record_personal(state: StateView, ctx: TxContext, order_id: str, sealed: Sealed) -> None:
    """Keep a new order's sealed personal data: every reader a member organisation named once, the channel's
    own among them."""
    wrapped: dict[str, dict[str, str]] = {}
    for entry in sealed["keys"]:
        org = entry["org"]
        if not ctx.membership.has_org(org):
            raise Rejected("unknown_org", f"personal data is sealed to {org}, not a member")
        if org in wrapped:
            raise Rejected("bad_payload", f"personal data is sealed to {org} twice")
        wrapped[org] = {"ephemeral": entry["ephemeral"], "wrapped": entry["wrapped"]}
    if ctx.signer.org not in wrapped:
        raise Rejected("bad_payload", f"personal data must be sealed to the channel's organisation {ctx.signer.org}")
    record: PersonalRecord = {
        "order_id": order_id,
        "org": ctx.signer.org,
        "commitment": sealed["commitment"],
        "ciphertext": sealed["ciphertext"],
        "keys": wrapped,
        "erased_ms": None,
    }
    state.put(keys.personal_key(order_id), record)


def require_live_personal(state: StateView, ctx: TxContext, order_id: str) -> PersonalRecord:
    """The order's personal data, not erased, if the signer belongs to the ordering organisation."""
    require_order(state, order_id)
    record = get_personal(state, order_id)
    if record is None:
        raise Rejected("no_personal_data", f"order {order_id} carries no personal data")
    if ctx.signer.org != record["org"]:
        raise Rejected("forbidden", f"only {record['org']}, which took order {order_id}, may do this")
    if record["erased_ms"] is not None:
        raise Rejected("personal_data_erased", f"the personal data of order {order_id} was erased")
    return record


def process_order_grant_personal(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """The ordering organisation gives a fulfilling organisation the order's data key (wrapped to it)."""
    fields = read_payload(PAYLOADS["order.grant_personal"], tx.payload)
    order_id, org = fields["order_id"], fields["org"]
    record = require_live_personal(state, ctx, order_id)
    fulfilling = [require_fulfilment(state, f)["org"] for f in require_order(state, order_id)["fulfilments"]]
    if org not in fulfilling:
        raise Rejected("not_fulfilling", f"{org} fulfils no part of order {order_id}")
    if org in record["keys"]:
        raise Rejected("already_granted", f"{org} already holds the key of order {order_id}")
    record["keys"][org] = {"ephemeral": fields["ephemeral"], "wrapped": fields["wrapped"]}
    state.put(keys.personal_key(order_id), record)
    return {"order_id": order_id, "org": org}


def process_order_erase_personal(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """An operator of the ordering organisation destroys the order's wrapped keys and ciphertext."""
    order_id = read_payload(PAYLOADS["order.erase_personal"], tx.payload)["order_id"]
    record = require_live_personal(state, ctx, order_id)
    record["ciphertext"] = ""
    record["keys"] = {}
    record["erased_ms"] = ctx.time_ms
    state.put(keys.personal_key(order_id), record)
    return {"order_id": order_id, "erased": True}
