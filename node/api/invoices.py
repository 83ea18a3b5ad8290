"""Invoices and credit notes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from contracts import queries
from ledger.state import StateView
from node.api.deps import get_state

router = APIRouter(prefix="/v1", tags=["invoices"])

StateDep = Annotated[StateView, Depends(get_state)]


@router.get("/invoices", summary="Invoices and credit notes, optionally of one order")
async def list_invoices(state: StateDep, order_id: str | None = None) -> list[dict[str, Any]]:
    return queries.list_invoices(state, order_id=order_id)
