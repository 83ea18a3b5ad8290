"""Backups: what goes in (keys only when asked), a faithful restore, and refusals of damaged or hostile files."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import msgpack
import pytest

from ledger.keys import PrivateKey
from ledger.store import Store
from node.backup import (
    BackupError,
    is_backup_request_valid,
    iter_pairs,
    restore_backup,
    sign_backup_request,
    write_backup,
)
from node.config import CLIENTS_DIR, DATA_DIR, KEY_FILE
from node.home import create_network


def make_home(root: Path) -> Path:
    home = root / "home"
    create_network([home], [26600], home / CLIENTS_DIR)
    store = Store(home / DATA_DIR)
    for i in range(3000):
        store.raw_db().put(b"t/%05d" % i, bytes([i % 256]) * (i % 700))
    store.close()
    return home


def read_pairs(home: Path) -> list[tuple[bytes, bytes]]:
    store = Store(home / DATA_DIR)
    try:
        return list(store.raw_db().iterator())
    finally:
        store.close()


def test_a_restore_gives_back_every_pair_and_file_and_keys_only_when_asked(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    store = Store(home / DATA_DIR)
    try:
        members = write_backup(home, tmp_path / "b.tgz", iter_pairs(store), with_keys=False)
        with_keys = write_backup(home, tmp_path / "k.tgz", iter_pairs(store), with_keys=True)
    finally:
        store.close()
    assert KEY_FILE not in members and not any(m.startswith(CLIENTS_DIR) for m in members)
    assert KEY_FILE in with_keys and f"{CLIENTS_DIR}/operator-1.key" in with_keys
    assert (tmp_path / "b.tgz").stat().st_mode & 0o077 == 0

    target = tmp_path / "restored"
    restore_backup(target, tmp_path / "k.tgz")
    assert read_pairs(target) == read_pairs(home)
    assert (target / "config.toml").read_text() == (home / "config.toml").read_text()
    assert PrivateKey.load(target / KEY_FILE).public == PrivateKey.load(home / KEY_FILE).public
    assert (target / KEY_FILE).stat().st_mode & 0o077 == 0
    with pytest.raises(BackupError, match="holds a node"):
        restore_backup(target, tmp_path / "k.tgz")

    keyless = tmp_path / "keyless"
    with pytest.raises(BackupError, match="holds no keys"):
        restore_backup(keyless, tmp_path / "b.tgz")
    keyless.mkdir(exist_ok=True)
    shutil.copy(home / KEY_FILE, keyless / KEY_FILE)
    restore_backup(keyless, tmp_path / "b.tgz")
    assert read_pairs(keyless) == read_pairs(home)


def tar_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"genesis.json": b"{}", "data.kv": b"", "../escape": b"x"}, "not a backup"),
        ({"genesis.json": b"{}", "data.kv": b"", "clients/../../x": b"x"}, "not a backup"),
        ({"data.kv": b""}, "not a backup"),
        ({"genesis.json": b"{}", "node_key": b"k", "data.kv": msgpack.packb([b"k", b"v", b"x"])}, "damaged"),
        ({"genesis.json": b"{}", "node_key": b"k", "data.kv": msgpack.packb({"a": 1})}, "damaged"),
        ({"genesis.json": b"{}", "node_key": b"k", "data.kv": msgpack.packb([b"k" * 2000, b"v"])}, "damaged"),
    ],
)
def test_a_hostile_backup_is_refused(tmp_path: Path, members: dict[str, bytes], reason: str) -> None:
    path = tmp_path / "evil.tgz"
    path.write_bytes(tar_of(members))
    with pytest.raises(BackupError, match=reason):
        restore_backup(tmp_path / "home", path)
    assert not (tmp_path / "home" / DATA_DIR).exists()
    assert not (tmp_path / "escape").exists() and not (tmp_path / "x").exists()


def test_a_file_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"\x1f\x8b junk")
    with pytest.raises(BackupError, match="cannot be read"):
        restore_backup(tmp_path / "home", path)


def test_only_the_holder_of_the_node_key_may_ask_a_running_node_for_a_backup() -> None:
    key, other = PrivateKey.from_seed_text("node"), PrivateKey.from_seed_text("other")
    body = sign_backup_request(key, "chain", "node-0", 1_000_000)
    assert is_backup_request_valid(key.public, "chain", "node-0", body["time_ms"], body["signature"], 1_030_000)
    assert not is_backup_request_valid(key.public, "chain", "node-0", body["time_ms"], body["signature"], 1_100_000)
    assert not is_backup_request_valid(key.public, "chain", "node-1", body["time_ms"], body["signature"], 1_000_000)
    forged = sign_backup_request(other, "chain", "node-0", 1_000_000)
    assert not is_backup_request_valid(key.public, "chain", "node-0", 1_000_000, forged["signature"], 1_000_000)
    assert not is_backup_request_valid(key.public, "chain", "node-0", 1_000_000, "zz", 1_000_000)
