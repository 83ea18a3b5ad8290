"""Body limits: per request (413) and over all requests at once (503 with Retry-After), given back after
each answer."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from node.api.limits import BodyBudget, BodyLimitMiddleware


def make_client(budget: BodyBudget) -> TestClient:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(str(len(body)), status_code=202)

    app = Starlette(routes=[Route("/v1/tx", echo, methods=["POST"])])
    app.add_middleware(BodyLimitMiddleware, limit=100, budget=budget)
    return TestClient(app)


def test_a_body_over_the_limit_is_refused_before_the_route():
    budget = BodyBudget(1000)
    response = make_client(budget).post("/v1/tx", content=b"x" * 101)
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    assert budget.held == 0


def test_bodies_held_at_once_are_bounded_and_given_back():
    budget = BodyBudget(150)
    client = make_client(budget)
    assert client.post("/v1/tx", content=b"x" * 100).text == "100"
    assert budget.held == 0, "an answered request gives its bytes back"
    budget.charge(100)  # another request holds 100 bytes
    busy = client.post("/v1/tx", content=b"x" * 60)
    assert (busy.status_code, busy.json()["error"], busy.headers["retry-after"]) == (503, "server_busy", "1")
    assert (budget.held, budget.refused) == (100, 1)
    budget.give_back(100)
    assert client.post("/v1/tx", content=b"x" * 60).status_code == 202
