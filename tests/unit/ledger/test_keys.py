"""Ed25519 keys: key files, signatures, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import InvalidSignature
from ledger.keys import PASSPHRASE_ENV, KeyFileError, PrivateKey, is_private_to_owner, is_valid_signature, verify


def test_sign_and_verify() -> None:
    key = PrivateKey.generate()
    signature = key.sign(b"order 1")
    verify(key.public, b"order 1", signature)
    assert not is_valid_signature(key.public, b"order 2", signature)
    assert not is_valid_signature(PrivateKey.generate().public, b"order 1", signature)


def test_flipped_bit_in_signature_is_refused() -> None:
    key = PrivateKey.generate()
    signature = bytearray(key.sign(b"x"))
    signature[10] ^= 1
    with pytest.raises(InvalidSignature):
        verify(key.public, b"x", bytes(signature))


def test_wrong_sizes_are_refused() -> None:
    key = PrivateKey.generate()
    with pytest.raises(InvalidSignature, match="size"):
        verify(key.public, b"x", b"short")
    with pytest.raises(InvalidSignature, match="size"):
        verify(b"\x00" * 31, b"x", key.sign(b"x"))


def test_key_file_round_trip(tmp_path: Path) -> None:
    key = PrivateKey.generate()
    key.save(tmp_path / "node_key")
    assert (tmp_path / "node_key").stat().st_mode & 0o777 == 0o600
    loaded = PrivateKey.load(tmp_path / "node_key")
    assert loaded.public == key.public
    verify(key.public, b"m", loaded.sign(b"m"))


def test_non_ed25519_key_file_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k").write_bytes(
        other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with pytest.raises(KeyFileError, match="Ed25519"):
        PrivateKey.load(tmp_path / "k")


def test_a_key_file_is_its_owners_alone_even_over_a_file_open_to_others(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_text("")
    path.chmod(0o644)
    PrivateKey.generate().save(path)
    assert path.stat().st_mode & 0o777 == 0o600 and is_private_to_owner(path)


def test_with_a_passphrase_in_the_environment_keys_are_written_encrypted_and_read_only_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, path = PrivateKey.generate(), tmp_path / "k.key"
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    key.save(path)
    assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert PrivateKey.load(path).public == key.public
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse")
    with pytest.raises(KeyFileError, match="passphrase is wrong"):
        PrivateKey.load(path)
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(KeyFileError, match=PASSPHRASE_ENV):
        PrivateKey.load(path)
    key.save(path)
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----") and PrivateKey.load(path).public == key.public


def test_a_file_that_is_no_key_is_refused_with_the_ledgers_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.key"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError):
        PrivateKey.load(path)
