"""Query parameters read alike on every route: times as milliseconds or ISO 8601, and nothing undeclared.

- A time (`created_min`, ...) is milliseconds since the epoch or an ISO 8601
  date or date and time (UTC unless it names a zone): `TimeMs`.
- A query parameter the route does not declare (a typo such as `stauts`, or
  a filter another route has) is refused with 422 `invalid_request` naming
  it, rather than ignored, which would answer a list that looks filtered and
  is not (`refuse_unknown_parameters`, a dependency of every route). Enum
  values (`status=bogus`) are refused by their declared `Literal` the same
  way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, WithJsonSchema

from ledger.encoding import MAX_INT
from node.api.errors import InvalidRequest, Problem

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: int | datetime) -> int:
    """Milliseconds since the epoch (a time without a zone is UTC), exactly."""
    if isinstance(moment, int):
        return moment
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // timedelta(milliseconds=1)


def read_time(value: Any) -> Any:
    """A time parameter as milliseconds: digits pass as they are, an ISO 8601 text is converted."""
    if not isinstance(value, str) or value.isdigit():
        return value
    try:
        return to_ms(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise ValueError("neither milliseconds since the epoch nor an ISO 8601 date or time") from None


TimeMs = Annotated[
    int | None,
    BeforeValidator(read_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": MAX_INT},
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ]
        }
    ),
    Query(ge=0, le=MAX_INT, description="milliseconds since the epoch, or ISO 8601 (UTC unless a zone is given)"),
]
"""A time filter on block time."""


def get_declared_parameters(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route's `dependant` reads (its own and its dependencies')."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= get_declared_parameters(dependency)
    return frozenset(names)


async def refuse_unknown_parameters(request: Request) -> None:
    """Refuse a request with a query parameter its route does not declare (422, each one named)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    declared = get_declared_parameters(route.dependant)
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        raise InvalidRequest(
            f"unknown query parameters {unknown}; this route reads {sorted(declared)}",
            fields=[Problem(path=f"query.{name}", problem="not a parameter of this route") for name in unknown],
        )
