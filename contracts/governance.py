"""Governance: ledger-wide configuration and contract versions, changed only by txs.

Configuration every node must agree on (tax rates, allocation weights,
timeouts, interception limits, the runtime's step budget...) lives in the
world state under `config` as the values explicitly set; rules see the
effective configuration, the defaults merged with those values, as
`ctx.config`. Every key is declared with its type, range and default
(`contracts.settings`), and a change to an undeclared key or with a value
that does not fit is refused. An operator sets an ordinary key with
`config.set` (payload `{"key": str, "value": any}`; a `None` value restores
the default). Governed keys (money, the review gate, the work of a tx or a
block) and contract versions change only by governance.

A governance change is a proposal (`governance.propose`, payload
`{"action": ..., "params": {...}}`) that member organisations approve
(`governance.approve`, payload `{"proposal": id}`), each with its operator
client key or its validator key. Approvals are counted per organisation, since
one organisation may run several validators and clients; the proposal takes
effect once at least two thirds of the member organisations, rounded up,
approved it (3 of 4, 4 of 5; the proposer's organisation counts). Only the
approvals of organisations that are still members count, so a removed
organisation's approval no longer does. An organisation's second approval
is refused (`already_approved`). A `contract.activate` (params `module`,
`sha256`, `from_height`) schedules the module version with that source hash
from `from_height` on, under `contract/<module>`; the runtime switches the pin
when that height is reached and a node running other source stops there. The
membership actions (`org.add`, `validator.rotate`, ... see `contracts.members`)
change the membership in force (`ledger.membership`).
"""

from __future__ import annotations

from typing import Any, Literal

from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.members import CHANGES, PARAMS_DOC
from contracts.payload import anything, choice, payload, read_payload, text
from contracts.roles import roles_for
from contracts.settings import Setting, read_setting
from ledger.membership import MEMBERSHIP_KEY, Membership
from ledger.state import StateView
from ledger.tx import Tx

ROLES = roles_for("config.set", "governance.propose", "governance.approve")

CONFIG_KEY = "config"
"""State key of the configuration values set on the ledger (defaults are not stored)."""

CONTRACT_PREFIX = "contract/"
"""State prefix of the contract version pins: `contract/<module>` -> {hash, since_height[, next]}."""

PROPOSAL_PREFIX = "governance/proposal/"
"""State prefix of governance proposals, by id (the proposing tx id in hex)."""

ProposalStatus = Literal["open", "executed"]
"""Where a proposal stands: waiting for approvals, or carried out at the quorum."""

ACTIONS = ("config.set", "contract.activate", *CHANGES)
"""What a governance proposal may do."""

MAX_KEY_LENGTH = 100
"""Longest configuration key or module name."""

HEX_DIGITS = "0123456789abcdef"
"""Lower-case hex digits, the form of a pinned source hash."""

PAYLOADS = {
    "config.set": payload(
        text("key", min_length=1, max_length=MAX_KEY_LENGTH),
        anything("value", required=False, doc="fitting the key's declared type and range; null restores the default"),
    ),
    "governance.propose": payload(
        choice("action", ACTIONS),
        anything(
            "params",
            doc="`config.set`: {`key`, `value`}; `contract.activate`: {`module`, `sha256`, `from_height`}; "
            + PARAMS_DOC,
        ),
    ),
    "governance.approve": payload(text("proposal", doc="the proposal id: the proposing tx id in hex")),
}
"""The payload of each tx kind of this module."""


def get_config_values(state: StateView) -> dict[str, Any]:
    """The configuration values set on the ledger (without defaults)."""
    values = state.get(CONFIG_KEY)
    return values if values is not None else {}


def get_contract_key(module: str) -> str:
    return CONTRACT_PREFIX + module


def get_proposal_key(proposal_id: str) -> str:
    return PROPOSAL_PREFIX + proposal_id


