"""Ed25519 identities: key files, signing and verification.

Key files are PKCS#8 PEM written with `cryptography`; the hot verification
path uses PyNaCl (libsodium), which verifies about twice as fast. A public key
travels as 32 raw bytes, shown as hex in JSON files.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger.errors import InvalidSignature

PUBLIC_KEY_SIZE = 32
"""Size in bytes of a raw Ed25519 public key."""

SIGNATURE_SIZE = 64
"""Size in bytes of an Ed25519 signature."""


class PrivateKey:
    """An Ed25519 signing key."""

    __slots__ = ("_signing", "public")

    def __init__(self, seed: bytes) -> None:
        self._signing = SigningKey(seed)
        self.public: bytes = bytes(self._signing.verify_key)
        """The raw 32-byte public key."""

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(os.urandom(32))

    @classmethod
    def from_seed_text(cls, text: str) -> PrivateKey:
        """A deterministic key for tests and devnets (never for production)."""
        from ledger.encoding import sha256

        return cls(sha256(text.encode()))

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message).signature

    def save(self, path: Path) -> None:
        """Write the key as an unencrypted PKCS#8 PEM file readable only by its owner."""
        key = Ed25519PrivateKey.from_private_bytes(bytes(self._signing))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)

    @classmethod
    def load(cls, path: Path) -> PrivateKey:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls(seed)


_verify_keys: dict[bytes, VerifyKey] = {}


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise `InvalidSignature` unless `signature` signs `message` under `public_key`."""
    if len(signature) != SIGNATURE_SIZE or len(public_key) != PUBLIC_KEY_SIZE:
        raise InvalidSignature("signature or public key has the wrong size")
    key = _verify_keys.get(public_key)
    if key is None:
        key = _verify_keys[public_key] = VerifyKey(public_key)
    try:
        key.verify(message, signature)
    except BadSignatureError as exc:
        raise InvalidSignature("signature does not verify") from exc


def is_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Yes/no form of `verify`."""
    try:
        verify(public_key, message, signature)
    except InvalidSignature:
        return False
    return True
