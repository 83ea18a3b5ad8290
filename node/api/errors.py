"""How expected failures become HTTP answers: a 4xx with a JSON body saying what is wrong.

Every body has `error` (a machine-readable code) and `message` (for people).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledger.errors import LedgerError
from node.mempool import MempoolFull


class NotFound(LedgerError):
    """A resource that does not exist."""

    code = "not_found"


def error_body(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, MempoolFull):
            status = 503
        else:
            status = 400
        return JSONResponse(error_body(exc.code, str(exc)), status_code=status)
