"""The PBFT messages (six of the protocol and a TIMEOUT), their signing bytes and their canonical wire form.

Every message names its chain, its sender (a validator id from genesis) and
carries the sender's Ed25519 signature over `compute_signing_bytes`. A COMMIT
is signed over `ledger.block.commit_sign_bytes`, so 2f+1 commits for a block
are, as they stand, its `CommitCertificate`. A PRE-PREPARE is signed over the
block hash, not the block, and the block hash commits to the txs and roots.
VIEW-CHANGE and NEW-VIEW carry other signed messages and are signed over their
whole encoded body. A TIMEOUT is a replica's non-binding wish to leave a view
at a height: a VIEW-CHANGE, which binds, follows only once f+1 replicas wish
the same (see `consensus.replica`).

`encode_message` and `decode_message` are the only way messages become bytes
and back; anything malformed is an `InvalidMessage`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from consensus.errors import InvalidMessage
from ledger.block import Block, CommitCertificate, commit_sign_bytes, encode_block
from ledger.encoding import decode, encode, encode_spliced
from ledger.errors import LedgerError
from ledger.keys import PrivateKey

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest encoded consensus message accepted (a NEW-VIEW may carry 2f+2 full blocks)."""


@dataclass(frozen=True)
class PrePrepare:
    """The primary of `view` proposes `block` as the block at `height`."""

    chain_id: str
    view: int
    height: int
    block: Block
    sender: str
    signature: bytes = b""


@dataclass(frozen=True)
class Prepare:
    """The sender accepted the proposal `block_hash` at (`view`, `height`)."""

    chain_id: str
    view: int
    height: int
    block_hash: bytes
    sender: str
    signature: bytes = b""


@dataclass(frozen=True)
class Commit:
    """The sender saw 2f+1 prepares for `block_hash` at (`view`, `height`) and votes to commit it."""

    chain_id: str
    view: int
    height: int
    block_hash: bytes
    sender: str
    signature: bytes = b""


@dataclass(frozen=True)
class Checkpoint:
    """The sender has committed `block_hash` at `height`, with `state_root` after it."""

    chain_id: str
    height: int
    block_hash: bytes
    state_root: bytes
    sender: str
    signature: bytes = b""


@dataclass(frozen=True)
class Timeout:
    """The sender saw no progress in `view` at `height` and would leave the view if f others agree."""

    chain_id: str
    view: int
    height: int
    """The height the sender is working on (its committed height + 1)."""
    sender: str
    signature: bytes = b""


@dataclass(frozen=True)
class PreparedCertificate:
    """Proof that a block was prepared: its PRE-PREPARE and 2f+1 matching PREPAREs of the same view."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]

    @property
    def view(self) -> int:
        return self.pre_prepare.view

    @property
    def height(self) -> int:
        return self.pre_prepare.height


@dataclass(frozen=True)
class ViewChange:
    """The sender gives up on the views before `view` and reports what it has committed and prepared."""

    chain_id: str
    view: int
    """The view the sender wants to move to."""
    height: int
    """Height of the sender's last certified block (0 for genesis)."""
    certificate: CommitCertificate | None
    """Commit certificate of the block at `height`; None only when `height` is 0."""
    prepared: PreparedCertificate | None
    """The sender's highest-view prepared certificate at `height + 1`, if any."""
    sender: str
    signature: bytes = b""


@dataclass(frozen=True)
class NewView:
    """The primary of `view` starts it: 2f+1 VIEW-CHANGEs, and the re-proposal they oblige, if any."""

    chain_id: str
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepare: PrePrepare | None
    """Re-proposal of the highest-view prepared block at the new view's first height, if any."""
    sender: str
    signature: bytes = b""


Message = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | Timeout
"""Any consensus message."""


def compute_signing_bytes(message: Message) -> bytes:
    """The bytes the sender of `message` signs."""
    if isinstance(message, Commit):
        return commit_sign_bytes(message.chain_id, message.height, message.view, message.block_hash)
    if isinstance(message, PrePrepare):
        return encode(
            {
                "block_hash": message.block.hash(),
                "chain_id": message.chain_id,
                "height": message.height,
                "sender": message.sender,
                "type": "pre_prepare",
                "view": message.view,
            }
        )
    wire = _to_wire(message)
    del wire["signature"]
    return encode(wire)


AnyMessage = TypeVar("AnyMessage", PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView, Timeout)
"""One particular message type, kept through signing."""


def sign_message(message: AnyMessage, key: PrivateKey) -> AnyMessage:
    """`message` with its signature filled in by `key`."""
    return dataclasses.replace(message, signature=key.sign(compute_signing_bytes(message)))


def encode_message(message: Message) -> bytes:
    """The canonical encoding of `message`; a PRE-PREPARE's block is spliced in as `encode_block` makes it (its
    txs from their signed bytes), the other messages are encoded whole."""
    if isinstance(message, PrePrepare):
        fields = _common_fields(message) | {"type": "pre_prepare", "view": message.view, "height": message.height}
        return encode_spliced(fields, {"block": encode_block(message.block)})
    return encode(_to_wire(message))


