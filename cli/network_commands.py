"""`omsnode init`, `omsnode genesis`, `omsnode client-key`: forming a network of organisations.

init --home H --org ORG --name NODE --advertise HOST:PORT [--listen ADDR:PORT] [--tls-cert F --tls-key F --tls-ca F]
                                     the node's key and `H/identity.json` (send it to whoever builds the genesis)
init --home H --genesis FILE         install the network's genesis: the node votes if genesis lists its key,
                                     else it follows (both steps may go in one command)
init --home H [--port P]             a new single-validator network on this machine
genesis create --chain-id ID --identity A.json ... [--follower B.json ...] [--client ORG:NAME:ROLE:PUBKEY_FILE ...]
               [--set KEY=VALUE ...] --out genesis.json
                                     validators from --identity; --follower: a node that follows without voting
                                     (a client identity with role `node`: the validators serve its reads)
genesis inspect FILE [--json]        organisations, validators, quorum, clients and roles, settings, hash
client-key create --out FILE         a client identity's key pair (FILE, and the public key in FILE.pub)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.output import ExitCode, UsageError, print_fields, print_json
from cli.remote import DEFAULT_PORT


def cmd_init(args: argparse.Namespace) -> int:
    from ledger.genesis import Genesis
    from node.config import CLIENTS_DIR, KEY_FILE
    from node.forming import IDENTITY_FILE, TlsFiles, install_genesis, is_listed_node, make_identity
    from node.home import create_network

    home = Path(args.home)
    forming = [args.org, args.name, args.advertise]
    if not any(forming) and not args.genesis:
        if args.listen or args.tls_cert or args.tls_key or args.tls_ca:
            raise UsageError("--listen and --tls-* go with --org, --name and --advertise")
        genesis = create_network([home], [args.port], home / CLIENTS_DIR)
        print(f"created single-validator network {genesis.chain_id!r} in {home}")
        print(f"  validator node-0, API on http://127.0.0.1:{args.port}")
        print(f"  client keys in {home / CLIENTS_DIR}: " + ", ".join(c.id for c in genesis.clients))
        print(f"start it with: omsnode start --home {home}")
        return ExitCode.OK
    if any(forming):
        if not all(forming):
            raise UsageError("--org, --name and --advertise go together (they make the node's identity)")
        if bool(args.tls_cert) != bool(args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        files = [str(Path(f).resolve()) if f else "" for f in (args.tls_cert, args.tls_key, args.tls_ca)]
        make_identity(home, args.org, args.name, args.advertise, args.listen, TlsFiles(*files))
        print(f"made node {args.name!r} of {args.org!r} in {home}, reached at {args.advertise}")
        print(f"  send {home / IDENTITY_FILE} to whoever builds the genesis (it holds no secret)")
    elif not (home / KEY_FILE).exists():
        raise UsageError(f"{home} holds no node yet: give --org, --name and --advertise with --genesis")
    if args.genesis:
        genesis = Genesis.load(Path(args.genesis))
        part = install_genesis(home, genesis, added=args.added)
        print(f"installed genesis of {genesis.chain_id!r}: this node is a {part}")
        if part == "follower" and not is_listed_node(home, genesis):
            print("  the validators serve its reads once it is a member node: governance `client.add` with role node")
        print(f"start it with: omsnode start --home {home}")
    return ExitCode.OK


def cmd_genesis_create(args: argparse.Namespace) -> int:
    from ledger.block import genesis_hash
    from node.forming import NodeIdentity, build_genesis, parse_client, parse_settings

    identities = [NodeIdentity.load(Path(path)) for path in args.identity]
    followers = [NodeIdentity.load(Path(path)).as_follower() for path in args.follower]
    clients = followers + [parse_client(spec) for spec in args.client]
    genesis = build_genesis(args.chain_id, identities, clients, parse_settings(args.set))
    out = Path(args.out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out")
    genesis.save(out)
    print(f"wrote {out}: {genesis.n} validators of {len(genesis.organisations)} organisations, quorum {genesis.quorum}")
    print(f"genesis hash {genesis_hash(genesis).hex()} (every organisation checks it with `omsnode genesis inspect`)")
    return ExitCode.OK


def cmd_genesis_inspect(args: argparse.Namespace) -> int:
    from ledger.block import genesis_hash
    from ledger.genesis import Genesis
    from node.forming import describe_genesis

    genesis = Genesis.load(Path(args.file))
    described = describe_genesis(genesis, genesis_hash(genesis))
    if args.json:
        print_json(described)
        return ExitCode.OK
    print_fields(
        [
            ("chain id", described["chain_id"]),
            ("genesis hash", described["genesis_hash"]),
            ("organisations", described["organisations"]),
            ("validators", [f"{v['id']} ({v['org']}) {v['address']}" for v in described["validators"]]),
            ("quorum", f"{genesis.quorum} of {genesis.n} (tolerates {genesis.f} faulty)"),
            ("clients", [f"{c['id']} ({c['org']}): {'+'.join(c['roles'])}" for c in described["clients"]]),
            ("settings", [f"{key}={value}" for key, value in described["settings"].items()]),
        ]
    )
    return ExitCode.OK


def cmd_client_key_create(args: argparse.Namespace) -> int:
    from node.forming import save_client_key

    public = save_client_key(Path(args.out))
    print(f"wrote the private key to {args.out} (keep it) and the public key to {public} (for genesis --client)")
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    p = sub.add_parser("init", help="make a node's home: its identity, then the network's genesis")
    p.add_argument("--home", required=True)
    p.add_argument("--org", help="the organisation running the node")
    p.add_argument("--name", help="the node's name, unique in the network")
    p.add_argument("--advertise", metavar="HOST:PORT", help="where the other nodes reach this one")
    p.add_argument("--listen", metavar="ADDR:PORT", help="where the node listens (default: the advertised address)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate (chain)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's PEM private key")
    p.add_argument("--tls-ca", metavar="FILE", help="PEM certificates the peers' certificates must chain to")
    p.add_argument("--genesis", help="the network's genesis file to install")
    p.add_argument(
        "--added", action="store_true", help="with --genesis: the node's organisation is one governance added since"
    )
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="HTTP port of a new single-validator network (API and p2p)"
    )
    p.set_defaults(func=cmd_init)

    genesis = sub.add_parser("genesis", help="build a genesis from the organisations' identities, or inspect one")
    commands = genesis.add_subparsers(dest="genesis_command", required=True)
    p = commands.add_parser("create", help="a genesis whose validators are the given nodes")
    p.add_argument("--chain-id", required=True)
    p.add_argument("--identity", action="append", required=True, metavar="FILE", help="a node's identity.json")
    p.add_argument(
        "--follower",
        action="append",
        default=[],
        metavar="FILE",
        help="the identity.json of a node that follows without voting (it may read the validators' chain)",
    )
    p.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="ORG:NAME:ROLE:PUBKEY_FILE",
        help="a client identity (roles: channel, store, operator, auditor, payment_provider, node; several joined "
        "by +)",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a consensus setting")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_genesis_create)
    p = commands.add_parser("inspect", help="organisations, validators, quorum, clients, settings and the hash")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_genesis_inspect)

    keys = sub.add_parser("client-key", help="make a client identity's key pair")
    commands = keys.add_subparsers(dest="client_key_command", required=True)
    p = commands.add_parser("create", help="the private key in FILE, the public key in FILE with suffix .pub")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_client_key_create)
