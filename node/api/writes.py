"""Writes through resource routes: the node signs a tx for the token's identity, and answers when asked.

A route names a tx kind and builds its payload; `submit_as` checks the
token's identity may send that kind (403 otherwise), signs with the key the
node holds for it (`clients/<identity>.key` in the home), and admits the tx.

- `Idempotency-Key`: the tx's nonce is derived from the identity and the key,
  so the same key and body make the very same tx (the same id, committed at
  most once); the node remembers the key with a hash of the request and the
  tx's `valid_until`, and the same key with another body is 409. The tx is
  signed with the node's suggested window (`Node.suggest_valid_until`); a
  retry after that window answers the first result if the tx was committed,
  and `expired_transaction` if it never was.
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
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Header, Query, Response

from ledger.encoding import decode, encode
from ledger.keys import PrivateKey
from ledger.tx import make_tx
from node.api.errors import Conflict, Forbidden
from node.api.models import Receipt, WriteResult
from node.api.render import render_receipt
from node.config import CLIENTS_DIR
from node.node import Node
from node.tokens import Principal

COMMIT_WAIT_S = 30.0
"""Longest a `wait=commit` answer waits for the commit."""

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="the same key and body answer the first result; another body is 409"),
]
Wait = Annotated[Literal["commit"] | None, Query(description="`commit`: answer once the tx is committed")]

_nonces = itertools.count(time.time_ns())


def _nonce(identity: str, key: str | None) -> int:
    if key is None:
        return next(_nonces)
    return int.from_bytes(hashlib.sha256(f"{identity}\x00{key}".encode()).digest()[:8], "big") >> 1


async def submit_as(
    node: Node,
    principal: Principal,
    kind: str,
    payload: dict[str, Any],
    response: Response,
    idempotency_key: str | None,
    wait: str | None,
    render: Callable[[dict[str, Any]], dict[str, Any] | None] = lambda result: None,
) -> WriteResult:
    """Sign `kind` with `payload` as the principal's identity, admit it, and answer as the module says;
    `render` turns a committed receipt's result into the resource as it now is."""
    identity = principal.identity
    roles = node.contracts.required_roles(kind) or frozenset()
    if not identity.roles & roles:
        raise Forbidden(
            f"{identity.id} (roles {sorted(identity.roles)}) may not {kind}; it needs one of {sorted(roles)}"
        )
    key_file = node.home / CLIENTS_DIR / f"{identity.id}.key"
    if not key_file.exists():
        raise Forbidden(f"this node holds no key for {identity.id}: make the token with `--key`")
    valid_until = node.suggest_valid_until()
    remember = f"idem/{identity.id}/{idempotency_key}".encode()
    request_hash = hashlib.sha256(encode({"kind": kind, "payload": payload})).digest()
    known = None if idempotency_key is None else node.store.get_local(remember)
    if known is not None:
        record = decode(known)
        if record["request"] != request_hash:
            raise Conflict(f"Idempotency-Key {idempotency_key!r} was used with another request")
        valid_until = record["valid_until"]
    tx = make_tx(
        node.genesis.chain_id,
        kind,
        identity.id,
        _nonce(identity.id, idempotency_key),
        payload,
        PrivateKey.load(key_file),
        valid_until=valid_until,
    )
    if idempotency_key is not None and known is None:
        node.store.put_local(remember, encode({"request": request_hash, "tx_id": tx.id, "valid_until": valid_until}))
    if node.store.get_tx_location(tx.id) is None:
        (admitted,) = node.submit([tx])
        if admitted.error is not None:
            raise admitted.error
    if wait == "commit":
        deadline = time.monotonic() + COMMIT_WAIT_S
        while node.store.get_tx_location(tx.id) is None and time.monotonic() < deadline:
            await node.commits.wait(deadline - time.monotonic())
    found = node.find_receipt(tx.id)
    if found is None:
        response.status_code = 202
        response.headers["location"] = f"/v1/tx/{tx.id.hex()}"
        return WriteResult(tx_id=tx.id.hex(), status="pending")
    height, _, receipt = found
    return WriteResult(
        tx_id=tx.id.hex(),
        status="committed" if receipt.ok else "rejected",
        height=height,
        receipt=Receipt(**render_receipt(receipt)),
        reason=None if receipt.ok else f"{receipt.code}: {receipt.message}",
        resource=render(receipt.result) if receipt.ok else None,
    )
