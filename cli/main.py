"""`omsnode`: the operator's command line.

    omsnode init --home DIR --org ORG --name NODE --advertise HOST:PORT [--listen ADDR:PORT] [--genesis FILE]
    omsnode init --home DIR [--port P]              a single-validator network of its own
    omsnode genesis create|inspect ...    omsnode client-key create --out FILE
    omsnode start --home DIR [--state-sync | --no-state-sync] [--advertise HOST:PORT] [--listen ADDR:PORT]
                  [--log-format json|text]
    omsnode backup --home DIR --out FILE [--with-keys]    omsnode restore --home DIR FILE
    omsnode --version
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
    omsnode governance propose KIND --payload JSON|approve ID|list|show ID|members
    omsnode channel run|status|deadletters ...   (the channel pullers: `cli.channel_commands`)

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
    backup_commands,
    chain_commands,
    channel_commands,
    devnet_commands,
    governance_commands,
    network_commands,
    order_commands,
    reconcile_commands,
    stock_commands,
    token_commands,
    work_commands,
)
from cli.output import ExitCode, UsageError, exit_code_of_status, fail, print_fields, print_json
from cli.remote import RETRIES, resolve_target
from node.logs import FORMATS, get_release


def cmd_start(args: argparse.Namespace) -> int:
    from node.forming import parse_host_port
    from node.server import serve

    overrides: dict[str, object] = {}
    if args.advertise:
        parse_host_port(args.advertise, "--advertise")
        overrides["advertise"] = args.advertise
    if args.listen:
        overrides["host"], overrides["port"] = parse_host_port(args.listen, "--listen")
    if args.log_format:
        overrides["log_format"] = args.log_format
    serve(Path(args.home), args.state_sync, overrides)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from node.config import NodeConfig
    from omsclient import Client

    if args.home:
        config = NodeConfig.load(Path(args.home))
        client = Client(config.url, retries=RETRIES, verify=config.make_peer_ssl_context())
    else:
        client = Client(resolve_target(args.node, None, args.profile).node, retries=RETRIES)
    with client:
        status = client.status()
    if args.json:
        print_json(status)
        return 0
    keys = ("node_id", "role", "chain_id", "height", "head_hash", "view", "primary", "voting", "mempool", "validators")
    print_fields([(key, status.get(key, "")) for key in keys])
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
    parser.add_argument("--version", action="version", version=f"omsnode {get_release()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("start", help="run the node of a home directory")
    p.add_argument("--home", required=True)
    p.add_argument(
        "--state-sync",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with an empty store, load a peer's certified snapshot before block sync "
        "(default: only when one is at least a checkpoint interval ahead)",
    )
    p.add_argument("--advertise", metavar="HOST:PORT", help="announce this address to the peers (overrides config)")
    p.add_argument("--listen", metavar="ADDR:PORT", help="listen here (overrides config)")
    p.add_argument("--log-format", choices=FORMATS, help="json lines (default) or text for people")
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

    network_commands.add_parser(sub)
    backup_commands.add_parser(sub)
    token_commands.add_parser(sub)
    devnet_commands.add_parser(sub)
    order_commands.add_parser(sub)
    stock_commands.add_parser(sub)
    work_commands.add_parser(sub)
    reconcile_commands.add_parser(sub)
    chain_commands.add_parser(sub)
    governance_commands.add_parser(sub)
    channel_commands.add_parser(sub)
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