def decode_message(data: bytes) -> Message:
    """Decode and shape-check a message (signatures are checked by the replica, against genesis)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InvalidMessage(f"consensus message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        return _from_wire(decode(data))
    except InvalidMessage:
        raise
    except LedgerError as exc:
        raise InvalidMessage(f"malformed consensus message: {exc}") from exc


def _common_fields(message: Message) -> dict[str, Any]:
    """The fields every message has besides its type."""
    return {"chain_id": message.chain_id, "sender": message.sender, "signature": message.signature}


def _to_wire(message: Message) -> dict[str, Any]:
    common = _common_fields(message)
    if isinstance(message, PrePrepare):
        body = {"type": "pre_prepare", "view": message.view, "height": message.height, "block": message.block.to_wire()}
    elif isinstance(message, Prepare | Commit):
        kind = "prepare" if isinstance(message, Prepare) else "commit"
        body = {"type": kind, "view": message.view, "height": message.height, "block_hash": message.block_hash}
    elif isinstance(message, Checkpoint):
        body = {
            "type": "checkpoint",
            "height": message.height,
            "block_hash": message.block_hash,
            "state_root": message.state_root,
        }
    elif isinstance(message, Timeout):
        body = {"type": "timeout", "view": message.view, "height": message.height}
    elif isinstance(message, ViewChange):
        prepared = message.prepared
        body = {
            "type": "view_change",
            "view": message.view,
            "height": message.height,
            "certificate": None if message.certificate is None else message.certificate.to_wire(),
            "prepared": None
            if prepared is None
            else {
                "pre_prepare": _to_wire(prepared.pre_prepare),
                "prepares": [_to_wire(p) for p in prepared.prepares],
            },
        }
    elif isinstance(message, NewView):
        body = {
            "type": "new_view",
            "view": message.view,
            "view_changes": [_to_wire(v) for v in message.view_changes],
            "pre_prepare": None if message.pre_prepare is None else _to_wire(message.pre_prepare),
        }
    else:
        raise TypeError(f"not a consensus message: {message!r}")
    return common | body


_FIELDS: dict[str, tuple[str, ...]] = {
    "pre_prepare": ("view", "height", "block"),
    "prepare": ("view", "height", "block_hash"),
    "commit": ("view", "height", "block_hash"),
    "checkpoint": ("height", "block_hash", "state_root"),
    "view_change": ("view", "height", "certificate", "prepared"),
    "new_view": ("view", "view_changes", "pre_prepare"),
    "timeout": ("view", "height"),
}
"""The fields of each message type besides type, chain_id, sender and signature."""


def _from_wire(wire: Any) -> Message:
    if not isinstance(wire, dict):
        raise InvalidMessage("a consensus message must be a map")
    kind = wire.get("type")
    if kind not in _FIELDS:
        raise InvalidMessage(f"unknown consensus message type {kind!r}")
    expected = {"type", "chain_id", "sender", "signature", *_FIELDS[kind]}
    if set(wire) != expected:
        raise InvalidMessage(f"{kind} fields: expected {sorted(expected)}, got {sorted(wire)}")
    chain_id = _field(wire, "chain_id", str)
    sender = _field(wire, "sender", str)
    signature = _field(wire, "signature", bytes)
    if kind == "pre_prepare":
        block = Block.from_wire(wire["block"])
        return PrePrepare(chain_id, _height(wire, "view"), _height(wire, "height"), block, sender, signature)
    if kind in ("prepare", "commit"):
        vote = Prepare if kind == "prepare" else Commit
        block_hash = _field(wire, "block_hash", bytes)
        return vote(chain_id, _height(wire, "view"), _height(wire, "height"), block_hash, sender, signature)
    if kind == "checkpoint":
        return Checkpoint(
            chain_id,
            _height(wire, "height"),
            _field(wire, "block_hash", bytes),
            _field(wire, "state_root", bytes),
            sender,
            signature,
        )
    if kind == "timeout":
        return Timeout(chain_id, _height(wire, "view"), _height(wire, "height"), sender, signature)
    if kind == "view_change":
        certificate = None if wire["certificate"] is None else CommitCertificate.from_wire(wire["certificate"])
        return ViewChange(
            chain_id,
            _height(wire, "view"),
            _height(wire, "height"),
            certificate,
            _prepared_from_wire(wire["prepared"]),
            sender,
            signature,
        )
    view_changes = _field(wire, "view_changes", list)
    pre_prepare = None if wire["pre_prepare"] is None else _from_wire(wire["pre_prepare"])
    return NewView(
        chain_id,
        _height(wire, "view"),
        tuple(_nested(v, ViewChange) for v in view_changes),
        None if pre_prepare is None else _nested(pre_prepare, PrePrepare),
        sender,
        signature,
    )


def _prepared_from_wire(wire: Any) -> PreparedCertificate | None:
    if wire is None:
        return None
    if not isinstance(wire, dict) or set(wire) != {"pre_prepare", "prepares"}:
        raise InvalidMessage("a prepared certificate is a map of pre_prepare and prepares")
    pre_prepare = _nested(_from_wire(wire["pre_prepare"]), PrePrepare)
    prepares = tuple(_nested(_from_wire(p), Prepare) for p in _field(wire, "prepares", list))
    return PreparedCertificate(pre_prepare, prepares)


def _nested(value: Any, kind: type) -> Any:
    if isinstance(value, dict):
        value = _from_wire(value)
    if not isinstance(value, kind):
        raise InvalidMessage(f"expected a nested {kind.__name__}, got {type(value).__name__}")
    return value


def _field(wire: dict[str, Any], name: str, kind: type) -> Any:
    value = wire[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidMessage(f"consensus message field {name!r} must be {kind.__name__}")
    return value


def _height(wire: dict[str, Any], name: str) -> int:
    """A view or height: a non-negative integer."""
    value = _field(wire, name, int)
    if value < 0:
        raise InvalidMessage(f"consensus message field {name!r} must not be negative")
    return value
