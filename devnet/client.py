"""A small HTTP client for a node: sign and submit txs, wait for commits, read and write the API.

Used by the CLI (`omsnode tx`, `omsnode order`, ..., `devnet load`, `devnet
demo`) and by the end-to-end tests, so they all talk to nodes exactly as an
integrator would. Typed reads check each answer against the API's own models
(`node.api.models`), so the client and the OpenAPI document one shape.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from ledger.encoding import encode
from ledger.keys import PrivateKey
from ledger.tx import Tx, make_tx
from node.api.models import Page, Paged, WriteResult

Model = TypeVar("Model", bound=BaseModel)
AnyPage = TypeVar("AnyPage", bound=Page[Any])
AnyPaged = TypeVar("AnyPaged", bound=Paged)


class NodeError(Exception):
    """A node answered with an error body."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.code: str | None = body.get("error") if isinstance(body, dict) else None
        """The node's machine-readable error code (`not_found`, `unauthorized`, ...), if it sent one."""
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"HTTP {status}{f' {self.code}' if self.code else ''}: {message}")


WINDOW_REFRESH_S = 5.0
"""How long a client reuses the `valid_until` a node suggested before it asks again."""


class Signer:
    """Signs txs for the client identities whose key files are in one folder (`<id>.key`).

    Each tx gets the `valid_until` that `valid_until()` answers, typically `NodeClient.tx_valid_until`:
    the node's head height plus its default window."""

    def __init__(self, chain_id: str, keys_dir: Path, valid_until: Callable[[], int]) -> None:
        self.chain_id = chain_id
        self.keys_dir = keys_dir
        self.valid_until = valid_until
        self._keys: dict[str, PrivateKey] = {}
        self._nonce = itertools.count(time.time_ns())

    def key(self, signer: str) -> PrivateKey:
        if signer not in self._keys:
            path = self.keys_dir / f"{signer}.key"
            if not path.exists():
                raise FileNotFoundError(f"no key for {signer!r} ({path} does not exist)")
            self._keys[signer] = PrivateKey.load(path)
        return self._keys[signer]

    def tx(self, signer: str, kind: str, payload: dict[str, Any]) -> Tx:
        return make_tx(
            self.chain_id, kind, signer, next(self._nonce), payload, self.key(signer), valid_until=self.valid_until()
        )


class NodeClient:
    """Talks to one node's HTTP API."""

    def __init__(self, url: str, timeout: float | httpx.Timeout = 10.0, token: str | None = None) -> None:
        """`token`: an API token, sent as `Authorization: Bearer` on every request."""
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self._window: tuple[float, int] | None = None
        """(when it was asked, the node's suggested `valid_until`)."""

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.http.get(path, params=params)
        if response.status_code >= 400:
            raise NodeError(response.status_code, _body(response))
        return response.json()

    def read(self, path: str, model: type[Model], params: dict[str, Any] | None = None) -> Model:
        """GET `path`, checked against the route's response model."""
        return model.model_validate(self.get(path, params))

    def ask(
        self,
        path: str,
        model: type[Model],
        content: bytes,
        content_type: str,
        params: dict[str, Any] | None = None,
    ) -> Model:
        """POST a question that is not a tx (a reconciliation), its answer checked against the route's model."""
        response = self.http.post(path, content=content, params=params, headers={"content-type": content_type})
        if response.status_code >= 400:
            raise NodeError(response.status_code, _body(response))
        return model.model_validate(response.json())

    def call(self, method: str, path: str, model: type[Model], body: dict[str, Any] | None = None) -> Model:
        """Any other request with a JSON body (or none), its answer checked against the route's model."""
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise NodeError(response.status_code, _body(response))
        return model.model_validate(response.json())

    def pages(self, path: str, model: type[AnyPaged], params: dict[str, Any] | None = None) -> Iterator[AnyPaged]:
        """The pages of a list (or of any answer that goes on in pages) from `params["cursor"]` (or the start) on,
        each read when the previous is used."""
        params = dict(params or {})
        while True:
            page = self.read(path, model, params)
            yield page
            if page.next_cursor is None:
                return
            params["cursor"] = page.next_cursor

    def get_all(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Every item of a list, page after page."""
        return [item for page in self.pages(path, Page[Any], params) for item in page.items]

    def write(
        self, path: str, body: dict[str, Any] | None, idempotency_key: str | None = None, wait: bool = True
    ) -> WriteResult:
        """POST to a write route (the node signs the tx as the token's identity); with `wait`, the answer
        comes once the tx is committed, or still pending after the node's longest wait."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        params = {"wait": "commit"} if wait else {}
        response = self.http.post(path, json=body, params=params, headers=headers)
        if response.status_code >= 400:
            raise NodeError(response.status_code, _body(response))
        return WriteResult.model_validate(response.json())

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/status")
        return result

    def tx_valid_until(self) -> int:
        """The node's suggested `valid_until` for a tx signed now, asked again every `WINDOW_REFRESH_S`."""
        now = time.monotonic()
        if self._window is None or now - self._window[0] > WINDOW_REFRESH_S:
            self._window = (now, self.status()["tx_valid_until"])
        return self._window[1]

    def submit(self, tx: Tx, attempts: int = 5) -> str:
        """POST one tx; returns its id (hex). A refusal with `Retry-After` (a full mempool, a quota) is
        retried after that wait, `attempts` times in all."""
        wire = tx.to_wire()
        wire["signature"] = tx.signature.hex()
        for _ in range(attempts - 1):
            response = self.http.post("/v1/tx", json=wire)
            if "retry-after" not in response.headers:
                break
            time.sleep(float(response.headers["retry-after"]))
        else:
            response = self.http.post("/v1/tx", json=wire)
        if response.status_code != 202:
            raise NodeError(response.status_code, _body(response))
        tx_id: str = response.json()["tx_id"]
        return tx_id

    def submit_many(self, txs: Iterable[Tx]) -> list[dict[str, Any]]:
        """POST a batch as msgpack; one verdict per tx."""
        return self.submit_batch(list(txs))[0]

    def submit_batch(self, txs: list[Tx]) -> tuple[list[dict[str, Any]], float | None]:
        """POST a batch as msgpack: one verdict per tx, and the `Retry-After` (seconds) if some were refused for
        want of room (`mempool_full`, `signer_over_quota`): those should be sent again after it."""
        body = encode([tx.to_wire() for tx in txs])
        response = self.http.post("/v1/txs", content=body, headers={"content-type": "application/msgpack"})
        if response.status_code != 202:
            raise NodeError(response.status_code, _body(response))
        retry_after = response.headers.get("retry-after")
        return response.json(), None if retry_after is None else float(retry_after)

    def wait(self, tx_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the tx is committed or rejected; returns its status with the receipt."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.http.get(f"/v1/tx/{tx_id}")
            if response.status_code == 200:
                status: dict[str, Any] = response.json()
                if status["status"] != "pending":
                    return status
            elif response.status_code != 404:
                raise NodeError(response.status_code, _body(response))
            if time.monotonic() > deadline:
                raise TimeoutError(f"tx {tx_id} not committed within {timeout} s")
            time.sleep(0.05)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
