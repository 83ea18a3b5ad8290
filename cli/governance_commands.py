"""`omsnode governance ...`: change the network by proposals that a quorum of member organisations approves.

governance propose KIND --payload JSON|@FILE [--idempotency-key K] [--no-wait]
governance approve PROPOSAL_ID [--idempotency-key K] [--no-wait]
governance list [--status open|executed]
governance show PROPOSAL_ID
governance members

KIND is what the proposal does: `org.add`, `org.remove`, `validator.add`, `validator.remove`,
`validator.rotate`, `client.add`, `client.revoke`, `config.set` or `contract.activate`; the payload is
its params (e.g. `{"org": "org-4", "name": "Depot"}` for `org.add`). The token's identity must be its
organisation's operator or validator. A proposal takes effect once two thirds of the member
organisations, rounded up, approved it; a validator set change then takes effect at the first height
after the next checkpoint boundary (`governance members` shows each set and where it begins).

Each also takes `--node URL --token T --profile NAME --json` (`cli.remote`). A write exits 0 once its
tx is committed (not rejected), 1 otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

from cli.output import Column, ExitCode, print_fields, print_json, print_table, show_short
from cli.remote import client_options, connect, read, read_payload, report_write, write, write_options
from node.api.models import Members, Proposal, ProposalList

PROPOSAL_COLUMNS = (
    Column("proposal", "id", show_short),
    Column("action", "action"),
    Column("status", "status"),
    Column("approvals", "tally"),
    Column("opened", "height"),
    Column("executed", "executed_height"),
    Column("approved by", "approved_by"),
)
APPROVAL_COLUMNS = (Column("organisation", "org"), Column("signed by", "signer"))
VALIDATOR_COLUMNS = (
    Column("from height", "from_height"),
    Column("validator", "id"),
    Column("org", "org"),
    Column("public key", "public_key", show_short),
    Column("address", "address"),
)


def _row(proposal: Proposal) -> dict[str, Any]:
    row = proposal.model_dump(mode="json")
    row["tally"] = f"{proposal.counted}/{proposal.quorum}"
    row["approved_by"] = ", ".join(sorted(proposal.approvals))
    return row


def _report(result: Any, args: argparse.Namespace) -> int:
    """What became of the write, and then the proposal's tally."""
    code = report_write(result, args)
    resource = result.resource
    if resource and not args.json:
        print(f"approvals: {resource['counted']} of {resource['quorum']}")
    return code


def cmd_propose(args: argparse.Namespace) -> int:
    body = {"action": args.kind, "params": read_payload(args.payload)}
    return _report(write(connect(args), "/v1/governance/proposals", body, args), args)


def cmd_approve(args: argparse.Namespace) -> int:
    path = f"/v1/governance/proposals/{args.proposal_id}/approve"
    return _report(write(connect(args), path, {}, args), args)


def cmd_list(args: argparse.Namespace) -> int:
    proposals = read(connect(args), "/v1/governance/proposals", ProposalList, status=args.status)
    if args.json:
        print_json(proposals.model_dump(mode="json"))
    else:
        print_table([_row(p) for p in proposals.items], PROPOSAL_COLUMNS)
    return ExitCode.OK


def cmd_show(args: argparse.Namespace) -> int:
    proposal = read(connect(args), f"/v1/governance/proposals/{args.proposal_id}", Proposal)
    if args.json:
        print_json(proposal.model_dump(mode="json"))
        return ExitCode.OK
    row = _row(proposal)
    print_fields([(c.header, c.show(row.get(c.key))) for c in PROPOSAL_COLUMNS[:-1]] + [("proposer", row["proposer"])])
    print(f"\nparams: {row['params']}")
    print("\napprovals:")
    print_table(
        [{"org": org, "signer": signer} for org, signer in sorted(proposal.approvals.items())], APPROVAL_COLUMNS
    )
    return ExitCode.OK


def cmd_members(args: argparse.Namespace) -> int:
    members = read(connect(args), "/v1/governance/members", Members)
    if args.json:
        print_json(members.model_dump(mode="json"))
        return ExitCode.OK
    print_fields([("height", members.height), ("validators now", ", ".join(members.validators))])
    print("\norganisations:")
    print_table(members.organisations, (Column("organisation", "id"), Column("name", "name")))
    print("\nvalidator sets:")
    rows = [{"from_height": e.from_height, **v} for e in members.epochs for v in e.validators]
    print_table(rows, VALIDATOR_COLUMNS)
    print("\nclients:")
    print_table(members.clients, (Column("client", "id"), Column("org", "org"), Column("roles", "roles")))
    return ExitCode.OK


def add_parser(sub: Any) -> None:
    client, write = client_options(), write_options()
    group = sub.add_parser("governance", help="propose and approve changes to the network and its members")
    commands = group.add_subparsers(dest="governance_command", required=True)
    p = commands.add_parser("propose", parents=[client, write], help="propose a change (your organisation approves)")
    p.add_argument("kind", metavar="KIND", help="org.add, validator.add, validator.rotate, client.add, config.set...")
    p.add_argument("--payload", required=True, metavar="JSON", help="the change's params as JSON (or @FILE, @-)")
    p.set_defaults(func=cmd_propose)
    p = commands.add_parser("approve", parents=[client, write], help="approve a proposal for your organisation")
    p.add_argument("proposal_id", metavar="ID")
    p.set_defaults(func=cmd_approve)
    p = commands.add_parser("list", parents=[client], help="open and decided proposals, with who approved")
    p.add_argument("--status", choices=("open", "executed"))
    p.set_defaults(func=cmd_list)
    p = commands.add_parser("show", parents=[client], help="one proposal and its approvals")
    p.add_argument("proposal_id", metavar="ID")
    p.set_defaults(func=cmd_show)
    p = commands.add_parser("members", parents=[client], help="organisations, clients and validator sets in force")
    p.set_defaults(func=cmd_members)
