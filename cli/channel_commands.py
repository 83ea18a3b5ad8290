"""`omsnode channel ...`: the channel pullers (orders in from sales channels) and what they hold.

run --config FILE --node URL --token T [--state FILE] [--once] [--metrics-port P]   pull the config's channels
status --state FILE [--json]                       each channel's cursor, last pull, lag, counts, last error, alerts
deadletters --state FILE [--json] [--all] [--replay ID]   what could not be sent, why, and its raw payload;
                                                   --replay sends one again (after its cause was fixed)

The puller is its own process and talks to the node only through its API
(`channels`). `--node` and `--token` come, as for every client command, from
the flags, a profile or the environment (`cli.remote`); `run` remembers the
config file and the node in the state file, so a replay finds them (or takes
`--config`, `--node`, `--token`).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

from cli.output import Column, ExitCode, UsageError, fail, print_json, print_table, show_time
from cli.remote import resolve_target


def show_cursor(cursor: Any) -> str:
    """A cursor as a person reads it: an HTTP channel's watermark (and `+` mid-walk), a file's name."""
    text = str(cursor or "")
    if text.startswith("{"):
        mark = json.loads(text)
        return f"{mark.get('since')}{' +' if mark.get('next') else ''}"
    return text.partition(":")[0] or "-"


STATUS_COLUMNS = (
    Column("channel", "channel"),
    Column("cursor", "cursor", show_cursor),
    Column("last pull", "last_pull_ms", show_time),
    Column("lag s", "lag_s", lambda v: "-" if v is None else f"{v:.0f}"),
    Column("pulled", "pulled"),
    Column("committed", "committed"),
    Column("updated", "updated"),
    Column("dead", "dead_lettered"),
    Column("open", "open_dead_letters"),
    Column("failures", "failures"),
    Column("alerts", "alerts"),
    Column("last error", "last_error", lambda v: "-" if not v else str(v)[:60]),
)
LETTER_COLUMNS = (
    Column("id", "id"),
    Column("channel", "channel"),
    Column("order", "channel_order_id"),
    Column("reason", "reason"),
    Column("message", "message", lambda v: str(v)[:70]),
    Column("since", "created_ms", show_time),
    Column("replays", "replays"),
)

DEFAULT_STATE = "channels.sqlite"
"""The state file when `--state` is not given (in the working directory)."""


def open_state(path_text: str, *, create: bool = False) -> Any:
    """The state file (it must exist unless `create`)."""
    from channels.state import State

    path = Path(path_text)
    if not create and not path.exists():
        raise UsageError(f"no state file {path} (it is made by `omsnode channel run --state {path}`)")
    return State(path)


def make_pullers(config_path: Path, node: str | None, token: str | None, profile: str | None, state: Any) -> Any:
    """The pullers of a config file, with a client of the node."""
    from channels.adapters import ADAPTER_KEYS, make_adapter, read_customer_key
    from channels.config import ConfigError, load_config
    from channels.log import JsonLog
    from channels.puller import Puller
    from channels.sending import Sender
    from omsclient import Client

    target = resolve_target(node, token, profile)
    if target.token is None:
        raise UsageError("the puller needs an API token of a channel identity (--token, a profile or $OMSNODE_TOKEN)")
    log = JsonLog()
    try:
        configs = load_config(config_path, ADAPTER_KEYS)
        adapters = [make_adapter(config) for config in configs]
        customer_keys = [read_customer_key(config) for config in configs]
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    sender = Sender(Client(target.node, target.token))
    state.save_setting("config", str(config_path.resolve()))
    state.save_setting("node", target.node)
    pullers = [
        Puller(config, adapter, state, sender, partial(log, channel=config.name), key)
        for config, adapter, key in zip(configs, adapters, customer_keys, strict=True)
    ]
    return pullers, log


def cmd_run(args: argparse.Namespace) -> int:
    from channels.metrics import serve_metrics
    from channels.runner import Runner

    state = open_state(args.state, create=True)
    pullers, log = make_pullers(Path(args.config), args.node, args.token, args.profile, state)
    if args.metrics_port is not None:
        serve_metrics(args.metrics_port, Path(args.state))
    runner = Runner(pullers, state, log)
    log("start", channels=[p.config.name for p in pullers], once=args.once, state=args.state)
    if args.once:
        code = runner.run_once()
        log("done", status=code)
        return code
    runner.run_forever()
    return 0


def describe_channels(state: Any) -> list[dict[str, Any]]:
    """Each channel as `channel status` shows it."""
    from channels.alerts import compute_lag_s, evaluate_alerts
    from channels.state import now_ms

    now = now_ms()
    rows = []
    for row in state.load_channels():
        rows.append(
            {
                "channel": row.name,
                "cursor": row.cursor,
                "poll_seconds": row.poll_seconds,
                "last_pull_ms": row.last_pull_ms,
                "last_success_ms": row.last_success_ms,
                "caught_up_ms": row.caught_up_ms,
                "lag_s": compute_lag_s(row, now),
                "pulled": row.pulled,
                "committed": row.committed,
                "updated": row.updated,
                "dead_lettered": row.dead_lettered,
                "open_dead_letters": row.open_dead_letters,
                "failures": row.failures,
                "last_error": row.last_error,
                "last_error_ms": row.last_error_ms,
                "alerts": [alert.name for alert in evaluate_alerts(row, now)],
            }
        )
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    state = open_state(args.state)
    rows = describe_channels(state)
    if args.json:
        print_json(rows)
    else:
        print_table(rows, STATUS_COLUMNS)
    return 0


def describe_letter(letter: Any) -> dict[str, Any]:
    return {**letter.__dict__, "raw": json.loads(letter.raw)}


def cmd_deadletters(args: argparse.Namespace) -> int:
    state = open_state(args.state)
    if args.replay is not None:
        return replay(args, state)
    letters = [describe_letter(letter) for letter in state.load_dead_letters(include_resolved=args.all)]
    if args.json:
        print_json(letters)
    else:
        print_table(letters, LETTER_COLUMNS)
        for letter in letters:
            print(f"\n#{letter['id']} raw: {json.dumps(letter['raw'], sort_keys=True)[:2000]}")
    return 0


def replay(args: argparse.Namespace, state: Any) -> int:
    """Send one dead letter's order again with the config as it is now; 0 once it went through."""
    letter = state.load_dead_letter(args.replay)
    if letter is None:
        raise UsageError(f"no dead letter {args.replay}")
    if letter.resolved_ms is not None:
        return fail(f"dead letter {letter.id} is resolved already", ExitCode.REFUSED)
    config = args.config or state.get_setting("config")
    if config is None:
        raise UsageError("which config? give --config (no `channel run` has used this state file)")
    pullers, _ = make_pullers(Path(config), args.node or state.get_setting("node"), args.token, args.profile, state)
    puller = next((p for p in pullers if p.config.name == letter.channel), None)
    if puller is None:
        raise UsageError(f"channel {letter.channel!r} of dead letter {letter.id} is not in {config}")
    from channels.sending import NodeUnavailable

    try:
        batch = puller.replay(letter.id, letter.raw)
    except NodeUnavailable as exc:
        return fail(f"the node cannot take it now: {exc}", ExitCode.UNREACHABLE)
    after = state.load_dead_letter(letter.id)
    outcome = {"id": letter.id, "resolved": after.resolved_ms is not None, "reason": after.reason}
    outcome["orders"] = {key: known.ledger_order_id for key, known in batch.known.items()}
    if args.json:
        print_json(outcome)
    elif outcome["resolved"]:
        print(f"dead letter {letter.id} went through: {outcome['orders']}")
    else:
        print(f"dead letter {letter.id} is still refused: {after.reason}: {after.message}", file=sys.stderr)
    return 0 if outcome["resolved"] else 1


