"""`omsnode block`, `omsnode tx`, `omsnode events`, `omsnode peers`: the chain, its txs and its change feed.

block [HEIGHT]                                  a committed block (default: the head): header, txs, receipts
tx get TX_ID                                    where a tx stands: pending, committed or rejected, its receipt
tx send KIND --home DIR --as SIGNER --payload JSON|@FILE [--wait]    sign a tx with a client key and send it
tx KIND ...                                     short for `tx send KIND ...`
events [--after C] [--types T1,T2] [--follow]   the change feed in commit order; --follow long-polls for more
peers                                           the node's peers: announced address and when seen, reachable, height,
                                                round-trip, traffic

Each but `tx send` takes `--node URL --token T --profile NAME --json` (`cli.remote`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.output import (
    Column,
    ExitCode,
    UsageError,
    note,
    print_fields,
    print_json,
    print_json_line,
    print_table,
    print_tx,
    show_short,
    show_time,
    show_value,
)
from cli.remote import RETRIES, TIMEOUT, client_options, connect, read, read_payload, resolve_target
from node.api.models import Block, Event, EventPage, Peer, TxStatus


def show_seen(value: Any) -> str:
    """When a peer's address record was last seen, or `genesis` if it never announced one."""
    return f"{show_time(value)} UTC" if value else "genesis"


TX_COMMANDS = ("get", "send")
"""What may follow `omsnode tx`; anything else (a tx kind) is short for `tx send KIND`."""

FOLLOW_WAIT_S = 30
"""Seconds each long-poll of `events --follow` waits for a block."""

BLOCK_TX_COLUMNS = (
    Column("#", "index"),
    Column("tx", "id", show_short),
    Column("kind", "kind"),
    Column("signer", "signer"),
    Column("ok", "ok"),
    Column("code", "code"),
)
PEER_COLUMNS = (
    Column("peer", "id"),
    Column("address", "address"),
    Column("announced", "announced_seen_ms", show_seen),
    Column("reachable", "reachable"),
    Column("height", "last_height_seen"),
    Column("rtt ms", "rtt_ms"),
    Column("msgs in", "msgs_in"),
    Column("msgs out", "msgs_out"),
    Column("errors", "errors"),
    Column("last error", "last_error"),
    Column("marked bad", "marked_bad"),
)


def expand_tx_shorthand(argv: list[str]) -> list[str]:
    """`omsnode tx KIND ...` as `omsnode tx send KIND ...` (how `omsnode tx` was first used)."""
    if len(argv) > 1 and argv[0] == "tx" and argv[1] not in TX_COMMANDS and not argv[1].startswith("-"):
        return ["tx", "send", *argv[1:]]
    return argv


def cmd_block(args: argparse.Namespace) -> int:
    client = connect(args)
    height = args.height if args.height is not None else client.status()["height"]
    block = read(client, f"/v1/blocks/{height}", Block)
    if args.json:
        print_json(block.model_dump(mode="json"))
        return ExitCode.OK
    header = block.header
    signers = [validator for validator, _ in block.certificate.signatures] if block.certificate else []
    print_fields(
        [
            ("height", block.height),
            ("hash", block.hash),
            ("time", f"{show_time(header.timestamp_ms)} UTC"),
            ("proposer", header.proposer),
            ("view", header.view),
            ("prev hash", header.prev_hash),
            ("state root", header.state_root),
            ("certified by", signers),
            ("txs", len(block.txs)),
        ]
    )
    rows = [
        {"index": i, "id": tx.id, "kind": tx.kind, "signer": tx.signer, **(receipt.model_dump() if receipt else {})}
        for i, (tx, receipt) in enumerate(zip(block.txs, block.receipts, strict=True))
    ]
    if rows:
        print()
        print_table(rows, BLOCK_TX_COLUMNS)
    return ExitCode.OK


def cmd_tx_get(args: argparse.Namespace) -> int:
    status = read(connect(args), f"/v1/tx/{args.tx_id}", TxStatus).model_dump(mode="json")
    if args.json:
        print_json(status)
    else:
        print_tx(status)
    return ExitCode.OK


