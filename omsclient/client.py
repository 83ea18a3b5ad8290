"""An integrator's client of one node's HTTP API: requests with retries that never act twice, lists, the feed, txs.

`Client.request` is the one way out. It sends the token as `Authorization:
Bearer`, and sends a request again (up to `retries` times) when the node
could not take it: a connection error or timeout, 429 or 503 (after the
node's `Retry-After`, capped at `MAX_RETRY_AFTER_S`), or another 5xx (after
a growing pause). A retry must never act twice, so only a request of an
idempotent method (`GET`, ...) is sent again as it is; a `POST` only when it
carries an `Idempotency-Key` (the node answers the first result for the same
key and body), or when it carries signed txs, whose ids make them their own
idempotency keys. Any other error answer raises
`NodeError` with the node's `{"error", "message"}`.

Built on the API alone (no node code): what it reads are the JSON answers
the OpenAPI at `/docs` documents, as plain dicts.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ledger.encoding import encode
from omsclient.signing import tx_id, tx_to_wire

MAX_RETRY_AFTER_S = 30.0
"""Longest a client waits on a node's `Retry-After` before it sends again."""

BACKOFF_S = 0.25
"""First pause before sending again after a failure that came without `Retry-After`; it doubles each time."""

MAX_BACKOFF_S = 8.0
"""Longest pause between two sends after failures without `Retry-After`."""

COMMIT_WAIT_S = 30.0
"""Longest the node holds a `wait=commit` answer: such a request may take this much longer than others."""

WINDOW_REFRESH_S = 5.0
"""How long `valid_until` reuses the window the node suggested before it asks again."""

BATCH = 1000
"""Txs `submit_many` sends in one request (the node takes at most 5,000)."""

POLL_S = (0.05, 0.5)
"""`wait_tx` polls first after the shorter pause, growing to the longer."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods whose request, sent twice, acts as once (RFC 9110): sent again without an idempotency key."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers after which a request that may be sent again is sent again."""

ROOM_ERRORS = frozenset({"mempool_full", "signer_over_quota"})
"""Verdicts of `POST /v1/txs` that refuse a tx for want of room, for now: send it again after `Retry-After`."""

FINAL_TX_STATUSES = frozenset({"committed", "rejected", "dropped"})
"""What `GET /v1/tx/{id}` answers once a tx will not change any more on that node."""


class NodeError(Exception):
    """A node answered with an error: `status` (HTTP), `code` (the body's `error`), `message`, and the `body`."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        """HTTP status of the answer."""
        self.body = body
        """The answer's body: its JSON, or its text if it was not JSON."""
        self.code: str | None = body.get("error") if isinstance(body, dict) else None
        """The node's machine-readable error code (`not_found`, `unauthorized`, `conflict`, ...), if it sent one."""
        self.message: str = str(body.get("message", "")) if isinstance(body, dict) else str(body)
        """What the node said was wrong."""
        super().__init__(f"HTTP {status}{f' {self.code}' if self.code else ''}: {self.message}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta seconds or an HTTP date), capped at `MAX_RETRY_AFTER_S`;
    None when there is none or it cannot be read."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff(attempt: int) -> float:
    """Pause before send number `attempt + 1` (from 0) after a failure without `Retry-After`: doubling, jittered."""
    return min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt) * random.uniform(0.5, 1.0)


