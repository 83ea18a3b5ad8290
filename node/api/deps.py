"""Shared dependencies of the API routers: the running node and a read view of its state."""

from __future__ import annotations

from fastapi import Request

from ledger.state import StateView
from node.node import Node


async def get_node(request: Request) -> Node:
    """The node this server runs (set on the app at start-up)."""
    node: Node = request.app.state.node
    return node


async def get_state(request: Request) -> StateView:
    """A read-only view of the committed world state."""
    node: Node = request.app.state.node
    return StateView(node.store)
