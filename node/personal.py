"""A node's part in personal data: it seals what its clients send, reads what its organisation may, and grants.

The ledger holds an order's ship-to and notes only sealed (`ledger.personal`,
`contracts.personal`). A node:

- seals the `ship_to` and `notes` of an order it signs for a channel
  (`seal_for`) to the channel organisation's encryption key, as the
  membership names it; with an idempotency key, from a seed only this node can
  make (its Ed25519 signature over the request, which is deterministic), so a
  retried request signs the same tx;
- opens an order's record (`read_personal`) only with its own organisation's
  key (`encryption_key` in its home), and only while the record holds a key
  wrapped to that organisation; nothing decrypted is kept;
- as a validator of the ordering organisation, grants (`PersonalGrants`):
  following the change feed, for every fulfilment allocated to another
  organisation it unwraps the order's data key and sends `order.grant_personal`
  wrapping it to that organisation, signed with its node key (the contract
  checks the grant; a grant that another node of the organisation sent first
  is refused there as `already_granted`, harmlessly).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts import keys
from contracts.records import PersonalRecord
from ledger.encoding import encode, sha256
from ledger.errors import LedgerError
from ledger.keys import PrivateKey
from ledger.membership import Membership
from ledger.personal import (
    ENCRYPTION_KEY_FILE,
    EncryptionKey,
    PersonalData,
    Random,
    WrappedKey,
    open_personal,
    seal_order_fields,
    seeded_random,
    unwrap_key,
    wrap_key,
)
from ledger.state import StateView
from ledger.tx import Tx, make_tx
from node.feed import read_events

if TYPE_CHECKING:
    from node.node import Node

log = logging.getLogger(__name__)

GRANT_KIND = "order.grant_personal"

GRANT_EVENTS = 500
"""Most feed events one step reads (the feed is read from its start after a restart, a bounded step at a time,
so the node's loop is never held long)."""

GRANT_EVERY_S = 1.0
"""How often the grant task looks for new allocations (it also wakes at each commit)."""

SEAL_SEED_TAG = b"oms-ledger personal seal seed/1"
"""Domain tag of the node signature that seeds an idempotent request's sealing."""


class PersonalNotFound(LedgerError):
    """No personal data this node's organisation may read (absent, or not wrapped to it)."""

    code = "not_found"
    http_status = 404


class PersonalErased(LedgerError):
    """The order's personal data was erased: nobody can read it again."""

    code = "personal_data_erased"
    http_status = 410


def load_encryption_key(home: Path) -> EncryptionKey | None:
    """The organisation's X25519 key kept in the home (None: this node reads no personal data)."""
    path = home / ENCRYPTION_KEY_FILE
    return EncryptionKey.load(path) if path.exists() else None


def seal_for(
    membership: Membership,
    org: str,
    payload: dict[str, Any],
    node_key: PrivateKey,
    request: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The order payload with its `ship_to` and `notes` (if any) replaced by `personal`, sealed to `org`
    (`seal_order_fields`); `request`: (identity, idempotency key) of a request that must seal the same way when
    retried."""
    random: Random = os.urandom
    if request is not None:
        signed = node_key.sign(SEAL_SEED_TAG + encode([request[0], request[1], payload]))
        random = seeded_random(sha256(signed))
    return seal_order_fields(payload, org, membership.encryption_key(org), random)


def get_record(state: StateView, order_id: str) -> PersonalRecord | None:
    record: PersonalRecord | None = state.get(keys.personal_key(order_id))
    return record


def as_wrapped(org: str, entry: dict[str, str]) -> WrappedKey:
    """A wrap as the state keeps it under its organisation, as `ledger.personal` reads it."""
    return WrappedKey(org=org, ephemeral=entry["ephemeral"], wrapped=entry["wrapped"])


def read_personal(state: StateView, order_id: str, org: str, key: EncryptionKey | None) -> tuple[PersonalData, str]:
    """The order's ship-to and notes opened with `org`'s key, and their commitment (hex); `PersonalNotFound`
    unless the record holds a key wrapped to `org`, `PersonalErased` once erased."""
    record = get_record(state, order_id)
    if record is None or key is None:
        raise PersonalNotFound(f"no personal data of order {order_id!r} that {org} may read")
    if record["erased_ms"] is not None:
        raise PersonalErased(f"the personal data of order {order_id} was erased")
    wrapped = record["keys"].get(org)
    if wrapped is None:
        raise PersonalNotFound(f"no personal data of order {order_id!r} that {org} may read")
    commitment = bytes.fromhex(record["commitment"])
    data_key = unwrap_key(as_wrapped(org, wrapped), commitment, key)
    return open_personal(record["ciphertext"], record["commitment"], data_key), record["commitment"]


def make_grant(
    state: StateView, membership: Membership, order_id: str, target: str, org: str, key: EncryptionKey
) -> dict[str, Any] | None:
    """The `order.grant_personal` payload giving the fulfilling organisation `target` the data key of the order,
    if `org` (this node's) took the order and `target` does not hold it yet (None otherwise)."""
    record = get_record(state, order_id)
    if record is None or record["org"] != org or record["erased_ms"] is not None or target in record["keys"]:
        return None
    public = membership.encryption_key(target)
    if public is None:
        log.warning("order %s: %s fulfils it but has no encryption key to grant to", order_id, target)
        return None
    commitment = bytes.fromhex(record["commitment"])
    data_key = unwrap_key(as_wrapped(org, record["keys"][org]), commitment, key)
    wrap = wrap_key(data_key, commitment, target, public)
    return {"order_id": order_id, "org": target, "ephemeral": wrap["ephemeral"], "wrapped": wrap["wrapped"]}


class PersonalGrants:
    """Follows the change feed and grants each fulfilling organisation the data key of its orders (see above)."""

    def __init__(self, node: Node, key: EncryptionKey) -> None:
        self.node = node
        """The node this task works for (a validator: its node key signs the grants)."""
        self.key = key
        self.cursor = 0
        """The last feed event looked at (the feed is read from its start once per process)."""
        self.wanted: dict[tuple[str, str], bytes | None] = {}
        """(order, fulfilling organisation) still to grant -> the grant tx last sent (None: none yet)."""
        self.caught_up = False
        """Whether the last step read the feed to its end (the task then waits for a commit)."""
        self._nonces = itertools.count(time.time_ns())

    def step(self) -> list[Tx]:
        """Grant txs for the allocations to other organisations of orders this organisation took: those of the
        next `GRANT_EVENTS` feed events, and those whose grant left the mempool without being committed."""
        node = self.node
        org = node.config.org
        state = StateView(node.store)
        events, last = read_events(node.store, org, self.cursor, GRANT_EVENTS, frozenset({"fulfilment.status"}))
        self.caught_up = last == self.cursor
        self.cursor = last
        for event in events:
            fulfilment = state.get(keys.fulfilment_key(event["data"]["fulfilment_id"]))
            if fulfilment is not None and fulfilment["org"] != org:
                self.wanted.setdefault((fulfilment["order_id"], fulfilment["org"]), None)
        membership = node.executor.get_membership()
        txs = []
        for (order_id, target), sent in list(self.wanted.items()):
            if sent is not None and sent in node.mempool:
                continue
            committed = sent is not None and node.store.get_tx_location(sent) is not None
            payload = None if committed else make_grant(state, membership, order_id, target, org, self.key)
            if payload is None:  # granted, not to grant, or refused by the ledger (it would be again)
                del self.wanted[(order_id, target)]
                continue
            tx = make_tx(
                node.genesis.chain_id,
                GRANT_KIND,
                node.node_id,
                next(self._nonces),
                payload,
                node.key,
                valid_until=node.suggest_valid_until(),
            )
            self.wanted[(order_id, target)] = tx.id
            txs.append(tx)
        return txs

    async def run(self) -> None:
        while True:
            try:
                txs = self.step()
            except LedgerError as exc:
                log.warning("personal data grants: %s", exc)
                txs = []
            for admitted in self.node.submit(txs) if txs else []:
                if admitted.error is not None:
                    log.warning("grant tx %s refused: %s", admitted.tx_id.hex(), admitted.error)
            if self.caught_up:
                await self.node.commits.wait(GRANT_EVERY_S)
            else:
                await asyncio.sleep(0)