class Client:
    """Talks to one node's HTTP API; `close` it (or use it in a `with`) when done."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """`token`: an API token (`omsnode token create`); `timeout`: seconds for one request (a `wait=commit`
        or a long-poll gets its wait on top); `retries`: how many times a request may be sent again; `verify`:
        how an HTTPS node's certificate is checked (an `ssl.SSLContext` that trusts the network's authority)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=headers, transport=transport, verify=verify
        )
        self._window: tuple[float, int] | None = None
        """(when it was asked, the node's suggested `valid_until`)."""
        self._chain_id: str | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait: str | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Send a request and return its parsed JSON answer (None if it has no body), retried as the module says.

        `json`: the body, as JSON; or `content` (bytes) of `content_type` (a CSV, say). `idempotency_key`: sent as
        `Idempotency-Key` (and makes a `POST` safe to send again); `wait="commit"`: the node answers once the
        write is committed (or after its longest wait, still pending). None parameters are left out."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key is not None else {}
        if content_type is not None:
            headers["content-type"] = content_type
        query = _present(params or {})
        if wait is not None:
            query["wait"] = wait
        safe = method.upper() in IDEMPOTENT_METHODS or idempotency_key is not None
        extra = COMMIT_WAIT_S if wait is not None else 0.0
        response = self._send(
            method, path, safe=safe, extra_s=extra, json=json, content=content, params=query, headers=headers
        )
        return _json(response)

    def _send(self, method: str, path: str, *, safe: bool, extra_s: float = 0.0, **kwargs: Any) -> httpx.Response:
        """One request, sent again after what the module lists while `safe` and retries are left; an error
        answer raises `NodeError`, a transport failure its `httpx.TransportError`."""
        timeout = self.timeout + extra_s
        attempt = 0
        while True:
            try:
                response = self.http.request(method, path, timeout=timeout, **kwargs)
            except httpx.TransportError:
                if not safe or attempt >= self.retries:
                    raise
                time.sleep(backoff(attempt))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            if not safe or attempt >= self.retries or response.status_code not in RETRY_STATUSES:
                raise NodeError(response.status_code, _body(response))
            pause = parse_retry_after(response.headers.get("retry-after"))
            time.sleep(backoff(attempt) if pause is None else pause)
            attempt += 1

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with `params` (None values left out); the parsed JSON answer."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any, *, idempotency_key: str | None = None, wait: str | None = None) -> Any:
        """POST `body` as JSON to `path`; sent again on failure only with an `idempotency_key`."""
        return self.request("POST", path, json=body, idempotency_key=idempotency_key, wait=wait)

    def pages(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list (`{"items", "next_cursor"}`), page after page, from `cursor` (or the start) on;
        each page is read when the previous one is used up."""
        while True:
            page = self.get(path, **params)
            yield from page["items"]
            if page.get("next_cursor") is None:
                return
            params["cursor"] = page["next_cursor"]

    def follow(
        self, after: int | str = 0, types: Sequence[str] | None = None, wait: int = 30
    ) -> Iterator[dict[str, Any]]:
        """Every event of the change feed after cursor `after`, in commit order, and then each new one as it
        comes (long-polls of `wait` seconds), until the caller stops. Each event carries the `cursor` to resume
        after it."""
        cursor = str(after)
        while True:
            page = self.events(cursor, types=types, wait=wait)
            for event in page["items"]:
                yield event
                cursor = event["cursor"]
            cursor = page["next_cursor"]

    def events(
        self, after: int | str = 0, *, types: Sequence[str] | None = None, limit: int | None = None, wait: int = 0
    ) -> dict[str, Any]:
        """One answer of `GET /v1/events`: `{"items", "next_cursor"}`, the events after cursor `after` (`limit`
        at most), waiting up to `wait` seconds for one when there is none yet."""
        params = {"after": str(after), "types": ",".join(types) if types else None, "limit": limit, "wait": wait}
        response = self._send("GET", "/v1/events", safe=True, extra_s=wait, params=_present(params))
        page: dict[str, Any] = response.json()
        return page

    # -- the node and its txs ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """`GET /v1/status`: height, head, view, primary, `chain_id`, and the suggested `tx_valid_until`."""
        status: dict[str, Any] = self.get("/v1/status")
        return status

    def chain_id(self) -> str:
        """The node's chain id (asked once)."""
        if self._chain_id is None:
            self._chain_id = str(self.status()["chain_id"])
        return self._chain_id

    def valid_until(self) -> int:
        """The node's suggested `valid_until` for a tx signed now, asked again every `WINDOW_REFRESH_S`."""
        now = time.monotonic()
        if self._window is None or now - self._window[0] > WINDOW_REFRESH_S:
            self._window = (now, int(self.status()["tx_valid_until"]))
        return self._window[1]

    def submit(self, tx: Mapping[str, Any]) -> str:
        """`POST /v1/tx` a signed tx in JSON form (`Signer.sign`); returns its id. Sent again on failure: the
        same tx committed before the answer came back (`duplicate_transaction`) counts as taken."""
        try:
            response = self._send("POST", "/v1/tx", safe=True, json=dict(tx))
        except NodeError as exc:
            if exc.code == "duplicate_transaction":
                return tx_id(tx)
            raise
        accepted: str = response.json()["tx_id"]
        return accepted

    def post_txs(self, txs: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], float | None]:
        """One `POST /v1/txs` of signed txs (JSON form, sent as msgpack): a verdict per tx (`tx_id`, `accepted`,
        `error`, `message`), and the `Retry-After` (seconds) when some were refused for want of room."""
        body = encode([tx_to_wire(tx) for tx in txs])
        response = self._send(
            "POST", "/v1/txs", safe=True, content=body, headers={"content-type": "application/msgpack"}
        )
        verdicts: list[dict[str, Any]] = response.json()
        return verdicts, parse_retry_after(response.headers.get("retry-after"))

    def submit_many(self, txs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Submit signed txs, `BATCH` a request; a tx refused for want of room is sent again after the node's
        `Retry-After` (up to `retries` times). Returns the last verdict of each tx, in order."""
        pending = list(txs)
        verdicts: list[dict[str, Any]] = []
        for start in range(0, len(pending), BATCH):
            verdicts.extend(self._submit_batch(pending[start : start + BATCH]))
        return verdicts

    def _submit_batch(self, txs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        verdicts, retry_after = self.post_txs(txs)
        for attempt in range(self.retries):
            again = [i for i, verdict in enumerate(verdicts) if verdict.get("error") in ROOM_ERRORS]
            if not again:
                break
            time.sleep(backoff(attempt) if retry_after is None else retry_after)
            answers, retry_after = self.post_txs([txs[i] for i in again])
            for i, verdict in zip(again, answers, strict=True):
                verdicts[i] = verdict
        return verdicts

    def wait_tx(self, tx_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll `GET /v1/tx/{tx_id}` until the tx is committed, rejected or dropped; returns that status (with
        the receipt once committed). A tx this node does not know yet (404) may still be on its way: polled
        too. `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        pause = POLL_S[0]
        while True:
            try:
                status: dict[str, Any] = self.get(f"/v1/tx/{tx_id}")
                if status["status"] in FINAL_TX_STATUSES:
                    return status
            except NodeError as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() + pause > deadline:
                raise TimeoutError(f"tx {tx_id} not committed within {timeout:g} s")
            time.sleep(pause)
            pause = min(POLL_S[1], pause * 2)


def _present(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