def add_parser(sub: Any) -> None:
    channel = sub.add_parser("channel", help="pull orders from sales channels; their state and dead letters")
    commands = channel.add_subparsers(dest="channel_command", required=True)

    p = commands.add_parser("run", help="run the pullers of a channels config (until stopped, or --once)")
    p.add_argument("--config", required=True, help="the channels config (TOML, one [[channels]] table each)")
    add_node_options(p)
    p.add_argument("--state", default=DEFAULT_STATE, help=f"the puller's SQLite state file (default {DEFAULT_STATE})")
    p.add_argument("--once", action="store_true", help="pull every channel until it is caught up, then exit")
    p.add_argument("--metrics-port", type=int, help="serve the puller's figures for Prometheus on this port")
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("status", help="each channel's cursor, last pull, lag, counts, last error and alerts")
    p.add_argument("--state", default=DEFAULT_STATE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = commands.add_parser("deadletters", help="orders that could not be sent: reason and raw payload; replay one")
    p.add_argument("--state", default=DEFAULT_STATE)
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--replay", type=int, metavar="ID", help="send this dead letter's order again")
    p.add_argument("--config", help="for --replay: the channels config (default: the one `run` last used)")
    add_node_options(p)
    p.set_defaults(func=cmd_deadletters)


def add_node_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", metavar="URL", help="the node's URL (else a profile or $OMSNODE_NODE)")
    parser.add_argument("--token", metavar="T", help="a channel identity's API token (else $OMSNODE_TOKEN)")
    parser.add_argument("--profile", metavar="NAME", help="a profile of the client config file")
