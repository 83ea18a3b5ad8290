"""API tokens: bearer secrets that map to one ledger identity and a set of scopes.

An operator creates a token with `omsnode token create`; the node keeps only
its sha256 in `api_tokens.json` in its home (a token is 32 random bytes, so a
plain hash is as hard to reverse as the token is to guess), and the token
itself is shown once. A token reads `oms_<id>_<secret>`: the id finds the
entry, the hash of the whole token must match it. A running node re-reads the
file whenever it changes, so a token created or revoked while it runs counts
at once.

A token acts as its identity: it reads what that identity's organisation may
see (operators and auditors see every organisation) and writes by txs the node
signs with that identity's key (`clients/<identity>.key` in the home). Scopes
narrow what it may do below what the identity's roles allow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from ledger.errors import LedgerError
from ledger.genesis import Genesis, Identity
from ledger.keys import MAX_KEY_FILE_BYTES, PrivateKey, is_private_to_owner, write_private_file
from ledger.strict import convert_strict
from node.config import CLIENTS_DIR

TOKENS_FILE = "api_tokens.json"
"""Where a node's tokens (hashed) live in its home."""

TOKEN_PREFIX = "oms"

CLIENTS_DIR_MODE = 0o700
"""The client keys' folder is opened by its owner alone."""

SCOPES = frozenset(
    {
        "orders:read",
        "orders:write",
        "inventory:read",
        "inventory:write",
        "invoices:read",
        "catalogue:read",
        "catalogue:write",
        "config:read",
        "events:read",
        "chain:read",
        "webhooks:read",
        "webhooks:write",
        "governance:write",
        "personal:read",
        "customers:read",
        "customers:write",
    }
)
"""Every scope a token may hold: `<resource>:read` or `<resource>:write`; `chain` is blocks, txs and receipts;
`personal` is the ship-to and notes of orders that the token's organisation may read; `customers` the settings
that name customers (the blocked customers of the review gate)."""

GLOBAL_READERS = frozenset({"operator", "auditor"})
"""Roles that read every organisation's data; the others read their own organisation's."""


class TokenError(LedgerError):
    """A token that cannot be created or revoked as asked."""

    code = "token_error"


@dataclass(frozen=True)
class Token:
    """One stored token (its hash, never the token)."""

    id: str
    identity: str
    scopes: frozenset[str]
    hash: str
    """sha256 hex of the whole token string."""
    created_ms: int
    label: str = ""
    rate_per_s: int | None = None
    """Requests per second this token may send (bursts of twice that); None: the node's setting."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "identity": self.identity,
            "scopes": sorted(self.scopes),
            "hash": self.hash,
            "created_ms": self.created_ms,
            "label": self.label,
            "rate_per_s": self.rate_per_s,
        }

    @classmethod
    def from_wire(cls, wire: Any, what: str = "token") -> Token:
        """A stored token, every field of its declared type and no other key (`"scopes": "all"` is refused, not
        read as the scopes `a` and `l`), its scopes known; `TokenError` naming `what` otherwise."""
        token = convert_strict(wire, cls, TokenError, what)
        unknown = sorted(token.scopes - SCOPES)
        if unknown:
            raise TokenError(f"{what}: unknown scopes {unknown}")
        return token


class TokensFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`api_tokens.json` as declared: the stored tokens (each checked by `Token.from_wire`)."""

    tokens: list[dict[str, Any]]


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a token's identity and scopes."""

    token_id: str
    identity: Identity
    scopes: frozenset[str]

    @property
    def org(self) -> str:
        return self.identity.org

    @property
    def sees_all(self) -> bool:
        """Operators and auditors read every organisation's data."""
        return bool(self.identity.roles & GLOBAL_READERS)

    def can_see(self, orgs: list[str] | set[str] | tuple[str, ...]) -> bool:
        """Whether data belonging to any of `orgs` is visible to this principal."""
        return self.sees_all or self.org in orgs


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    """`orders:read,orders:write` (or `all`) as a set of scopes; unknown scopes are refused."""
    if text.strip() == "all":
        return SCOPES
    scopes = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(scopes - SCOPES)
    if unknown or not scopes:
        raise TokenError(f"unknown scopes {unknown or [text]}; known: {', '.join(sorted(SCOPES))}")
    return scopes


