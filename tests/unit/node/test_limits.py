"""Body limits: per request (413) and over all requests at once (503 with Retry-After), given back after
each answer; rate limits in units of work, paid after the answer, refusing a key in debt."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from node.api.errors import install_error_handlers
from node.api.limits import (
    ANSWER_BYTES_PER_UNIT,
    CURRENT_WORK,
    REQUEST_BYTES_PER_UNIT,
    ROWS_PER_UNIT,
    BodyBudget,
    BodyLimitMiddleware,
    RateLimiter,
    WorkMeter,
    WorkMiddleware,
    note_rows,
)


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


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_metered_client(clock: FakeClock) -> TestClient:
    """An app whose `/scan?rows=N` route is paid by the `X-Key` header's key and scans N rows."""

    async def scan(request: Request) -> Response:
        request.app.state.rate_limiter.take(request.headers["x-key"])
        meter = CURRENT_WORK.get()
        assert meter is not None
        meter.key = request.headers["x-key"]
        note_rows(int(request.query_params["rows"]))
        return Response("scanned")

    app = FastAPI()
    app.add_route("/scan", scan)
    app.state.rate_limiter = RateLimiter(rate=10, burst=20, clock=clock)
    app.add_middleware(WorkMiddleware)
    install_error_handlers(app)
    return TestClient(app)


def test_a_key_pays_for_the_rows_it_scanned_and_waits_in_debt_while_others_are_served():
    clock = FakeClock()
    client = make_metered_client(clock)
    assert client.get("/scan", params={"rows": 500}, headers={"x-key": "token:big"}).status_code == 200
    refused = client.get("/scan", params={"rows": 0}, headers={"x-key": "token:big"})
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) == 4, "1 + 50 units spent of a burst of 20, refilled at 10/s"
    cheap = [client.get("/scan", params={"rows": 9}, headers={"x-key": "token:small"}) for _ in range(21)]
    assert [r.status_code for r in cheap] == [200] * 20 + [429], "9 rows cost no unit beyond the request"
    clock.now += 4
    assert client.get("/scan", params={"rows": 0}, headers={"x-key": "token:big"}).status_code == 200


def test_the_meter_counts_rows_request_and_answer_bytes_and_signatures_in_units():
    meter = WorkMeter(rows=ROWS_PER_UNIT * 3 + 1, answer_bytes=ANSWER_BYTES_PER_UNIT * 2, signatures=5)
    meter.request_bytes = REQUEST_BYTES_PER_UNIT * 7 - 1
    assert meter.units() == 3 + 2 + 5 + 6
