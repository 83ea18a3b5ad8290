"""The configuration every node applies, as the ledger holds it: `GET /v1/config`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts.governance import get_config_values
from ledger.state import StateView
from node.api.deps import authorize, get_node, get_state
from node.api.models import Configuration
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["configuration"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize("config:read"))]


@router.get("/config", response_model=Configuration, summary="Tax rates, timeouts, limits: what every node applies")
async def get_configuration(node: NodeDep, state: StateDep, reader: Reader) -> Any:
    """The effective configuration (the contracts' defaults overlaid with the values set on the ledger), the
    values set, the defaults, the keys only governance changes, and the contract versions pinned by hash."""
    return Configuration(
        effective=node.contracts.get_config(state),
        set=get_config_values(state),
        defaults=node.contracts.defaults,
        protected=node.contracts.governed_keys(),
        contracts=node.contracts.versions(),
    )