class TokenStore:
    """The tokens of one node home, re-read when the file changes."""

    def __init__(self, home: Path) -> None:
        self.path = home / TOKENS_FILE
        self._stamp: tuple[int, int] | None = None
        self._tokens: dict[str, Token] = {}

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def tokens(self) -> dict[str, Token]:
        """Every token by id, as the file holds them now."""
        stamp = self._stat()
        if stamp != self._stamp:
            self._tokens = {token.id: token for token in self._load()} if stamp is not None else {}
            self._stamp = stamp
        return self._tokens

    def _load(self) -> list[Token]:
        """The tokens of the file; `TokenError` on a file that is not JSON of the declared shape."""
        try:
            wire = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise TokenError(f"{self.path} is not valid JSON: {exc}") from exc
        file = convert_strict(wire, TokensFile, TokenError, str(self.path))
        return [Token.from_wire(entry, f"{self.path}: token {index}") for index, entry in enumerate(file.tokens)]

    def find(self, token: str) -> Token | None:
        """The stored token `token` is, or None if it is malformed, unknown or revoked."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        stored = self.tokens().get(token_id)
        if stored is None or not hmac.compare_digest(stored.hash, hash_token(token)):
            return None
        return stored

    def _save(self, tokens: dict[str, Token]) -> None:
        body = json.dumps({"tokens": [t.to_wire() for t in tokens.values()]}, indent=2, sort_keys=True) + "\n"
        partial = self.path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(body)
        partial.replace(self.path)

    def create(
        self,
        genesis: Genesis,
        identity: str,
        scopes: frozenset[str],
        label: str = "",
        *,
        token: str | None = None,
        rate_per_s: int | None = None,
        added: bool = False,
    ) -> str:
        """Store a new token for client `identity` and return it (the only time it is seen).

        `identity` is a client of genesis, or with `added` one that governance added (`client.add`), which only
        the ledger knows: the node checks a token's identity against the membership in force at every request,
        so a token for an identity that is not (or no longer) a client is refused there. `token` stores a token
        made elsewhere (the same token on every node of a devnet)."""
        member = genesis.identity(identity)
        if (member is None and not added) or (member is not None and member not in genesis.clients):
            clients = ", ".join(c.id for c in genesis.clients)
            raise TokenError(f"{identity!r} is not a client identity of {genesis.chain_id!r} (clients: {clients})")
        if token is None:
            token = make_token()
        token_id = token.split("_")[1]
        tokens = dict(self.tokens())
        if rate_per_s is not None and rate_per_s < 1:
            raise TokenError("a token's rate is at least 1 request per second")
        created_ms = int(time.time() * 1000)
        tokens[token_id] = Token(token_id, identity, scopes, hash_token(token), created_ms, label, rate_per_s)
        self._save(tokens)
        return token

    def revoke(self, token_id: str) -> None:
        tokens = dict(self.tokens())
        if tokens.pop(token_id, None) is None:
            raise TokenError(f"no token {token_id!r} in {self.path}")
        self._save(tokens)


def install_client_key(home: Path, genesis: Genesis, org: str, identity: str, source: Path) -> Path:
    """Put `identity`'s key file into the home's `clients/` (owner only), for the node to sign a token's writes;
    answers where. Refused (`TokenError`) when the source is open to others (it is never copied so), when
    genesis lists `identity` with another organisation than the node's `org` (a home holds its own
    organisation's client keys only), or with another public key (the key is another identity's). An identity
    that governance added since genesis is checked by the ledger instead: a tx signed with another key fails."""
    if not is_private_to_owner(source):
        raise TokenError(f"{source} is readable by others: `chmod 600 {source}` before handing it to a node")
    member = genesis.identity(identity)
    key = PrivateKey.load(source)
    if member is not None and member.org != org:
        raise TokenError(f"{identity!r} belongs to {member.org!r}: this node's home holds {org!r}'s client keys only")
    if member is not None and member.public_key != key.public:
        raise TokenError(f"{source} is not the key of {identity!r}: genesis gives it another public key")
    folder = home / CLIENTS_DIR
    folder.mkdir(mode=CLIENTS_DIR_MODE, exist_ok=True)
    target = folder / f"{identity}.key"
    write_private_file(target, read_small_file(source))
    return target


def read_small_file(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(MAX_KEY_FILE_BYTES)


def make_token() -> str:
    """A new random token: `oms_<8 hex id>_<43 characters of secret>`."""
    return f"{TOKEN_PREFIX}_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
