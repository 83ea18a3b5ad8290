"""The OpenAPI of a node shows the stored records as their declared types: every `status` an enum of exactly the
values its record type's `Literal` allows, and lines, events and fulfilments typed objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from fastapi.testclient import TestClient

from contracts import records
from contracts.governance import ProposalStatus
from contracts.records import CountStatus, FulfilmentStatus, OrderStatus, ReturnStatus, TransferStatus
from node.api.app import create_app
from node.api.models import ImportState, TxState, WriteState
from node.api.records import derive_model

STATUS_TYPES: dict[str, Any] = {
    "Order": OrderStatus,
    "OrderSummary": OrderStatus,
    "OrderHistory": OrderStatus,
    "FlaggedOrder": OrderStatus,
    "Fulfilment": FulfilmentStatus,
    "FulfilmentEvent": FulfilmentStatus,
    "Return": ReturnStatus,
    "Transfer": TransferStatus,
    "TransferEvent": TransferStatus,
    "CountReport": CountStatus,
    "TxStatus": TxState,
    "TxAccepted": TxState,
    "ImportItem": ImportState,
    "WriteResult": WriteState,
    "Proposal": ProposalStatus,
}
"""The declared type of the `status` of each schema (a generic one by its name before `_`)."""


def read_openapi(tmp_path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = TestClient(create_app(tmp_path)).get("/openapi.json").json()
    return schema


def test_every_status_is_an_enum_of_its_record_types_values(tmp_path: Path) -> None:
    schemas = read_openapi(tmp_path)["components"]["schemas"]
    seen = set()
    for name, schema in schemas.items():
        status = schema.get("properties", {}).get("status")
        if status is None:
            continue
        declared = STATUS_TYPES.get(name, STATUS_TYPES.get(name.split("_")[0]))
        assert declared is not None, f"{name}.status is {status}, of no declared type"
        assert status.get("type") == "string" and status.get("enum") == list(get_args(declared)), (name, status)
        seen.add(name)
    assert {"Order", "Fulfilment", "Return", "Transfer", "CountReport", "OrderSummary", "TxStatus"} <= seen


def test_lines_events_and_fulfilments_are_typed(tmp_path: Path) -> None:
    schemas = read_openapi(tmp_path)["components"]["schemas"]

    def item_of(schema: str, field: str) -> str:
        ref: str = schemas[schema]["properties"][field]["items"]["$ref"]
        return ref.rsplit("/", 1)[1]

    assert item_of("Order", "lines") == "OrderLine"
    assert item_of("Order", "fulfilments") == "Fulfilment"
    assert item_of("Order", "history") == "HistoryEntry"
    assert item_of("Fulfilment", "lines") == "FulfilmentLine"
    assert item_of("Fulfilment", "events") == "FulfilmentEvent"
    assert item_of("Invoice", "lines") == "PricedLine"
    assert item_of("Return", "lines") == "ReturnLine"
    assert item_of("Transfer", "lines") == "TransferLine"
    assert schemas["HistoryEntry"]["properties"]["from"]["anyOf"][0]["enum"] == list(get_args(OrderStatus))
    assert schemas["FulfilmentEvent"]["properties"]["tx_id"]["anyOf"][0]["type"] == "string"


def test_a_derived_model_reads_the_json_form_and_keeps_keyword_keys_and_new_fields() -> None:
    transfer = derive_model(records.Transfer)
    wire = {
        "transfer_id": "T1",
        "from": "WH1",
        "to": "ST1",
        "document": "D",
        "lines": [{"sku": "TEE", "qty": 1, "lot": ""}],
        "status": "in_transit",
        "events": [{"status": "in_transit", "by": "store-1", "tx_id": "ab" * 32, "height": 3}],
        "added_later": 1,
    }
    assert transfer.model_validate(wire).model_dump(mode="json", exclude_none=True) == wire
