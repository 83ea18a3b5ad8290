"""Ed25519 identities: key files, signing and verification.

Key files are PKCS#8 PEM written with `cryptography`, readable by their owner
alone (mode 0600); the hot verification path uses PyNaCl (libsodium), which
verifies about twice as fast. A public key travels as 32 raw bytes, shown as
hex in JSON files.

With a passphrase in the environment variable `OMS_KEY_PASSPHRASE`, every key
file written is encrypted with it (PKCS#8 with the best encryption
`cryptography` offers), and an encrypted key file is read with it; without
one, an encrypted key file is refused with a message that names the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger.errors import InvalidSignature, LedgerError

PUBLIC_KEY_SIZE = 32
"""Size in bytes of a raw Ed25519 public key."""

SIGNATURE_SIZE = 64
"""Size in bytes of an Ed25519 signature."""

PASSPHRASE_ENV = "OMS_KEY_PASSPHRASE"
"""Environment variable holding the passphrase that key files are encrypted with (unset or empty: none)."""

KEY_FILE_MODE = 0o600
"""A key file is read and written by its owner alone."""

MAX_KEY_FILE_BYTES = 16 * 1024
"""Largest key file read (an Ed25519 PEM, even encrypted, is well under 1 KiB)."""


class KeyFileError(LedgerError):
    """A key file that cannot be read: not a key, encrypted without the passphrase, or the wrong passphrase."""

    code = "key_file_error"


def get_passphrase() -> bytes | None:
    """The passphrase of `OMS_KEY_PASSPHRASE`, or None when it is unset or empty."""
    value = os.environ.get(PASSPHRASE_ENV, "")
    return value.encode() if value else None


def is_private_to_owner(path: Path) -> bool:
    """Is the file at `path` closed to its group and to others (no permission bits beyond the owner's)?"""
    return Path(path).stat().st_mode & 0o077 == 0


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
        """Write the key as a PKCS#8 PEM file readable only by its owner (mode 0600, whatever a file there had
        before), encrypted with the passphrase of `OMS_KEY_PASSPHRASE` when one is set."""
        key = Ed25519PrivateKey.from_private_bytes(bytes(self._signing))
        passphrase = get_passphrase()
        encryption: serialization.KeySerializationEncryption = (
            serialization.NoEncryption() if passphrase is None else serialization.BestAvailableEncryption(passphrase)
        )
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        write_private_file(Path(path), pem)

    @classmethod
    def load(cls, path: Path) -> PrivateKey:
        """The key of a PEM file (decrypted with the passphrase of `OMS_KEY_PASSPHRASE` if it is encrypted);
        `KeyFileError` when it cannot be read as one."""
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
        encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
        passphrase = get_passphrase() if encrypted else None
        if encrypted and passphrase is None:
            raise KeyFileError(f"{path} is encrypted: set {PASSPHRASE_ENV} to its passphrase")
        try:
            key = serialization.load_pem_private_key(data[:MAX_KEY_FILE_BYTES], password=passphrase)
        except (ValueError, TypeError) as exc:
            wrong = " (or the passphrase is wrong)" if encrypted else ""
            raise KeyFileError(f"{path} does not hold a readable private key{wrong}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} does not hold an Ed25519 private key")
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls(seed)


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by its owner alone: created 0600, and set so if the file existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), KEY_FILE_MODE)
        out.write(data)


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
