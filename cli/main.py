"""`omsnode`: the operator's command line.

    omsnode init --home DIR [--port P] [--genesis FILE --key FILE]
    omsnode start --home DIR [--state-sync | --no-state-sync]
    omsnode status (--home DIR | --url URL) [--json]
    omsnode tx KIND --home DIR --as SIGNER --payload JSON [--wait] [--json]
    omsnode verify-chain --home DIR [--json]
    omsnode token create|list|revoke --home DIR ...
    omsnode devnet up|status|down|kill|restart|load|demo ...

Every command prints readable text, or one JSON document with `--json`;
failures print a one-line reason and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cli import devnet_commands, token_commands
from cli.output import fail, print_json


def cmd_init(args: argparse.Namespace) -> int:
    from node.home import create_network, join_network

    home = Path(args.home)
    if bool(args.genesis) != bool(args.key):
        return fail("--genesis and --key go together (to join an existing network)")
    if args.genesis:
        config = join_network(home, Path(args.genesis), Path(args.key), args.port)
        print(f"joined network as {config.node_id}; home {home}; API will listen on {config.url}")
        return 0
    from node.config import CLIENTS_DIR

    genesis = create_network([home], [args.port], home / CLIENTS_DIR)
    print(f"created single-validator network {genesis.chain_id!r} in {home}")
    print(f"  validator node-0, API on http://127.0.0.1:{args.port}")
    print(f"  client keys in {home / CLIENTS_DIR}: " + ", ".join(c.id for c in genesis.clients))
    print(f"start it with: omsnode start --home {home}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from node.server import serve

    serve(Path(args.home), args.state_sync)
    return 0


def _node_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    from node.config import NodeConfig

    return NodeConfig.load(Path(args.home)).url


def cmd_status(args: argparse.Namespace) -> int:
    from devnet.client import NodeClient

    status = NodeClient(_node_url(args)).status()
    if args.json:
        print_json(status)
        return 0
    for key in ("node_id", "chain_id", "height", "head_hash", "view", "primary", "voting", "mempool"):
        print(f"{key:>10}: {status[key]}")
    print(f"{'validators':>10}: {', '.join(status['validators'])}")
    return 0


def cmd_tx(args: argparse.Namespace) -> int:
    from devnet.client import NodeClient, Signer
    from ledger.genesis import Genesis
    from node.config import CLIENTS_DIR, GENESIS_FILE

    home = Path(args.home)
    try:
        payload = json.loads(args.payload)
    except json.JSONDecodeError as exc:
        return fail(f"--payload is not valid JSON: {exc}")
    genesis = Genesis.load(home / GENESIS_FILE)
    client = NodeClient(_node_url(args), token=args.token)
    signer = Signer(genesis.chain_id, Path(args.keys) if args.keys else home / CLIENTS_DIR, client.tx_valid_until)
    tx_id = client.submit(signer.tx(args.signer, args.kind, payload))
    result: dict[str, Any] = {"tx_id": tx_id, "status": "pending"}
    if args.wait:
        result = client.wait(tx_id)
    if args.json:
        print_json(result)
    else:
        print(f"tx {tx_id}: {result['status']}")
        if result.get("receipt"):
            receipt = result["receipt"]
            print(f"  at height {result['height']}: {receipt['code']} {receipt['message']}".rstrip())
            if receipt.get("result"):
                print(f"  result: {json.dumps(receipt['result'], sort_keys=True)}")
    return 0 if result["status"] != "rejected" else 1


def cmd_verify_chain(args: argparse.Namespace) -> int:
    from contracts import load_contracts
    from ledger.genesis import Genesis
    from ledger.store import Store
    from node.config import DATA_DIR, GENESIS_FILE
    from node.snapshots import find_base_height
    from node.verify import verify_chain

    home = Path(args.home)
    genesis = Genesis.load(home / GENESIS_FILE)
    store = Store(home / DATA_DIR)
    try:
        from tqdm import tqdm

        below = max(find_base_height(store) - 1, 0)
        with tqdm(initial=below, total=store.height, unit="block", disable=args.json or not sys.stderr.isatty()) as bar:
            report = verify_chain(store, genesis, load_contracts(), progress=lambda h: bar.update(1))
    finally:
        store.close()
    if args.json:
        print_json(
            {
                "ok": report.ok,
                "height": report.height,
                "txs": report.txs,
                "failures": [{"height": f.height, "what": f.what} for f in report.failures],
                "base_height": report.base_height,
                "re_executed": report.re_executed,
            }
        )
    elif report.ok and report.re_executed:
        print(f"chain OK: {report.height} blocks, {report.txs} txs re-checked and re-executed from genesis")
    elif report.ok:
        base = report.base_height
        print(
            f"chain OK: state-synced at height {base}: blocks {base}..{report.height} checked "
            "(links, certificates, signatures, receipts roots); state commitment recomputed; "
            f"{report.txs} txs not re-executed (no blocks or state below height {base})"
        )
    else:
        if report.re_executed:
            print(f"chain BROKEN after {report.height} good blocks:")
        else:
            good = f"blocks {report.base_height}..{report.height} good" if report.height else "no good blocks"
            print(f"chain BROKEN: state-synced at height {report.base_height}, {good}:")
        for failure in report.failures:
            where = f"block {failure.height}" if failure.height else "world state"
            print(f"  {where}: {failure.what}")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omsnode", description="Run and operate an oms-ledger node.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create a node home (a new single-validator network, or join one)")
    p.add_argument("--home", required=True)
    p.add_argument("--port", type=int, default=26600, help="HTTP port of the node (API and p2p)")
    p.add_argument("--genesis", help="genesis file of the network to join")
    p.add_argument("--key", help="this node's validator key file (with --genesis)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("start", help="run the node of a home directory")
    p.add_argument("--home", required=True)
    p.add_argument(
        "--state-sync",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with an empty store, load a peer's certified snapshot before block sync "
        "(default: only when one is at least a checkpoint interval ahead)",
    )
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("status", help="show a node's height, head, view and primary")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--home")
    target.add_argument("--url")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("tx", help="sign a tx with a client key and send it to a node")
    p.add_argument("kind", help="tx kind, e.g. stock.receive or order.create")
    p.add_argument("--home", required=True, help="node home (genesis, client keys, node URL)")
    p.add_argument("--as", dest="signer", required=True, help="client identity to sign as, e.g. store-1")
    p.add_argument("--payload", required=True, help="the tx payload as JSON")
    p.add_argument("--keys", help="folder of client key files (default: HOME/clients)")
    p.add_argument("--url", help="node URL (default: from HOME/config.toml)")
    p.add_argument("--wait", action="store_true", help="wait until committed and show the receipt")
    p.add_argument(
        "--token",
        default=os.environ.get("OMSNODE_TOKEN"),
        help="API token to read the receipt with (--wait); default: $OMSNODE_TOKEN",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tx)

    p = sub.add_parser("verify-chain", help="re-check every block held; re-execute every tx unless state-synced")
    p.add_argument("--home", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_chain)

    token_commands.add_parser(sub)
    devnet_commands.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import httpx

    from devnet.client import NodeError
    from ledger.errors import LedgerError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except httpx.TransportError as exc:
        return fail(f"cannot reach the node at {exc.request.url.copy_with(path='/')}: {exc}")
    except (LedgerError, NodeError, FileNotFoundError, FileExistsError, IndexError, TimeoutError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
