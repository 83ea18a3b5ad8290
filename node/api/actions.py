"""Write routes declared as a table: each `Action` is one `POST` route that sends one tx kind.

An action names its path (with at most one id, e.g. `{order_id}`, which goes
into the payload under the same name), the tx kind, whose payload spec is the
request body (`node.api.bodies`: documented in the OpenAPI, refused with 400
when it does not fit), the scope a token needs, and how to show the resource
once the tx is committed. The
route then does what every write does (`node.api.writes.submit_as`): signs
for the token's identity, honours `Idempotency-Key` and `?wait=commit`.

A target that exists but belongs to no organisation the token reads is
answered 404, as a read of it would be: a token cannot learn of (nor act on)
another organisation's order by writing to it. One it reads (an operator's,
an auditor's) but may not act on, since the roles table gives its roles only
their own for that kind (`contracts.roles`), is answered 403. A target that does not exist
is left to the contract, whose receipt says `unknown_*` (it may still be on
its way to a block).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response
from pydantic import BaseModel

from ledger.state import StateView
from node.api.access import ROUTES, may_act_on
from node.api.bodies import TxBody, payload_model
from node.api.deps import authorize_route, get_node
from node.api.errors import Forbidden, NotFound
from node.api.models import ErrorBody, WriteResult
from node.api.writes import IdempotencyKey, Wait, submit_as
from node.node import Node
from node.tokens import Principal
from node.visibility import Read

Owners = Callable[[Read, str], list[str] | None]
"""The organisations the target with this id belongs to; None when there is no such target (yet)."""

Show = Callable[[StateView, dict[str, Any], dict[str, Any]], dict[str, Any] | None]
"""The resource after a committed tx, from the state, the tx payload and the receipt's result."""

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    202: {"description": "not committed yet (or not asked to wait): poll `Location`"},
    400: {"model": ErrorBody, "description": "the node does not admit the tx (e.g. `expired_transaction`)"},
    401: {"model": ErrorBody},
    403: {"model": ErrorBody, "description": "the token lacks the scope, or its identity the role"},
    404: {"model": ErrorBody, "description": "the target belongs to an organisation the token does not read"},
    409: {"model": ErrorBody, "description": "`idempotency_conflict`: the key was used with another request"},
}


@dataclass(frozen=True, kw_only=True)
class Action:
    """One write route: `POST path` sends `kind` with the body, and the path's id, as its payload."""

    path: str
    """Under `/v1`, e.g. `/orders/{order_id}/cancel`."""
    kind: str
    summary: str
    resource: type[BaseModel] | None = None
    """Model of the resource shown after the tx (None: none is shown)."""
    show: Show | None = None
    owner: tuple[str, Owners] | None = None
    """The payload field naming the target, and who a target with that id belongs to."""

    @property
    def target(self) -> str | None:
        """The id the path names, which is also its payload field."""
        names = re.findall(r"{(\w+)}", self.path)
        return names[0] if names else None

    @property
    def body(self) -> type[TxBody]:
        """The request body: the kind's payload, less the id the path names."""
        return payload_model(self.kind, self.target)


def add_actions(router: APIRouter, actions: Sequence[Action]) -> None:
    """Add a `POST` route to `router` for every action (its scope is the roles table's, `node.api.access`)."""
    for action in actions:
        scope = ROUTES[("POST", router.prefix + action.path)].scope
        router.add_api_route(
            action.path,
            make_endpoint(action),
            methods=["POST"],
            response_model=result_model(action),
            responses=WRITE_ERRORS,
            summary=action.summary,
            description=f"Sends `{action.kind}` (see docs/spec/transactions.md), signed by the node for the "
            f"token's identity; needs scope `{scope}`.",
            name=action.kind,
        )


def result_model(action: Action) -> type[WriteResult[Any]]:
    """The declared answer of `action`: a `WriteResult` whose resource is the action's resource model."""
    resource: Any = action.resource or dict[str, Any]
    model: type[WriteResult[Any]] = WriteResult[resource]
    return model


def make_endpoint(action: Action) -> Callable[..., Any]:
    """The route function of `action`, with a signature FastAPI reads for its parameters."""
    target = action.target

    async def endpoint(**params: Any) -> Any:
        node: Node = params["node"]
        body: TxBody | None = params["body"]
        payload = {} if body is None else body.to_payload()
        if target is not None:
            payload[target] = params[target]
        if action.owner is not None:
            field, get_owners = action.owner
            owners = get_owners(StateView(node.store).get, payload[field])
            principal: Principal = params["principal"]
            if owners is not None and not principal.can_see(owners):
                raise NotFound(f"no {field.removesuffix('_id')} {payload[field]!r}")
            if owners is not None and not may_act_on(principal, action.kind, owners):
                raise Forbidden(f"the roles table lets {principal.identity.id} send {action.kind} for its own only")
        show = action.show

        def render(result: dict[str, Any]) -> dict[str, Any] | None:
            return None if show is None else show(StateView(node.store), payload, result)

        return await submit_as(
            node,
            params["principal"],
            action.kind,
            payload,
            params["response"],
            params["idempotency_key"],
            params["wait"],
            render,
        )

    optional = all(not field.is_required() for field in action.body.model_fields.values())
    body = inspect.Parameter(
        "body",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[action.body | None, Body()] if optional else Annotated[action.body, Body()],
        default=None if optional else inspect.Parameter.empty,
    )
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [
        inspect.Parameter("node", keyword, annotation=Annotated[Node, Depends(get_node)]),
        inspect.Parameter("principal", keyword, annotation=Annotated[Principal, Depends(authorize_route)]),
        inspect.Parameter("response", keyword, annotation=Response),
        *([inspect.Parameter(target, keyword, annotation=Annotated[str, Path()])] if target else []),
        body,
        inspect.Parameter("idempotency_key", keyword, annotation=IdempotencyKey, default=None),
        inspect.Parameter("wait", keyword, annotation=Wait, default=None),
    ]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = action.kind.replace(".", "_")
    return endpoint
