"""Stock per location and SKU, and the stock journal it is the sum of."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts import queries
from ledger.state import StateView
from node.api.deps import get_state

router = APIRouter(prefix="/v1", tags=["inventory"])

StateDep = Annotated[StateView, Depends(get_state)]


@router.get("/inventory", summary="On hand, reserved and available per location and SKU")
async def list_inventory(state: StateDep, location: str | None = None, sku: str | None = None) -> list[dict[str, Any]]:
    return queries.list_inventory(state, location=location, sku=sku)


@router.get("/journal", summary="Stock journal entries (every change of stock, with its tx and height)")
async def list_journal(state: StateDep, location: str | None = None, sku: str | None = None) -> list[dict[str, Any]]:
    return queries.list_journal(state, location=location, sku=sku)
