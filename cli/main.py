"""`omsnode`: the operator's command line.

    omsnode init --home DIR [--port P] [--genesis FILE --key FILE]
    omsnode start --home DIR [--state-sync | --no-state-sync]
    omsnode status [--home DIR | --node URL] [--json]
    omsnode verify-chain --home DIR [--json]
    omsnode token create|list|revoke --home DIR ...
    omsnode devnet up|status|down|kill|restart|load|demo ...

and the client commands, which talk to a node's API with a token
(`cli.remote` says where the node and the token come from):

    omsnode order list|get|create|cancel|hold|release|approve|reject ...    omsnode invoice list|get ...
    omsnode pick|ship|deliver|decline FULFILMENT ...    omsnode receive LOCATION SKU=QTY ...
    omsnode transfer send|accept|refuse ...    omsnode count report|approve ...
    omsnode return request|receive|cancel ...
    omsnode stock LOCATION SKU    omsnode inventory ...    omsnode journal ...
    omsnode block [HEIGHT]    omsnode tx get|send ...    omsnode events [--follow]    omsnode peers
    omsnode reconcile stock FILE ...    omsnode reconcile finance --day D
    omsnode webhook add|list|remove|deliveries ...

Every command prints readable text, or JSON with `--json`; failures print a
one-line reason on stderr and exit with a code that says what failed
(`cli.output.ExitCode`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli import (
    chain_commands,
    devnet_commands,
    order_commands,
    reconcile_commands,
    stock_commands,
    token_commands,
    webhook_commands,
    work_commands,
)
from cli.output import ExitCode, UsageError, exit_code_of_status, fail, print_fields, print_json
from cli.remote import DEFAULT_PORT, RETRIES, resolve_target


def cmd_init(args: argparse.Namespace) -> int:
    from node.home import create_network, join_network

    home = Path(args.home)
    if bool(args.genesis) != bool(args.key):
        return fail("--genesis and --key go together (to join an existing network)", ExitCode.USAGE)
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


def cmd_status(args: argparse.Namespace) -> int:
    from node.config import NodeConfig
    from omsclient import Client

    url = NodeConfig.load(Path(args.home)).url if args.home else resolve_target(args.node, None, args.profile).node
    with Client(url, retries=RETRIES) as client:
        status = client.status()
    if args.json:
        print_json(status)
        return 0
    keys = ("node_id", "chain_id", "height", "head_hash", "view", "primary", "voting", "mempool", "validators")
    print_fields([(key, status[key]) for key in keys])
    return 0


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
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port of the node (API and p2p)")
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
    target = p.add_mutually_exclusive_group()
    target.add_argument("--home", help="the node of this home")
    target.add_argument("--node", "--url", dest="node", metavar="URL", help="the node at this URL")
    target.add_argument("--profile", metavar="NAME", help="the node of a profile of the config file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("verify-chain", help="re-check every block held; re-execute every tx unless state-synced")
    p.add_argument("--home", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify_chain)

    token_commands.add_parser(sub)
    devnet_commands.add_parser(sub)
    order_commands.add_parser(sub)
    stock_commands.add_parser(sub)
    work_commands.add_parser(sub)
    reconcile_commands.add_parser(sub)
    chain_commands.add_parser(sub)
    webhook_commands.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import httpx
    from pydantic import ValidationError

    from ledger.errors import LedgerError
    from omsclient import NodeError

    args = build_parser().parse_args(chain_commands.expand_tx_shorthand(sys.argv[1:] if argv is None else argv))
    try:
        code: int = args.func(args)
    except UsageError as exc:
        return fail(str(exc), ExitCode.USAGE)
    except NodeError as exc:
        return fail(str(exc), exit_code_of_status(exc.status))
    except httpx.TransportError as exc:
        where = exc.request.url.copy_with(path="/", query=None)
        return fail(f"cannot reach the node at {where}: {exc or type(exc).__name__}", ExitCode.UNREACHABLE)
    except ValidationError as exc:
        return fail(f"the node's answer does not have the API's shape: {exc}")
    except (LedgerError, FileNotFoundError, FileExistsError, IndexError, TimeoutError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly, as a killed pipe would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
