"""`omsnode backup` and `omsnode restore`: a node home's data, settings and tokens (and keys, if asked) in one file.

backup --home H --out FILE [--with-keys]    consistent while the node runs (one LevelDB snapshot)
restore --home H FILE                       into an empty or wiped home; the node then catches up from its peers
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from cli.output import ExitCode

BACKUP_TIMEOUT_S = 600.0
"""Longest a running node may take to stream its store."""


def cmd_backup(args: argparse.Namespace) -> int:
    import httpx

    from ledger.genesis import Genesis
    from ledger.keys import PrivateKey
    from ledger.store import Store, StoreLocked
    from node.backup import BackupError, iter_pairs, sign_backup_request, write_backup
    from node.config import DATA_DIR, GENESIS_FILE, KEY_FILE, NodeConfig

    home = Path(args.home)
    out = Path(args.out)
    config = NodeConfig.load(home)
    try:
        store = Store(home / DATA_DIR)
    except StoreLocked:
        genesis = Genesis.load(home / GENESIS_FILE)
        key = PrivateKey.load(home / KEY_FILE)
        body = sign_backup_request(key, genesis.chain_id, config.node_id, int(time.time() * 1000))
        url = f"{config.url}/v1/admin/backup"
        verify = config.make_peer_ssl_context()
        with httpx.stream("POST", url, json=body, timeout=BACKUP_TIMEOUT_S, verify=verify) as response:
            if response.status_code != 200:
                response.read()
                refusal = f"HTTP {response.status_code} {response.text}"
                raise BackupError(f"the running node refused the backup: {refusal}") from None
            members = write_backup(home, out, response.iter_bytes(), args.with_keys)
        source = f"running node at {config.url}"
    else:
        try:
            members = write_backup(home, out, iter_pairs(store), args.with_keys)
        finally:
            store.close()
        source = "stopped node"
    print(f"backup of {config.node_id} ({source}) written to {out}: {out.stat().st_size} bytes, {', '.join(members)}")
    return ExitCode.OK


def cmd_restore(args: argparse.Namespace) -> int:
    from node.backup import restore_backup

    members = restore_backup(Path(args.home), Path(args.file))
    print(f"restored {', '.join(members)} into {args.home}; start it with: omsnode start --home {args.home}")
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("backup", help="a node home's data, settings and tokens in one file, while it runs")
    p.add_argument("--home", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--with-keys", action="store_true", help="include the node's key and its client keys")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty or wiped home")
    p.add_argument("--home", required=True)
    p.add_argument("file")
    p.set_defaults(func=cmd_restore)