def cmd_tx_send(args: argparse.Namespace) -> int:
    """Sign with the client key of `--as` and submit; with `--wait`, print the tx id at once (so that it is
    known if the wait is cut short) and then wait for the commit, which is read with an API token: one must
    be given before anything is sent."""
    from ledger.genesis import Genesis
    from node.config import CLIENTS_DIR, GENESIS_FILE, NodeConfig
    from omsclient import Client, Keyring
    from omsclient.signing import get_sealing_keys

    home = Path(args.home)
    payload = read_payload(args.payload)
    token = resolve_target(None, args.token, None).token
    if args.wait and token is None:
        raise UsageError(
            "--wait reads the tx's receipt, which needs an API token: give --token, set $OMSNODE_TOKEN or a "
            "profile's token (make one with `omsnode token create`), or send without --wait"
        )
    genesis = Genesis.load(home / GENESIS_FILE)
    client = Client(args.url or NodeConfig.load(home).url, token, timeout=TIMEOUT, retries=RETRIES)
    keys = Path(args.keys) if args.keys else home / CLIENTS_DIR
    keyring = Keyring(keys, genesis.chain_id, client.valid_until, get_sealing_keys(genesis))
    tx_id = client.submit(keyring.sign(args.signer, args.kind, payload))
    result: dict[str, Any] = {"tx_id": tx_id, "status": "pending"}
    if args.wait:
        note(f"tx {tx_id} sent; waiting for its commit")
        result = client.wait_tx(tx_id)
    if args.json:
        print_json(result)
    else:
        print_tx(result)
    return ExitCode.OK if result["status"] != "rejected" else ExitCode.FAILED


def show_event(event: Event) -> str:
    """One event on one line: cursor, block time, height, type, and its data as `key=value`."""
    data = " ".join(f"{key}={show_value(value)}" for key, value in sorted(event.data.items()))
    return f"{event.cursor}  {show_time(event.time_ms)}  {event.height}  {event.type}  {data}"


def cmd_events(args: argparse.Namespace) -> int:
    """Print every event after `--after` until the feed is caught up; with `--follow`, then wait for more
    (each request a long-poll) until Ctrl-C. Either way, say on stderr where to resume: after the last event
    printed, or the one before it if Ctrl-C came between printing it and counting it (at least once)."""
    client = connect(args)
    after: str = args.after
    types = args.types.split(",") if args.types else None
    wait = FOLLOW_WAIT_S if args.follow else 0
    try:
        while True:
            page = EventPage.model_validate(client.events(after, types=types, limit=args.limit, wait=wait))
            caught_up = page.next_cursor == after
            for event in page.items:
                if args.json:
                    print_json_line(event.model_dump(mode="json"))
                else:
                    print(show_event(event), flush=True)
                after = event.cursor
            after = page.next_cursor
            if caught_up and not args.follow:
                break
    except KeyboardInterrupt:
        if not args.follow:
            raise
    note(f"resume with: --after {after}")
    return ExitCode.OK


def cmd_peers(args: argparse.Namespace) -> int:
    peers = [Peer.model_validate(row).model_dump(mode="json") for row in connect(args).get("/v1/peers")]
    if args.json:
        print_json(peers)
    else:
        print_table(peers, PEER_COLUMNS)
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    client = client_options()
    p = sub.add_parser("block", parents=[client], help="a committed block: header, txs and their receipts")
    p.add_argument("height", type=int, nargs="?", help="default: the node's head")
    p.set_defaults(func=cmd_block)

    tx = sub.add_parser("tx", help="read a tx by id, or sign one with a client key and send it (tx KIND = tx send)")
    commands = tx.add_subparsers(dest="tx_command", required=True)
    p = commands.add_parser("get", parents=[client], help="where a tx stands, with its receipt")
    p.add_argument("tx_id")
    p.set_defaults(func=cmd_tx_get)
    p = commands.add_parser("send", help="sign a tx with a client key and send it to a node")
    p.add_argument("kind", help="tx kind, e.g. stock.receive or order.create")
    p.add_argument("--home", required=True, help="node home (genesis, client keys, node URL)")
    p.add_argument("--as", dest="signer", required=True, help="client identity to sign as, e.g. store-1")
    p.add_argument("--payload", required=True, help="the tx payload as JSON, or @FILE (@- for stdin)")
    p.add_argument("--keys", help="folder of client key files (default: HOME/clients)")
    p.add_argument("--url", help="node URL (default: from HOME/config.toml)")
    p.add_argument("--wait", action="store_true", help="wait until committed and show the receipt")
    p.add_argument(
        "--token",
        help="API token to read the receipt with (--wait); default: $OMSNODE_TOKEN, else a profile's token",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tx_send)

    p = sub.add_parser("events", parents=[client], help="the change feed since a cursor; --follow waits for more")
    p.add_argument("--after", default="0", metavar="C", help="a cursor an earlier run printed (default: 0, the start)")
    p.add_argument("--types", metavar="T1,T2", help="only these event types, e.g. order.status,stock.movement")
    p.add_argument("--limit", type=int, metavar="N", help="events per request")
    p.add_argument("--follow", action="store_true", help="after catching up, wait for new events until Ctrl-C")
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("peers", parents=[client], help="the node's peers: reachability, height, round-trip, traffic")
    p.set_defaults(func=cmd_peers)
