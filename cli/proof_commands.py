"""`omsnode verify-proof FILE --genesis genesis.json`: check a proof with nothing but the genesis file.

No node and no network: the proof (as `GET /v1/proofs/...` served it, byte
for byte) is checked against the validator set in force at its block,
reached from the genesis set through the certified changes the proof
carries, and the command says what it proves: for a tx proof, this tx, with
this receipt, was committed at this height by a quorum of these
organisations; for a state proof (`/v1/proofs/state/...`), this state entry
held this value after this height. Exit status 0 when the proof holds, 1 on
any mismatch (the reason on stderr), 2 when a file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.output import ExitCode, fail, print_fields, print_json, show_time
from contracts.queries import to_json
from ledger.errors import InvalidGenesis, LedgerError
from ledger.genesis import Genesis
from ledger.proof import MAX_PROOF_BYTES, Proven, decode_proof, verify_tx_proof
from ledger.state_proof import FORMAT as STATE_FORMAT
from ledger.state_proof import ProvenState, decode_state_proof, verify_state_proof


def cmd_verify_proof(args: argparse.Namespace) -> int:
    try:
        genesis = Genesis.load(Path(args.genesis))
        text = _read_bounded(args.file)
    except (OSError, InvalidGenesis) as exc:
        return fail(f"cannot read: {exc}", ExitCode.USAGE)
    try:
        proven = verify_any(text, genesis)
    except LedgerError as exc:
        if args.json:
            print_json({"ok": False, "reason": str(exc)})
        return fail(f"proof does NOT hold: {exc}", ExitCode.FAILED)
    if isinstance(proven, ProvenState):
        return _say_state(proven, genesis, args.json)
    if args.json:
        print_json({"ok": True, **describe(proven)})
        return ExitCode.OK
    print(
        f"PROVEN: tx {proven.tx.id.hex()} ({proven.tx.kind}, signed by {proven.tx.signer}) was committed at height "
        f"{proven.height} with receipt {proven.receipt.code!r}, by a quorum of {', '.join(proven.organisations)}"
    )
    print_fields(
        [
            ("chain", genesis.chain_id),
            ("block hash", proven.block_hash.hex()),
            ("block time", f"{show_time(proven.timestamp_ms)} UTC"),
            ("certified by", list(proven.signers)),
            ("validator-set changes", proven.validator_set_changes),
            ("receipt ok", proven.receipt.ok),
            ("receipt message", proven.receipt.message),
        ]
    )
    return ExitCode.OK


def verify_any(text: bytes, genesis: Genesis) -> Proven | ProvenState:
    """What a tx proof or a state proof proves (by its `format`); raises `LedgerError` if it does not hold."""
    if _format_of(text) == STATE_FORMAT:
        return verify_state_proof(decode_state_proof(text), genesis)
    return verify_tx_proof(decode_proof(text), genesis)


def _format_of(text: bytes) -> Any:
    try:
        wire = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return wire.get("format") if isinstance(wire, dict) else None


def _say_state(proven: ProvenState, genesis: Genesis, as_json: bool) -> int:
    value = to_json(proven.value)
    status = value.get("status") if isinstance(value, dict) else None
    if as_json:
        print_json({"ok": True, **describe_state(proven)})
        return ExitCode.OK
    print(
        f"PROVEN: state entry {proven.key!r}"
        + (f" (status {status!r})" if status is not None else "")
        + f" held this value after block {proven.height}, certified by a quorum of {', '.join(proven.organisations)}"
    )
    print_fields(
        [
            ("chain", genesis.chain_id),
            ("block hash", proven.block_hash.hex()),
            ("block time", f"{show_time(proven.timestamp_ms)} UTC"),
            ("certified by", list(proven.signers)),
            ("validator-set changes", proven.validator_set_changes),
        ]
    )
    print(json.dumps(value, indent=2, sort_keys=True))
    return ExitCode.OK


def describe_state(proven: ProvenState) -> dict[str, Any]:
    """What a state proof proves, as JSON."""
    return {
        "key": proven.key,
        "value": to_json(proven.value),
        "height": proven.height,
        "block_hash": proven.block_hash.hex(),
        "timestamp_ms": proven.timestamp_ms,
        "signers": list(proven.signers),
        "organisations": list(proven.organisations),
        "validator_set_changes": proven.validator_set_changes,
    }


def describe(proven: Proven) -> dict[str, Any]:
    """What a proof proves, as JSON."""
    return {
        "tx_id": proven.tx.id.hex(),
        "kind": proven.tx.kind,
        "signer": proven.tx.signer,
        "height": proven.height,
        "block_hash": proven.block_hash.hex(),
        "timestamp_ms": proven.timestamp_ms,
        "receipt": {"ok": proven.receipt.ok, "code": proven.receipt.code, "message": proven.receipt.message},
        "signers": list(proven.signers),
        "organisations": list(proven.organisations),
        "validator_set_changes": proven.validator_set_changes,
    }


def _read_bounded(name: str) -> bytes:
    """The proof file (or stdin for `-`), refused if larger than any proof."""
    stream = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115 - closed below
    try:
        text = stream.read(MAX_PROOF_BYTES + 1)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    return text


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "verify-proof",
        help="check a tx or state proof offline, with only the genesis file",
        description="Check a proof served by GET /v1/proofs/... (saved byte for byte) against the genesis "
        "validators and the certified validator-set changes it carries, with no node and no network, and say "
        "what it proves.",
        epilog="exit status: 0 when the proof holds; 1 when it does not (the reason on stderr); 2 for a file "
        "that cannot be read",
    )
    p.add_argument("file", metavar="FILE", help="the proof (- for stdin)")
    p.add_argument("--genesis", required=True, metavar="FILE", help="the chain's genesis.json")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_verify_proof)
