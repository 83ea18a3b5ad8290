"""The configuration every node applies, as the ledger holds it: `GET /v1/config`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts.governance import get_config_values
from ledger.state import StateView
from node.api.access import CUSTOMERS_READ
from node.api.deps import authorize_route, get_node, get_state
from node.api.models import Configuration
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["configuration"])

NodeDep = Annotated[Node, Depends(get_node)]
StateDep = Annotated[StateView, Depends(get_state)]
Reader = Annotated[Principal, Depends(authorize_route)]


@router.get("/config", response_model=Configuration, summary="Tax rates, timeouts, limits: what every node applies")
async def get_configuration(node: NodeDep, state: StateDep, reader: Reader) -> Any:
    """The effective configuration (the contracts' defaults overlaid with the values set on the ledger), the
    values set, the defaults, the keys only governance changes, and the contract versions pinned by hash; the
    settings that name customers only for a token with `customers:read`."""
    hidden = set() if CUSTOMERS_READ in reader.scopes else set(node.contracts.customer_keys())

    def shown(values: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in values.items() if key not in hidden}

    return Configuration(
        effective=shown(node.contracts.get_config(state)),
        set=shown(get_config_values(state)),
        defaults=shown(node.contracts.defaults),
        protected=node.contracts.governed_keys(),
        contracts=node.contracts.versions(),
    )
