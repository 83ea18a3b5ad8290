"""Writes through resource routes: the node signs a tx for the token's identity, and answers when asked.

A route names a tx kind and builds its payload; `sign_as` checks the token's
identity may send that kind (403 otherwise) and signs with the key the node
holds for it (`clients/<identity>.key` in the home); `submit_as` admits the
tx and answers.

- `Idempotency-Key`: the tx's nonce is the keyed nonce of the identity and
  the key (`ledger.idempotency`), so the ledger holds one action per key on
  every node: before it signs, the node reads the key's record in the
  committed state (or, before the first tx is committed, looks for it in its
  mempool), and answers the first tx's result for the same request (kind
  and payload), or 409 `idempotency_conflict` for another. Until the first
  tx is committed the node also remembers the key locally
  (`node.idempotency`) with a hash of the request and the tx's `valid_until`,
  so a retry here signs the very same tx, and another body is 409 at once.
  A retry sent to another node while the first tx is still pending is
  signed there with its own window; the ledger answers the later of the two
  `duplicate_request` (or `idempotency_conflict`), pointing at the first,
  and the node answers the first tx's result (or 409). A retry after the
  window answers the first result if the tx was committed, and
  `expired_transaction` if it never was. A key is kept 24 hours from its
  first use; after that it is free, and a request with it is a new request.
- `?wait=commit`: the answer waits (up to `COMMIT_WAIT_S`) until the tx is
  committed and is 200 with its receipt and the resource as it now is;
  otherwise, or if it is not committed in time, 202 with the tx id and a
  `Location` to poll (`GET /v1/tx/{tx_id}`).

A tx a contract refuses is still committed (as rejected): its answer is 200
with `status` `rejected` and the `reason`, as `GET /v1/tx/{tx_id}` says.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Response

from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.idempotency import (
    DUPLICATE_REQUEST,
    IDEMPOTENCY_CONFLICT,
    KEEP_MS,
    compute_request_hash,
    derive_keyed_nonce,
    get_key_record,
)
from ledger.keys import PrivateKey
from ledger.state import StateView
from ledger.tx import Tx, make_tx
from node.api.errors import Forbidden, IdempotencyConflict
from node.api.models import Receipt, WriteResult
from node.api.render import render_receipt
from node.config import CLIENTS_DIR
from node.node import Node
from node.tokens import Principal

COMMIT_WAIT_S = 30.0
"""Longest a `wait=commit` answer waits for the commit."""

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        description="the same key and body answer the first result, another body is 409, for "
        f"{KEEP_MS // 3_600_000} hours from the key's first use",
    ),
]
Wait = Annotated[Literal["commit"] | None, Query(description="`commit`: answer once the tx is committed")]

Render = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Turns a committed receipt's result into the resource as it now is (None: nothing to show)."""

_nonces = itertools.count(time.time_ns())


def derive_nonce(identity: str, key: str | None) -> int:
    """The nonce of a tx: fresh (non-negative) without an idempotency key, the keyed nonce of the identity and
    key with one."""
    if key is None:
        return next(_nonces)
    return derive_keyed_nonce(identity, key)


def find_first_tx(node: Node, identity: str, key: str, kind: str, payload: dict[str, Any]) -> bytes | None:
    """The id of the tx that carries the identity's `key` if it carries this very request: the one the ledger
    recorded first, else one waiting in the mempool (signed here or by another node); None if the key is
    free; 409 if that tx carries another request."""
    nonce = derive_keyed_nonce(identity, key)
    record = get_key_record(StateView(node.store), identity, nonce, node.clock())
    waiting = None if record is not None else node.mempool.find_keyed(identity, nonce)
    if record is not None:
        first, request = record["tx_id"], record["request"]
    elif waiting is not None:
        first, request = waiting.id, compute_request_hash(waiting.kind, waiting.payload)
    else:
        return None
    if request != compute_request_hash(kind, payload):
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used with another request (tx {first.hex()})")
    return first


def sign_as(node: Node, principal: Principal, kind: str, payload: dict[str, Any], nonce: int, valid_until: int) -> Tx:
    """`kind` with `payload` signed as the principal's identity, if its roles may send it."""
    identity = principal.identity
    roles = node.contracts.required_roles(kind) or frozenset()
    if not identity.roles & roles:
        raise Forbidden(
            f"{identity.id} (roles {sorted(identity.roles)}) may not {kind}; it needs one of {sorted(roles)}"
        )
    key_file = node.home / CLIENTS_DIR / f"{identity.id}.key"
    if not key_file.exists():
        raise Forbidden(f"this node holds no key for {identity.id}: make the token with `--key`")
    return make_tx(
        node.genesis.chain_id, kind, identity.id, nonce, payload, PrivateKey.load(key_file), valid_until=valid_until
    )