def compute_quorum(n: int) -> int:
    """Approvals needed among n member organisations: at least two thirds, rounded up (3 of 4, 4 of 5)."""
    return -(-2 * n // 3)


def _get_key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_LENGTH:
        raise Rejected("bad_payload", f"{what} must be a non-empty string of at most {MAX_KEY_LENGTH} characters")
    return value


def _require_setting(key: str, ctx: TxContext) -> Setting:
    """The declaration of configuration key `key`, or `unknown_config_key`."""
    setting = ctx.settings.get(key)
    if setting is None:
        raise Rejected("unknown_config_key", f"no configuration key {key!r} is declared")
    return setting


def _read_config_value(key: str, value: Any, ctx: TxContext) -> Any:
    """A new value for `key` checked against its declaration (None, which restores the default, as it is)."""
    setting = _require_setting(key, ctx)
    return None if value is None else read_setting(setting, value)


def _get_config_change(params: Any, ctx: TxContext) -> tuple[str, Any]:
    """Check a `{key, value}` change: a declared key, and a value that fits its declaration."""
    if not isinstance(params, dict):
        raise Rejected("bad_payload", "a config change is a map with `key` and `value`")
    key = _get_key(params.get("key"), "key")
    return key, _read_config_value(key, params.get("value"), ctx)


def _apply_config_change(state: StateView, key: str, value: Any) -> None:
    values = get_config_values(state)
    if value is None:
        values.pop(key, None)
    else:
        values[key] = value
    state.put(CONFIG_KEY, values)


def _get_activation(params: Any, ctx: TxContext) -> tuple[str, str, int]:
    """Check `{module, sha256, from_height}`: a lower-case sha256 hex and a height still to come."""
    if not isinstance(params, dict):
        raise Rejected("bad_payload", "a contract activation is a map with `module`, `sha256` and `from_height`")
    module = _get_key(params.get("module"), "module")
    digest = params.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64 or not all(c in HEX_DIGITS for c in digest):
        raise Rejected("bad_payload", "sha256 must be 64 lower-case hex digits")
    from_height = params.get("from_height")
    if not isinstance(from_height, int) or isinstance(from_height, bool) or from_height <= ctx.height:
        raise Rejected("bad_payload", f"from_height must be a height after the current one ({ctx.height})")
    return module, digest, from_height


def _schedule_activation(state: StateView, module: str, digest: str, from_height: int) -> None:
    """Record that `module` runs the source with hash `digest` from `from_height` on."""
    key = get_contract_key(module)
    record = state.get(key)
    if record is None:
        record = {"hash": None, "since_height": 0}
    record["next"] = {"hash": digest, "since_height": from_height}
    state.put(key, record)


def _check_action(action: Any, params: Any, ctx: TxContext) -> None:
    if action == "config.set":
        _get_config_change(params, ctx)
    elif action == "contract.activate":
        _get_activation(params, ctx)
    elif action in CHANGES:
        CHANGES[action](ctx.membership, params, ctx)
    else:
        raise Rejected("bad_payload", f"action must be one of {', '.join(ACTIONS)}")


def _apply_action(state: StateView, proposal: dict[str, Any], ctx: TxContext) -> None:
    action, params = proposal["action"], proposal["params"]
    if action == "config.set":
        key, value = _get_config_change(params, ctx)
        _apply_config_change(state, key, value)
    elif action == "contract.activate":
        module, digest, from_height = _get_activation(params, ctx)
        _schedule_activation(state, module, digest, from_height)
    else:
        membership: Membership = CHANGES[action](ctx.membership, params, ctx)
        state.put(MEMBERSHIP_KEY, membership.to_wire())


def _require_member_org(ctx: TxContext) -> str:
    """The signer's organisation, which must still be a member (a removed one's validator signs until its epoch
    ends, but no longer governs)."""
    org = ctx.signer.org
    if not ctx.membership.has_org(org):
        raise Rejected("not_a_member", f"organisation {org} is no longer a member")
    return org


def _settle(state: StateView, proposal_id: str, proposal: dict[str, Any], ctx: TxContext) -> dict[str, Any]:
    """Store the proposal, executing it first if its approvals reached the quorum of organisations."""
    orgs = ctx.membership.org_ids()
    approvals = [org for org in proposal["approvals"] if org in orgs]
    quorum = compute_quorum(len(orgs))
    if len(approvals) >= quorum:
        _apply_action(state, proposal, ctx)
        proposal["status"] = "executed"
        proposal["executed_height"] = ctx.height
    state.put(get_proposal_key(proposal_id), proposal)
    return {"proposal": proposal_id, "approvals": len(approvals), "quorum": quorum, "status": proposal["status"]}


def process_config_set(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Set (or, with a `None` value, reset) one configuration key that is not governed."""
    fields = read_payload(PAYLOADS["config.set"], tx.payload)
    key = fields["key"]
    if _require_setting(key, ctx).governed:
        raise Rejected("protected_config", f"config {key!r} changes only through a governance proposal")
    _apply_config_change(state, key, _read_config_value(key, fields["value"], ctx))
    return {"key": key}


def process_governance_propose(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Open a proposal; the proposer's organisation is its first approval."""
    fields = read_payload(PAYLOADS["governance.propose"], tx.payload)
    action = fields["action"]
    params = fields["params"]
    org = _require_member_org(ctx)
    _check_action(action, params, ctx)
    proposal = {
        "action": action,
        "params": params,
        "proposer": tx.signer,
        "height": ctx.height,
        "approvals": {org: tx.signer},
        "status": "open",
    }
    return _settle(state, tx.id.hex(), proposal, ctx)


def process_governance_approve(state: StateView, tx: Tx, ctx: TxContext) -> dict[str, Any]:
    """Add the signer's organisation to an open proposal, executing it at the quorum."""
    proposal_id = read_payload(PAYLOADS["governance.approve"], tx.payload)["proposal"]
    proposal = state.get(get_proposal_key(proposal_id))
    if proposal is None:
        raise Rejected("unknown_proposal", f"no proposal {proposal_id}")
    if proposal["status"] != "open":
        raise Rejected("proposal_closed", f"proposal {proposal_id} is {proposal['status']}")
    org = _require_member_org(ctx)
    if org in proposal["approvals"]:
        raise Rejected("already_approved", f"organisation {org} already approved proposal {proposal_id}")
    if proposal["action"] == "contract.activate" and proposal["params"]["from_height"] <= ctx.height:
        raise Rejected("proposal_expired", f"proposal {proposal_id} would activate at a height already reached")
    proposal["approvals"][org] = tx.signer
    _check_action(proposal["action"], proposal["params"], ctx)
    return _settle(state, proposal_id, proposal, ctx)
