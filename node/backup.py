"""Backups of a node's home, taken while the node runs, and restoring one into an empty home.

A backup is a gzipped tar of the home's settings and records (`config.toml`,
`genesis.json`, `identity.json`, `api_tokens.json`, `addresses.json`) and of
its LevelDB store as one stream of `[key, value]` msgpack pairs (`data.kv`),
read from a LevelDB snapshot: every pair as of one instant, whatever the
node commits meanwhile. The node's key and its client keys go in only when
asked for (`with_keys`): a backup without them can be kept where keys may
not go. The consensus log is left out on purpose: a node restored with
blocks but no consensus log abstains from voting at the heights it may have
voted at before (`node.node`), so a restore can never make it sign twice.

A running node holds its store's lock, so `omsnode backup` asks the node
for the snapshot stream (`POST /v1/admin/backup`), proving that it holds the
home by signing the request with the node's own key (`sign_backup_request`);
a stopped node's store is read directly. A restored node starts at the
height of its backup and catches up from its peers.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import msgpack

from ledger.encoding import encode
from ledger.errors import LedgerError
from ledger.keys import PrivateKey, is_valid_signature
from ledger.store import Store
from node.config import ADDRESSES_FILE, CLIENTS_DIR, CONFIG_FILE, DATA_DIR, GENESIS_FILE, KEY_FILE
from node.forming import HOME_MODE, IDENTITY_FILE
from node.tokens import TOKENS_FILE

DATA_MEMBER = "data.kv"
"""The member of a backup that holds the store's pairs."""

HOME_FILES = (CONFIG_FILE, GENESIS_FILE, IDENTITY_FILE, TOKENS_FILE, ADDRESSES_FILE)
"""The home's files every backup holds (those that exist)."""

MAX_KEY_BYTES = 1024
"""Longest store key a backup may hold (the store's keys are far shorter)."""

MAX_VALUE_BYTES = 64 * 1024 * 1024
"""Longest store value a backup may hold."""

MAX_MEMBER_BYTES = 16 * 1024 * 1024
"""Largest settings file or key file a backup may hold."""

CHUNK_BYTES = 1024 * 1024
"""Pairs are sent and written in chunks of about this size."""

RESTORE_BATCH_BYTES = 8 * 1024 * 1024
"""Bytes of pairs written to LevelDB in one write batch on restore."""

REQUEST_DOMAIN = "oms-ledger/backup-request"
"""Tag inside a backup request's signed bytes, so its signature passes for nothing else."""

REQUEST_MAX_AGE_MS = 60_000
"""How far a backup request's time may be from the node's clock."""


class BackupError(LedgerError):
    """A backup cannot be made or restored."""

    code = "backup_failed"


def iter_pairs(store: Store) -> Iterator[bytes]:
    """Every pair of a LevelDB snapshot of `store`, as chunks of msgpack `[key, value]` arrays."""
    snapshot = store.raw_db().snapshot()
    packer = msgpack.Packer(use_bin_type=True)
    chunk = bytearray()
    for key, value in snapshot.iterator():
        chunk += packer.pack([key, value])
        if len(chunk) >= CHUNK_BYTES:
            yield bytes(chunk)
            chunk.clear()
    if chunk:
        yield bytes(chunk)


def compute_request_bytes(chain_id: str, node_id: str, time_ms: int) -> bytes:
    return encode({"domain": REQUEST_DOMAIN, "chain_id": chain_id, "node": node_id, "time_ms": time_ms})


def sign_backup_request(key: PrivateKey, chain_id: str, node_id: str, time_ms: int) -> dict[str, Any]:
    """The body of `POST /v1/admin/backup`: the time, signed with the node's own key."""
    return {"time_ms": time_ms, "signature": key.sign(compute_request_bytes(chain_id, node_id, time_ms)).hex()}


def is_backup_request_valid(
    public_key: bytes, chain_id: str, node_id: str, time_ms: int, signature: str, now_ms: int
) -> bool:
    """Did the holder of the node's key ask for this backup just now?"""
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        return False
    signed = compute_request_bytes(chain_id, node_id, time_ms)
    return abs(now_ms - time_ms) <= REQUEST_MAX_AGE_MS and is_valid_signature(public_key, signed, raw)


