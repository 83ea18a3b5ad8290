"""How failures become HTTP answers: a status from the error's class and a JSON body saying what is wrong.

Every error answer, whichever layer refuses the request (a ledger check, a
route's parameter validation, routing itself, the body limit), has the same
body: `error` (a machine-readable code) and `message` (for people). The
status comes from the class of the `LedgerError` (`http_status`); FastAPI's
own validation errors are `invalid_request` (422), with `fields`: each part
of the request that does not fit (`path`, `problem`). A refusal that time may
cure (a full mempool, a signer at its quota) also says how long to wait, in
the `Retry-After` header. Anything else is a bug:
it answers 500 `internal_error` and tells the client nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ledger.errors import LedgerError


class NotFound(LedgerError):
    """A resource that does not exist."""

    code = "not_found"
    http_status = 404


class Problem(TypedDict):
    """One part of a request that does not fit its route."""

    path: str
    """Where: `query.status`, `body.lines.0.qty`, `header.idempotency-key`."""
    problem: str
    """What is wrong with it."""


class InvalidRequest(LedgerError):
    """A request whose parameters or body do not have the declared shape and types (422); `fields` names each
    part that does not fit (by default the one part `at`, with the message as its problem)."""

    code = "invalid_request"
    http_status = 422

    def __init__(self, message: str, at: str = "body", fields: Sequence[Problem] | None = None) -> None:
        super().__init__(message)
        self.fields = [Problem(path=at, problem=message)] if fields is None else list(fields)

    @property
    def details(self) -> dict[str, Any]:
        return {"fields": self.fields}


class CursorBeforeFeed(LedgerError):
    """A feed cursor older than the first event this node holds (it joined by state sync: its feed starts
    after its snapshot); `first_cursor` is where it can answer from."""

    code = "cursor_before_feed"
    http_status = 410

    def __init__(self, message: str, first_cursor: int) -> None:
        super().__init__(message)
        self.first_cursor = first_cursor

    @property
    def details(self) -> dict[str, Any]:
        return {"first_cursor": str(self.first_cursor)}


class TooManyTxs(InvalidRequest):
    """A batch of more txs than one request may carry."""

    code = "too_many_txs"


class Unauthorized(LedgerError):
    """A request that needs a token and carries none, or one the node does not know."""

    code = "unauthorized"
    http_status = 401
    headers: ClassVar[dict[str, str]] = {"www-authenticate": "Bearer"}


class Forbidden(LedgerError):
    """A token whose scopes or identity's roles do not allow the request."""

    code = "forbidden"
    http_status = 403


class IdempotencyConflict(LedgerError):
    """A request whose `Idempotency-Key` was used with another request (on this node or, as the ledger
    records, on any)."""

    code = "idempotency_conflict"
    http_status = 409


class RateLimited(LedgerError):
    """A token or address that spent more work than its rate allows; `Retry-After` says when to try again."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.headers: dict[str, str] = {}
        """The `RateLimit` headers of the refusal."""


class BodyTooLarge(LedgerError):
    """A request body over the route's limit (refused before it is read whole)."""

    code = "body_too_large"
    http_status = 413


class ServerBusy(LedgerError):
    """The node holds as many request bodies as it may at once; the request may succeed shortly."""

    code = "server_busy"
    http_status = 503
    retry_after_s = 1


def error_body(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


def error_response(exc: LedgerError) -> JSONResponse:
    """The answer to `exc`: its class's status, the error body (with the `details` its class adds, such as
    `fields`), the headers its class adds, and `Retry-After` if time may cure it."""
    headers: dict[str, str] = dict(getattr(exc, "headers", {}))
    if exc.retry_after_s is not None:
        headers["retry-after"] = str(exc.retry_after_s)
    body: dict[str, Any] = {**error_body(exc.code, str(exc)), **getattr(exc, "details", {})}
    return JSONResponse(body, status_code=exc.http_status, headers=headers or None)


def list_problems(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[Problem]:
    """Each field that failed pydantic's validation (its path below `prefix`), and why."""
    return [
        Problem(path=".".join(str(part) for part in (*prefix, *error["loc"])), problem=error["msg"]) for error in errors
    ]


def describe_validation(errors: Sequence[Any]) -> str:
    """One line naming each field that failed pydantic's validation and why."""
    parts = [f"{problem['path']}: {problem['problem']}" for problem in list_problems(errors)]
    return "; ".join(parts) or "request does not match the route"


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
"""Codes of the statuses that routing itself answers."""


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidRequest(describe_validation(exc.errors()), fields=list_problems(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body FastAPI could not parse
            return error_response(InvalidRequest(str(exc.detail)))
        code = _HTTP_CODES.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "internal_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the server still logs the traceback: Starlette re-raises after this answer
        return JSONResponse(error_body("internal_error", "internal error"), status_code=500)
