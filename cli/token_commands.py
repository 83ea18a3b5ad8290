"""`omsnode token ...`: API tokens of a node home (the node accepts a change at once, even while running).

create --home DIR --identity ID --scopes S1,S2|all [--label L] [--key FILE] [--rate N] [--added]   prints it once
list --home DIR [--json]                                                     id, identity, scopes, label
revoke --home DIR --id TOKEN_ID
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.output import print_json


def cmd_create(args: argparse.Namespace) -> int:
    from ledger.genesis import Genesis
    from node.config import CLIENTS_DIR, GENESIS_FILE, NodeConfig
    from node.tokens import TokenStore, install_client_key, parse_scopes

    home = Path(args.home)
    genesis = Genesis.load(home / GENESIS_FILE)
    scopes = parse_scopes(args.scopes)
    key_file = home / CLIENTS_DIR / f"{args.identity}.key"
    if args.key and not (key_file.exists() and key_file.samefile(args.key)):
        install_client_key(home, genesis, NodeConfig.load(home).org, args.identity, Path(args.key))
    token = TokenStore(home).create(genesis, args.identity, scopes, args.label, rate_per_s=args.rate, added=args.added)
    print(token)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from node.tokens import TokenStore

    tokens = TokenStore(Path(args.home)).tokens().values()
    rows = [{k: v for k, v in token.to_wire().items() if k != "hash"} for token in tokens]
    if args.json:
        print_json(rows)
        return 0
    print(f"{'id':<10} {'identity':<14} {'label':<16} scopes")
    for row in rows:
        print(f"{row['id']:<10} {row['identity']:<14} {row['label']:<16} {','.join(row['scopes'])}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from node.tokens import TokenStore

    TokenStore(Path(args.home)).revoke(args.id)
    print(f"revoked token {args.id}")
    return 0


def add_parser(sub: Any) -> None:
    token = sub.add_parser("token", help="API tokens of a node: create, list, revoke")
    commands = token.add_subparsers(dest="token_command", required=True)
    p = commands.add_parser("create", help="make a token for a client identity; prints it once")
    p.add_argument("--home", required=True)
    p.add_argument("--identity", required=True, help="client identity of genesis the token acts as")
    p.add_argument("--scopes", required=True, help="comma-separated, e.g. orders:read,orders:write; or all")
    p.add_argument("--label", default="", help="a note saying who holds the token")
    p.add_argument("--key", help="the identity's key file, for the node to sign writes made with the token")
    p.add_argument("--rate", type=int, help="requests per second for this token (default: the node's api_rate_per_s)")
    p.add_argument(
        "--added",
        action="store_true",
        help="the identity is a client added by governance, not in genesis (the node checks it at every request)",
    )
    p.set_defaults(func=cmd_create)
    p = commands.add_parser("list", help="the tokens of a node home (never the tokens themselves)")
    p.add_argument("--home", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = commands.add_parser("revoke", help="revoke a token by its id")
    p.add_argument("--home", required=True)
    p.add_argument("--id", required=True)
    p.set_defaults(func=cmd_revoke)