def recall_window(node: Node, principal: Principal, key: str | None, request: Any) -> int:
    """The `valid_until` to sign with: the one kept with `key` for this very request, or the node's suggestion
    for a new one; a key kept with another request is refused (409)."""
    kept = None if key is None else node.idempotency.recall(principal.identity.id, key)
    if kept is None:
        return node.suggest_valid_until()
    if kept["request"] != hashlib.sha256(encode(request)).digest():
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used with another request")
    return kept["valid_until"]


def remember_request(
    node: Node, principal: Principal, key: str, request: Any, tx_ids: Sequence[bytes], valid_until: int
) -> None:
    """Keep the idempotency key with a hash of `request`, its txs and their window (once: the first is kept)."""
    request_hash = hashlib.sha256(encode(request)).digest()
    node.idempotency.remember(principal.identity.id, key, request_hash, tx_ids, valid_until)


async def wait_for_commit(node: Node, tx_ids: Sequence[bytes], wait: str | None) -> None:
    """With `wait=commit`, return once every tx is committed (or `COMMIT_WAIT_S` passed); at once otherwise."""
    if wait != "commit":
        return
    deadline = time.monotonic() + COMMIT_WAIT_S
    while any(node.store.get_tx_location(tx_id) is None for tx_id in tx_ids) and time.monotonic() < deadline:
        await node.commits.wait(deadline - time.monotonic())


def describe_tx(node: Node, tx_id: bytes, render: Render) -> WriteResult[Any]:
    """Where a tx stands: pending, or committed or rejected with its receipt and the resource rendered. A tx
    the ledger answered `duplicate_request` stands where the first tx of its key does."""
    found = node.find_receipt(tx_id)
    if found is None:
        return WriteResult(tx_id=tx_id.hex(), status="pending")
    height, _, receipt = found
    if receipt.code == DUPLICATE_REQUEST:
        return describe_tx(node, bytes.fromhex(receipt.result["tx_id"]), render)
    return WriteResult(
        tx_id=tx_id.hex(),
        status="committed" if receipt.ok else "rejected",
        height=height,
        receipt=Receipt(**render_receipt(receipt)),
        reason=None if receipt.ok else f"{receipt.code}: {receipt.message}",
        resource=render(receipt.result) if receipt.ok else None,
    )


def admit(node: Node, txs: Sequence[Tx]) -> dict[bytes, LedgerError]:
    """Submit the txs not yet committed; the refusal of each tx the node did not admit, by id."""
    fresh = [tx for tx in txs if node.store.get_tx_location(tx.id) is None]
    return {admitted.tx_id: admitted.error for admitted in node.submit(fresh) if admitted.error is not None}


async def submit_as(
    node: Node,
    principal: Principal,
    kind: str,
    payload: dict[str, Any],
    response: Response,
    idempotency_key: str | None,
    wait: str | None,
    render: Render = lambda result: None,
) -> WriteResult[Any]:
    """Sign `kind` with `payload` as the principal's identity, admit it, and answer as the module says."""
    identity = principal.identity.id
    tx_id = None if idempotency_key is None else find_first_tx(node, identity, idempotency_key, kind, payload)
    if tx_id is None:
        request = {"kind": kind, "payload": payload}
        valid_until = recall_window(node, principal, idempotency_key, request)
        tx = sign_as(node, principal, kind, payload, derive_nonce(identity, idempotency_key), valid_until)
        if idempotency_key is not None:
            remember_request(node, principal, idempotency_key, request, [tx.id], valid_until)
        for error in admit(node, [tx]).values():
            raise error
        tx_id = tx.id
    await wait_for_commit(node, [tx_id], wait)
    result = describe_tx(node, tx_id, render)
    if result.receipt is not None and result.receipt.code == IDEMPOTENCY_CONFLICT:
        raise IdempotencyConflict(f"Idempotency-Key {idempotency_key!r} was used with another request")
    if result.status == "pending":
        response.status_code = 202
        response.headers["location"] = f"/v1/tx/{tx_id.hex()}"
    return result
