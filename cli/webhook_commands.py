"""`omsnode webhook`: an organisation's webhook subscriptions on one node, and their deliveries.

webhook add --url RECEIVER --events order.created,order.status,... [--secret S]   prints the id and the secret
webhook list                                                                      the organisation's subscriptions
webhook remove ID                                                                 stop sending, forget what is pending
webhook deliveries [--subscription ID] [--failed] [--limit N] [--replay ID]       what was sent, what failed

Each also takes `--node URL --token T --profile NAME --json` (`cli.remote`). A subscription is sent by the
node it was made on, from its token's organisation's events; the secret is shown once, by `add`.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.output import Column, ExitCode, print_fields, print_json, print_table, show_time
from cli.remote import client_options, connect, read
from node.api.models import WebhookDelivery, WebhookDeliveryList, WebhookList, WebhookSubscription

SUBSCRIPTION_COLUMNS = (
    Column("id", "id"),
    Column("url", "url"),
    Column("events", "events", lambda events: ",".join(events)),
    Column("org", "org"),
    Column("created (UTC)", "created_ms", show_time),
)
DELIVERY_COLUMNS = (
    Column("id", "id"),
    Column("type", "type"),
    Column("status", "status"),
    Column("attempts", "attempts"),
    Column("last status", "last_status"),
    Column("next attempt (UTC)", "next_attempt_ms", show_time),
    Column("last error", "last_error", lambda text: (text or "")[:60]),
)


def cmd_add(args: argparse.Namespace) -> int:
    events = [event.strip() for event in args.events.split(",") if event.strip()]
    body = {"url": args.url, "events": events, "secret": args.secret}
    answer = connect(args).request("POST", "/v1/webhooks", json=body)
    made = WebhookSubscription.model_validate(answer).model_dump(mode="json")
    if args.json:
        print_json(made)
    else:
        print_fields([("id", made["id"]), ("secret", made["secret"]), ("events", ",".join(made["events"]))])
    return ExitCode.OK


def cmd_list(args: argparse.Namespace) -> int:
    found = read(connect(args), "/v1/webhooks", WebhookList).model_dump(mode="json")
    if args.json:
        print_json(found)
    else:
        print_table(found["items"], SUBSCRIPTION_COLUMNS)
    return ExitCode.OK


def cmd_remove(args: argparse.Namespace) -> int:
    answer = connect(args).request("DELETE", f"/v1/webhooks/{args.id}")
    removed = WebhookSubscription.model_validate(answer).model_dump(mode="json")
    if args.json:
        print_json(removed)
    else:
        print_fields([("removed", removed["id"]), ("url", removed["url"])])
    return ExitCode.OK


def cmd_deliveries(args: argparse.Namespace) -> int:
    client = connect(args)
    if args.replay is not None:
        answer = client.request("POST", f"/v1/webhooks/deliveries/{args.replay}/replay")
        shown = WebhookDelivery.model_validate(answer).model_dump(mode="json")
        if args.json:
            print_json(shown)
        else:
            print_fields([("replaying", shown["id"]), ("type", shown["type"]), ("status", shown["status"])])
        return ExitCode.OK
    found = read(
        client,
        "/v1/webhooks/deliveries",
        WebhookDeliveryList,
        subscription=args.subscription,
        failed=str(args.failed).lower(),
        limit=args.limit,
    ).model_dump(mode="json")
    if args.json:
        print_json(found)
    else:
        print_table(found["items"], DELIVERY_COLUMNS)
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    client = client_options()
    webhook = sub.add_parser("webhook", help="webhook subscriptions of the token's organisation on a node")
    commands = webhook.add_subparsers(dest="webhook_command", required=True)
    p = commands.add_parser("add", parents=[client], help="subscribe a receiver; prints its id and secret")
    p.add_argument("--url", required=True, metavar="RECEIVER", help="where events are POSTed (http or https)")
    p.add_argument("--events", required=True, help="comma-separated event types, e.g. order.created,order.status")
    p.add_argument("--secret", metavar="S", help="the signing secret (default: a new random one)")
    p.set_defaults(func=cmd_add)
    p = commands.add_parser("list", parents=[client], help="the organisation's subscriptions on the node")
    p.set_defaults(func=cmd_list)
    p = commands.add_parser("remove", parents=[client], help="remove a subscription and what it has pending")
    p.add_argument("id")
    p.set_defaults(func=cmd_remove)
    p = commands.add_parser("deliveries", parents=[client], help="deliveries sent, pending and dead; replay one")
    p.add_argument("--subscription", metavar="ID", help="one subscription's only")
    p.add_argument("--failed", action="store_true", help="only the dead ones and those retrying after a failure")
    p.add_argument("--limit", type=int, metavar="N", help="at most N (default 100)")
    p.add_argument("--replay", metavar="ID", help="send this delivery again (same id), instead of listing")
    p.set_defaults(func=cmd_deliveries)
