"""Membership changes, carried out by governance proposals once a quorum of organisations approved them.

Each action (`org.add`, `org.remove`, `validator.add`, `validator.remove`, `validator.rotate`,
`client.add`, `client.revoke`) is a pure function of the membership in force and its params that
returns the changed membership, or refuses with `bad_payload`/`unknown_member`/`member_exists`.
The same function checks a proposal when it is made and when it is approved, and makes the change
when the quorum is reached, so a proposal that the membership has since made impossible (its
organisation removed meanwhile, say) is refused rather than half applied.

Organisations and clients change at once. A change of the validator set is scheduled as an epoch
that begins right after the next checkpoint boundary (`ledger.membership.compute_epoch_start`);
changes approved before the same boundary accumulate in that one epoch. Removing an organisation
revokes its clients and schedules its validators' removal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from contracts.context import TxContext
from contracts.errors import Rejected
from contracts.payload import HEX_DIGITS
from ledger.genesis import ROLES as KNOWN_ROLES
from ledger.genesis import Identity
from ledger.membership import Epoch, Membership, Organisation, ValidatorSet, compute_epoch_start

MAX_ID_LENGTH = 100
"""Longest organisation or identity id, and organisation name."""

MAX_ADDRESS_LENGTH = 300
"""Longest validator address (a base URL)."""

CLIENT_ROLES = KNOWN_ROLES - {"validator"}
"""Roles a client identity may hold (the validator role comes with a place in the validator set)."""


def _get_id(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH or "/" in value or value != value.strip():
        raise Rejected("bad_payload", f"{name} must be a non-empty id of at most {MAX_ID_LENGTH} characters, no `/`")
    return value


def _get_public_key(params: dict[str, Any]) -> bytes:
    value = params.get("public_key")
    if not isinstance(value, str) or len(value) != 64:
        raise Rejected("bad_payload", "public_key must be 64 hex digits (an Ed25519 public key)")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise Rejected("bad_payload", "public_key must be 64 hex digits (an Ed25519 public key)") from None


def _require_params(params: Any, names: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(params, dict) or not names <= params.keys() <= names | optional:
        wanted = ", ".join(sorted(names)) + (f" (and optionally {', '.join(sorted(optional))})" if optional else "")
        raise Rejected("bad_payload", f"params must be a map of {wanted}")
    return params


def _require_org(membership: Membership, org: str) -> None:
    if not membership.has_org(org):
        raise Rejected("unknown_member", f"organisation {org} is not a member")


def _require_new_identity(membership: Membership, ident: str) -> None:
    """An id names one identity for good: not a client's, nor a validator's of any epoch."""
    used = {c.id for c in membership.clients} | {v.id for e in membership.epochs for v in e.validators.validators}
    if ident in used:
        raise Rejected("member_exists", f"identity {ident} already exists")


def _require_unused_key(membership: Membership, key: bytes) -> None:
    keys = {c.public_key for c in membership.clients} | {v.public_key for v in membership.latest.validators}
    if key in keys:
        raise Rejected("member_exists", "that public key already belongs to a member")


def _find_validator(validators: ValidatorSet, ident: str) -> Identity:
    for validator in validators.validators:
        if validator.id == ident:
            return validator
    raise Rejected("unknown_member", f"{ident} is not in the validator set")


def _schedule(membership: Membership, validators: tuple[Identity, ...], ctx: TxContext) -> Membership:
    """Membership with `validators` as the set of the epoch that begins after the next checkpoint boundary."""
    if not validators:
        raise Rejected("bad_payload", "the change would leave no validator")
    start = compute_epoch_start(ctx.height, ctx.genesis.consensus.checkpoint_interval)
    epochs = list(membership.epochs)
    if epochs[-1].from_height == start:
        epochs.pop()
    epochs.append(Epoch(start, ValidatorSet(validators)))
    return replace(membership, epochs=tuple(epochs))


def compute_org_add(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Add organisation `org` (named `name`; with `encryption_key`, the X25519 public key personal data is sealed
    to)."""
    params = _require_params(params, {"org", "name"}, frozenset({"encryption_key"}))
    org = _get_id(params, "org")
    name = params["name"]
    if not isinstance(name, str) or not 0 < len(name) <= MAX_ID_LENGTH:
        raise Rejected("bad_payload", f"name must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    if membership.has_org(org):
        raise Rejected("member_exists", f"organisation {org} is already a member")
    organisation = Organisation(id=org, name=name)
    if "encryption_key" in params:
        key = params["encryption_key"]
        if not isinstance(key, str) or len(key) != 64 or key.strip(HEX_DIGITS):
            raise Rejected("bad_payload", "encryption_key must be 64 lowercase hex digits (an X25519 public key)")
        organisation["encryption_key"] = key
    return replace(membership, organisations=(*membership.organisations, organisation))


def compute_org_remove(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Remove organisation `org`: its clients at once, its validators from the next epoch."""
    org = _get_id(_require_params(params, {"org"}), "org")
    _require_org(membership, org)
    if len(membership.organisations) == 1:
        raise Rejected("bad_payload", "the last organisation cannot be removed")
    changed = replace(
        membership,
        organisations=tuple(o for o in membership.organisations if o["id"] != org),
        clients=tuple(c for c in membership.clients if c.org != org),
    )
    validators = membership.latest.validators
    if not any(v.org == org for v in validators):
        return changed
    return _schedule(changed, tuple(v for v in validators if v.org != org), ctx)


def compute_validator_add(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Add validator `id` of organisation `org` with key `public_key` (and base URL `address`) to the next epoch."""
    params = _require_params(params, {"id", "org", "public_key"}, frozenset({"address"}))
    ident, org, key = _get_id(params, "id"), _get_id(params, "org"), _get_public_key(params)
    address = params.get("address", "")
    if not isinstance(address, str) or len(address) > MAX_ADDRESS_LENGTH:
        raise Rejected("bad_payload", f"address must be a string of at most {MAX_ADDRESS_LENGTH} characters")
    _require_org(membership, org)
    _require_new_identity(membership, ident)
    _require_unused_key(membership, key)
    validator = Identity(ident, org, key, frozenset({"validator"}), address)
    return _schedule(membership, (*membership.latest.validators, validator), ctx)


def compute_validator_remove(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Remove validator `id` from the next epoch."""
    ident = _get_id(_require_params(params, {"id"}), "id")
    _find_validator(membership.latest, ident)
    return _schedule(membership, tuple(v for v in membership.latest.validators if v.id != ident), ctx)


def compute_validator_rotate(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Give validator `id` the key `public_key` from the next epoch on (it keeps its place in the order)."""
    params = _require_params(params, {"id", "public_key"})
    ident, key = _get_id(params, "id"), _get_public_key(params)
    _find_validator(membership.latest, ident)
    _require_unused_key(membership, key)
    validators = tuple(replace(v, public_key=key) if v.id == ident else v for v in membership.latest.validators)
    return _schedule(membership, validators, ctx)


def compute_client_add(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Add client identity `id` of organisation `org` with key `public_key` and `roles`."""
    params = _require_params(params, {"id", "org", "public_key", "roles"})
    ident, org, key = _get_id(params, "id"), _get_id(params, "org"), _get_public_key(params)
    roles = params["roles"]
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r in CLIENT_ROLES for r in roles):
        raise Rejected("bad_payload", f"roles must be a non-empty list of {', '.join(sorted(CLIENT_ROLES))}")
    _require_org(membership, org)
    _require_new_identity(membership, ident)
    _require_unused_key(membership, key)
    client = Identity(ident, org, key, frozenset(roles))
    return replace(membership, clients=(*membership.clients, client))


def compute_client_revoke(membership: Membership, params: Any, ctx: TxContext) -> Membership:
    """Revoke client identity `id`: its txs are refused from the next tx on."""
    ident = _get_id(_require_params(params, {"id"}), "id")
    if membership.client(ident) is None:
        raise Rejected("unknown_member", f"{ident} is not a client identity")
    return replace(membership, clients=tuple(c for c in membership.clients if c.id != ident))


MemberChange = Callable[[Membership, Any, TxContext], Membership]

CHANGES: dict[str, MemberChange] = {
    "org.add": compute_org_add,
    "org.remove": compute_org_remove,
    "validator.add": compute_validator_add,
    "validator.remove": compute_validator_remove,
    "validator.rotate": compute_validator_rotate,
    "client.add": compute_client_add,
    "client.revoke": compute_client_revoke,
}
"""Each membership action of a governance proposal, by name."""

PARAMS_DOC = (
    "`org.add`: {`org`, `name`}; `org.remove`: {`org`}; `validator.add`: {`id`, `org`, `public_key`[, `address`]};"
    " `validator.remove`: {`id`}; `validator.rotate`: {`id`, `public_key`};"
    " `client.add`: {`id`, `org`, `public_key`, `roles`}; `client.revoke`: {`id`}"
)
"""The params of each membership action, for the payload documentation."""
