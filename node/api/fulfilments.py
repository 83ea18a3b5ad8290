"""Fulfilments (the part of an order one location serves): pick, ship with carrier and tracking, deliver, decline.

Each route sends one tx the node signs for the token's identity (a store acts
at its own organisation's locations, an operator anywhere) and answers the
fulfilment's order as it then is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from contracts import queries
from contracts.lifecycle import get_fulfilment
from ledger.state import StateView
from node.api.actions import Action, add_actions
from node.api.models import Order
from node.visibility import get_fulfilment_orgs

router = APIRouter(prefix="/v1", tags=["fulfilments"])


def show_order_of_fulfilment(
    state: StateView, payload: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any] | None:
    record = get_fulfilment(state, payload["fulfilment_id"])
    return None if record is None else queries.get_order(state, record["order_id"])


def fulfilment_action(verb: str, kind: str, summary: str) -> Action:
    """`POST /v1/fulfilments/{fulfilment_id}/<verb>` sending `kind`; answers the fulfilment's order."""
    return Action(
        path=f"/fulfilments/{{fulfilment_id}}/{verb}",
        kind=kind,
        summary=summary,
        resource=Order,
        show=show_order_of_fulfilment,
        owner=("fulfilment_id", get_fulfilment_orgs),
    )


FULFILMENT_ACTIONS = (
    fulfilment_action("pick", "fulfilment.pick", "Picked at the location (released -> picked)"),
    fulfilment_action("ship", "fulfilment.ship", "Shipped with a carrier and tracking: stock out, invoiced"),
    fulfilment_action("deliver", "fulfilment.deliver", "Delivered to the customer"),
    fulfilment_action("decline", "fulfilment.decline", "The location cannot serve it: allocated elsewhere"),
)
"""`POST /v1/fulfilments/{fulfilment_id}/<action>`: each sends one tx kind, its payload the body and the id."""

add_actions(router, FULFILMENT_ACTIONS)
