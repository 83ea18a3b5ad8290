"""The change feed, `GET /v1/events`: what changed since a cursor, in commit order, with long-poll.

A client keeps the `next_cursor` of each answer and asks again with
`after=<it>`; `after=0` starts from the first block. With `wait=N` an answer
that would be empty waits up to N seconds for a block to commit. A store's or
a channel's token follows its organisation's events; operators and auditors
follow all. See `node.feed` for the events and their order. A node that
joined by state sync holds the events after its snapshot only: a cursor
before them (`after=0` included) is answered 410 `cursor_before_feed` with
the `first_cursor` it can answer after, never a page that silently skips.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ledger.encoding import MAX_INT
from node.api.deps import authorize_route, get_node
from node.api.errors import CursorBeforeFeed, InvalidRequest
from node.api.limits import DEFAULT_PAGE
from node.api.models import CursorBeforeFeedBody, Event, EventPage
from node.api.pages import MAX_SCAN, Limit
from node.feed import EVENT_TYPES, get_feed_start, read_events
from node.node import Node
from node.tokens import Principal

router = APIRouter(prefix="/v1", tags=["events"])

NodeDep = Annotated[Node, Depends(get_node)]
Reader = Annotated[Principal, Depends(authorize_route)]

MAX_WAIT_S = 60
"""Longest a long-poll waits."""


@router.get(
    "/events",
    response_model=EventPage,
    responses={410: {"model": CursorBeforeFeedBody}},
    summary="Every change the token may see since a cursor, in commit order (long-poll with `wait`)",
)
async def list_events(
    node: NodeDep,
    reader: Reader,
    after: Annotated[str, Query(description="a cursor from an earlier answer; 0 for the beginning")] = "0",
    types: Annotated[str | None, Query(description=f"comma-separated among {', '.join(EVENT_TYPES)}")] = None,
    limit: Limit = DEFAULT_PAGE,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for a change")] = 0,
) -> Any:
    if not after.isdigit() or int(after) > MAX_INT:
        message = "after must be a cursor from an earlier answer, or 0"
        raise InvalidRequest(message, at="query.after")
    wanted = None if types is None else frozenset(t.strip() for t in types.split(",") if t.strip())
    if wanted is not None and not wanted <= set(EVENT_TYPES):
        message = f"unknown event types {sorted(wanted - set(EVENT_TYPES))}; known: {list(EVENT_TYPES)}"
        raise InvalidRequest(message, at="query.types")
    org = None if reader.sees_all else reader.org
    start = int(after)
    first = get_feed_start(node.base_height)
    if start < first:
        raise CursorBeforeFeed(
            f"this node joined by state sync at height {node.base_height}: its feed holds the events after cursor"
            f" {first}; read on from there, or ask a node with the full history for the events before",
            first,
        )
    deadline = node.clock() + wait * 1000
    while True:
        events, cursor = read_events(node.store, org, start, limit, wanted, MAX_SCAN)
        remaining_s = (deadline - node.clock()) / 1000
        if events or cursor != start or remaining_s <= 0:
            return EventPage(items=[Event(**e) for e in events], next_cursor=str(cursor))
        await node.commits.wait(remaining_s)