def write_backup(home: Path, out: Path, pairs: Iterable[bytes], with_keys: bool) -> list[str]:
    """Write the backup of `home` with the store's `pairs` to `out` (only once it is complete); answers the
    members written."""
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out")
    members = [name for name in HOME_FILES if (home / name).exists()]
    if with_keys:
        members.append(KEY_FILE)
        clients = home / CLIENTS_DIR
        members += [f"{CLIENTS_DIR}/{p.name}" for p in sorted(clients.iterdir())] if clients.is_dir() else []
    fd, partial = tempfile.mkstemp(prefix=out.name, suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in members:
                tar.add(home / name, arcname=name, recursive=False)
            with tempfile.TemporaryFile(dir=out.parent) as data:
                for chunk in pairs:
                    data.write(chunk)
                info = tarfile.TarInfo(DATA_MEMBER)
                info.size = data.tell()
                data.seek(0)
                tar.addfile(info, data)
        os.chmod(partial, 0o600)
        os.replace(partial, out)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return [*members, DATA_MEMBER]


def restore_backup(home: Path, backup: Path) -> list[str]:
    """Restore `backup` into `home`, which must hold no store and no settings yet (its key may be there);
    answers the members restored."""
    if (home / CONFIG_FILE).exists() or ((home / DATA_DIR).exists() and any((home / DATA_DIR).iterdir())):
        raise BackupError(f"{home} holds a node; restore into an empty home (or remove its {DATA_DIR} and config)")
    try:
        with tarfile.open(backup, mode="r:gz") as tar:
            members = _restore_members(home, backup, tar)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"{backup} cannot be read as a backup: {exc}") from exc
    return sorted(members)


def _restore_members(home: Path, backup: Path, tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    """Check that `tar` holds a node home's backup and nothing else, then write its members into `home`."""
    members = {member.name: member for member in tar.getmembers()}
    allowed = {*HOME_FILES, KEY_FILE, DATA_MEMBER}
    unknown = [n for n in members if n not in allowed and not _is_client_key(n)]
    bad = [n for n, m in members.items() if not m.isfile() or (n != DATA_MEMBER and m.size > MAX_MEMBER_BYTES)]
    if unknown or bad or DATA_MEMBER not in members or GENESIS_FILE not in members:
        raise BackupError(f"{backup} is not a backup of a node home (unexpected: {sorted(unknown + bad)[:5]})")
    if KEY_FILE not in members and not (home / KEY_FILE).exists():
        raise BackupError(f"{backup} holds no keys: put the node's {KEY_FILE} into {home} first")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(HOME_MODE)
    data = tar.extractfile(members[DATA_MEMBER])
    if data is None:
        raise BackupError(f"{backup}: {DATA_MEMBER} cannot be read")
    _restore_pairs(home / DATA_DIR, data)
    for name, member in members.items():
        if name != DATA_MEMBER:
            _extract(tar, member, home / name)
    return members


def _is_client_key(name: str) -> bool:
    folder, _, file = name.partition("/")
    return folder == CLIENTS_DIR and bool(file) and "/" not in file and not file.startswith(".")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    if source is None:
        raise BackupError(f"{member.name} cannot be read")
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if member.name == KEY_FILE or member.name.startswith(f"{CLIENTS_DIR}/") else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out)


def _restore_pairs(path: Path, data: IO[bytes]) -> None:
    """Write the pairs of `data` into a new LevelDB at `path` (removed again if they do not all check out)."""
    unpacker = msgpack.Unpacker(
        data, raw=True, max_bin_len=MAX_VALUE_BYTES, max_array_len=2, max_map_len=0, max_str_len=0
    )
    store = Store(path)
    db = store.raw_db()
    try:
        batch = db.write_batch()
        size = 0
        for pair in unpacker:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, bytes) for p in pair)):
                raise BackupError(f"{DATA_MEMBER} holds something other than [key, value] pairs")
            key, value = pair
            if len(key) > MAX_KEY_BYTES:
                raise BackupError(f"{DATA_MEMBER} holds a key longer than {MAX_KEY_BYTES} bytes")
            batch.put(key, value)
            size += len(key) + len(value)
            if size >= RESTORE_BATCH_BYTES:
                batch.write()
                batch, size = db.write_batch(), 0
        batch.write()
    except (ValueError, msgpack.UnpackException, BackupError) as exc:
        store.close()
        shutil.rmtree(path, ignore_errors=True)
        raise BackupError(f"the backup's store is damaged: {exc}") from exc
    store.close()
