"""How the client commands reach a node: its URL and an API token, from the command line, a profile or the environment.

For the node URL and for the token, each on its own, the first source that
names one wins:

1. `--node URL`, `--token T`;
2. the profile named by `--profile NAME`, else by `$OMSNODE_PROFILE`;
3. `$OMSNODE_NODE`, `$OMSNODE_TOKEN`;
4. the profile `default` of the config file, if there is one;
5. the node `http://127.0.0.1:26600` (the port `omsnode init` gives) and no token.

So a profile named on purpose beats the environment, and the environment
beats the default profile. Profiles live in
`$XDG_CONFIG_HOME/omsnode/config.toml` (`~/.config/omsnode/config.toml` when
`XDG_CONFIG_HOME` is unset):

    [profiles.default]
    node = "http://127.0.0.1:26600"
    token = "oms_..."

Also here: the arguments every client command shares (`--json`, list pages,
`--idempotency-key` and `--no-wait` of writes), a JSON payload argument,
lines given as `SKU=QTY`, times given as dates, and how a write's outcome is
reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from cli.output import Column, ExitCode, UsageError, note, print_json, print_table, print_tx, progress
from node.api.models import Page, WriteResult
from omsclient import Client

Model = TypeVar("Model", bound=BaseModel)
AnyPage = TypeVar("AnyPage", bound=Page[Any])

DEFAULT_PORT = 26600
"""The port `omsnode init` gives a node, and so where the client commands look when told nothing else."""

PROFILE_KEYS = frozenset({"node", "token"})
"""What a profile may set."""

TIMEOUT = 15.0
"""Seconds for one request (a write's `wait=commit` and a long-poll get their wait on top)."""

RETRIES = 2
"""Times a request that may be sent again is (a node that does not answer fails the command in seconds)."""


@dataclass(frozen=True)
class Target:
    """Where requests go and the token they carry."""

    node: str
    token: str | None


def get_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "omsnode" / "config.toml"


def load_profiles(path: Path) -> dict[str, dict[str, str]]:
    """The profiles of a config file (none if it does not exist); a malformed file is a `UsageError`."""
    if not path.exists():
        return {}
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc
    profiles = config.get("profiles", {})
    if not isinstance(profiles, dict) or set(config) - {"profiles"}:
        raise UsageError(f"{path} holds only [profiles.NAME] tables")
    for name, profile in profiles.items():
        if not isinstance(profile, dict) or set(profile) - PROFILE_KEYS:
            raise UsageError(f"profile {name!r} in {path} may set only {', '.join(sorted(PROFILE_KEYS))}")
        if not all(isinstance(value, str) for value in profile.values()):
            raise UsageError(f"profile {name!r} in {path}: node and token are strings")
    return profiles


def resolve_target(node: str | None, token: str | None, profile: str | None) -> Target:
    """Where to send requests, from the sources in the order the module states."""
    path = get_config_path()
    profiles = load_profiles(path)
    name = profile or os.environ.get("OMSNODE_PROFILE")
    if name is not None and name not in profiles:
        raise UsageError(f"no profile {name!r} in {path}")
    sources: list[Mapping[str, str | None]] = [
        {"node": node, "token": token},
        profiles.get(name or "", {}),
        {"node": os.environ.get("OMSNODE_NODE"), "token": os.environ.get("OMSNODE_TOKEN")},
        profiles.get("default", {}),
    ]

    def first(field: str) -> str | None:
        return next((value for source in sources if (value := source.get(field))), None)

    return Target(first("node") or f"http://127.0.0.1:{DEFAULT_PORT}", first("token"))


def connect(args: argparse.Namespace) -> Client:
    """A client for the node and token the command's arguments, a profile or the environment name."""
    target = resolve_target(args.node, args.token, args.profile)
    return Client(target.node, target.token, timeout=TIMEOUT, retries=RETRIES)


def read(client: Client, path: str, model: type[Model], **params: Any) -> Model:
    """GET `path`, checked against the route's response model (None parameters are left out)."""
    return model.model_validate(client.get(path, **params))


def write(client: Client, path: str, body: dict[str, Any], args: argparse.Namespace) -> WriteResult[Any]:
    """POST a write (a tx the node signs as the token's identity) with the command's `--idempotency-key`,
    waiting for its commit unless `--no-wait`."""
    answer = client.post(path, body, idempotency_key=args.idempotency_key, wait=None if args.no_wait else "commit")
    return WriteResult[Any].model_validate(answer)


def client_options() -> argparse.ArgumentParser:
    """The options of every client command (a parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("node")
    group.add_argument(
        "--node",
        metavar="URL",
        help="the node's URL (else: --profile, $OMSNODE_NODE, the default profile, localhost:26600)",
    )
    group.add_argument("--token", metavar="T", help="API token (else: --profile, $OMSNODE_TOKEN, the default profile)")
    group.add_argument("--profile", metavar="NAME", help="a profile of the config file (default: $OMSNODE_PROFILE)")
    group.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    return options


def list_options() -> argparse.ArgumentParser:
    """The options of every command that lists a paged resource (a parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("pages")
    group.add_argument("--limit", type=int, metavar="N", help="items per page (the node's default if absent)")
    pages = group.add_mutually_exclusive_group()
    pages.add_argument("--cursor", metavar="C", help="start at this next_cursor of an earlier page")
    pages.add_argument("--all", action="store_true", help="every page, until the list ends")
    return options


def read_list(client: Client, path: str, model: type[AnyPage], args: argparse.Namespace, **filters: Any) -> AnyPage:
    """One page of a list, or with `--all` every page as one (a progress bar counts the items at a terminal).

    Filters given as None are left out."""
    params = {**filters, "limit": args.limit, "cursor": args.cursor}
    if not args.all:
        return read(client, path, model, **params)
    items: list[Any] = []
    with progress("item", args.json) as bar:
        for item in client.pages(path, **{k: v for k, v in params.items() if v is not None}):
            items.append(item)
            bar.update(1)
    return model.model_validate({"items": items, "next_cursor": None})


def read_payload(text: str) -> dict[str, Any]:
    """A JSON object given on the command line, or `@FILE` to read it from a file (`@-`: stdin)."""
    if text == "@-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the payload from {text[1:]}: {exc}") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the payload is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UsageError("the payload must be a JSON object")
    return payload


def parse_time(text: str) -> int:
    """A time argument as ledger milliseconds: milliseconds since the epoch, or an ISO date or date and time
    (UTC unless it names its offset), e.g. `2026-11-30` or `2026-11-30T09:30`."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither milliseconds nor an ISO date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def print_page(page: Page[Any], columns: tuple[Column, ...], as_json: bool) -> None:
    """A page of a list as a table (and where the next page starts, on stderr), or as JSON."""
    rows = [item.model_dump(mode="json") for item in page.items]
    if as_json:
        print_json({"items": rows, "next_cursor": page.next_cursor})
        return
    print_table(rows, columns)
    if page.next_cursor is not None:
        note(f"more: --cursor {page.next_cursor} (or --all)")


def write_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("write")
    group.add_argument("--idempotency-key", metavar="K", help="the same key and body make the same tx, at most once")
    group.add_argument("--no-wait", action="store_true", help="answer once the node took the tx, before its commit")
    return options


def report_write(result: WriteResult[Any], args: argparse.Namespace) -> int:
    """Print what became of a write; exit 0 if committed (or, with `--no-wait`, accepted), 1 otherwise."""
    if args.json:
        print_json(result.model_dump(mode="json"))
    else:
        print_tx(result.model_dump(mode="json"))
        if result.resource:
            print(describe_resource(result.resource))
    if result.status == "pending" and not args.no_wait:
        note(f"not committed yet; follow it with: omsnode tx get {result.tx_id}")
    ok = result.status == "committed" or (result.status == "pending" and args.no_wait)
    return ExitCode.OK if ok else ExitCode.FAILED


RESOURCE_IDS = (
    ("return_id", "return"),
    ("transfer_id", "transfer"),
    ("order_id", "order"),
    ("tx_id", "count"),
    ("id", "proposal"),
)
"""How the resource a write answers is named in one line: the first of these fields it has (a count report is
known by its tx id, a governance proposal by its id)."""


def describe_resource(resource: Mapping[str, Any]) -> str:
    """`order SO...: released`, `transfer TR...: in_transit`, ...; a stock row as its location, SKU and stock."""
    for key, what in RESOURCE_IDS:
        if key in resource:
            return f"{what} {resource[key]}: {resource.get('status')}"
    stock = ", ".join(f"{key} {resource[key]}" for key in ("on_hand", "reserved", "available") if key in resource)
    return f"{resource.get('location')} {resource.get('sku')}: {stock}"


def parse_line(text: str) -> dict[str, Any]:
    """A stock line given as `SKU=QTY` or `SKU=QTY@LOT` (e.g. `TEE-M=12@L2026-11`), as a tx's line map."""
    sku, sep, rest = text.partition("=")
    qty, at, lot = rest.partition("@")
    if not sep or not sku or not qty.isdigit() or (at and not lot):
        raise argparse.ArgumentTypeError(f"{text!r} is not SKU=QTY or SKU=QTY@LOT (e.g. TEE-M=12)")
    return {"sku": sku, "qty": int(qty), **({"lot": lot} if at else {})}
