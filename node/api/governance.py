"""Governance: proposals that change the configuration, the contracts or the membership, and the membership in force.

    GET  /v1/governance/proposals[?status=open|executed]   open and decided proposals, with who approved
    GET  /v1/governance/proposals/{id}                      one proposal
    POST /v1/governance/proposals                           propose (`governance.propose`, signed for the token)
    POST /v1/governance/proposals/{id}/approve              approve (`governance.approve`, signed for the token)
    GET  /v1/governance/members                             organisations, clients and validator sets

Reads need `config:read`; writes need `governance:write` and a token whose identity is its organisation's
operator or validator, with its key held by the node (`node.api.writes`). A change to a setting that names
customers is shown with its value only to `customers:read`, and proposed only with `customers:write`. How
many approvals a proposal has counts only organisations that are members now, against the quorum of the
members now.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from contracts.governance import PROPOSAL_PREFIX, compute_quorum, get_proposal_key
from ledger.membership import Membership
from ledger.state import StateView
from node.api.access import CUSTOMERS_READ, CUSTOMERS_WRITE
from node.api.actions import WRITE_ERRORS
from node.api.deps import authorize_route, get_node, get_state
from node.api.errors import Forbidden, NotFound
from node.api.models import Members, NewProposal, Proposal, ProposalList, ValidatorEpoch, WriteResult
from node.api.writes import IdempotencyKey, Wait, submit_as
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1/governance", tags=["governance"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]
Writer = Annotated[Principal, Depends(authorize_route)]
ProposalId = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="the proposing tx's id, hex")]


def names_customers(node: Node, action: str, params: Any) -> bool:
    """Does this proposal set a configuration key whose values name customers (`Setting.names_customers`)?"""
    return action == "config.set" and isinstance(params, dict) and params.get("key") in node.contracts.customer_keys()


def render_proposal(
    proposal_id: str, record: dict[str, Any], membership: Membership, hide_customers: bool = False
) -> Proposal:
    """A stored proposal with its approvals counted against the members now (with `hide_customers`, the value
    of a setting that names customers left out)."""
    orgs = membership.org_ids()
    params = record["params"]
    if hide_customers:
        params = {name: value for name, value in params.items() if name != "value"}
    return Proposal(
        id=proposal_id,
        action=record["action"],
        params=params,
        proposer=record["proposer"],
        height=record["height"],
        status=record["status"],
        executed_height=record.get("executed_height"),
        approvals=record["approvals"],
        counted=sum(1 for org in record["approvals"] if org in orgs),
        quorum=compute_quorum(len(orgs)),
    )


def _render(node: Node, proposal_id: str, record: dict[str, Any], caller: Principal) -> Proposal:
    hide = CUSTOMERS_READ not in caller.scopes and names_customers(node, record["action"], record["params"])
    return render_proposal(proposal_id, record, node.executor.get_membership(), hide)


def _find_proposal(node: Node, state: StateView, proposal_id: str, caller: Principal) -> Proposal:
    record = state.get(get_proposal_key(proposal_id))
    if record is None:
        raise NotFound(f"no proposal {proposal_id}")
    return _render(node, proposal_id, record, caller)


def _render_result(node: Node, caller: Principal) -> Any:
    """What a committed propose or approve answers: the proposal as it now is."""

    def render(result: dict[str, Any]) -> dict[str, Any] | None:
        proposal_id = result.get("proposal")
        if not isinstance(proposal_id, str):
            return None
        return _find_proposal(node, StateView(node.store), proposal_id, caller).model_dump(mode="json")

    return render


@router.get("/proposals", response_model=ProposalList, summary="Open and decided proposals, with who approved")
async def list_proposals(
    node: NodeDep,
    state: StateDep,
    reader: Reader,
    status: Annotated[Literal["open", "executed"] | None, Query(description="only proposals in this state")] = None,
) -> Any:
    """Every proposal, oldest first (by the block that opened it)."""
    items = [
        _render(node, key.removeprefix(PROPOSAL_PREFIX), record, reader) for key, record in state.scan(PROPOSAL_PREFIX)
    ]
    items = [p for p in items if status is None or p.status == status]
    return ProposalList(items=sorted(items, key=lambda p: (p.height, p.id)))


@router.get("/proposals/{proposal_id}", response_model=Proposal, summary="One proposal")
async def get_proposal(node: NodeDep, state: StateDep, reader: Reader, proposal_id: ProposalId) -> Any:
    return _find_proposal(node, state, proposal_id, reader)


@router.post(
    "/proposals",
    response_model=WriteResult[Proposal],
    responses=WRITE_ERRORS,
    summary="Propose a change; the proposer's organisation is its first approval",
)
async def propose(
    node: NodeDep,
    writer: Writer,
    body: NewProposal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    payload = body.model_dump()
    if CUSTOMERS_WRITE not in writer.scopes and names_customers(node, body.action, body.params):
        raise Forbidden(f"setting {body.params['key']!r} names customers: proposing it needs scope {CUSTOMERS_WRITE!r}")
    render = _render_result(node, writer)
    return await submit_as(node, writer, "governance.propose", payload, response, idempotency_key, wait, render)


@router.post(
    "/proposals/{proposal_id}/approve",
    response_model=WriteResult[Proposal],
    responses=WRITE_ERRORS,
    summary="Approve a proposal for the token's organisation",
)
async def approve(
    node: NodeDep,
    writer: Writer,
    proposal_id: ProposalId,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> Any:
    payload = {"proposal": proposal_id}
    render = _render_result(node, writer)
    return await submit_as(node, writer, "governance.approve", payload, response, idempotency_key, wait, render)


@router.get("/members", response_model=Members, summary="Organisations, client identities and validator sets")
async def get_members(node: NodeDep, reader: Reader) -> Any:
    membership = node.executor.get_membership()
    height = node.store.height
    return Members(
        height=height,
        organisations=[{key: str(value) for key, value in o.items()} for o in membership.organisations],
        clients=[c.to_wire() for c in membership.clients],
        epochs=[
            ValidatorEpoch(from_height=e.from_height, validators=e.validators.to_wire(), quorum=e.validators.quorum)
            for e in membership.epochs
        ],
        validators=membership.validator_set(height + 1).ids(),
    )
