"""Schemathesis over the node's own OpenAPI: requests generated from every route's schema, valid and not,
valid (`valid`) and off the schema (`invalid`), sent to a real node process; no answer may be a 5xx.

`make test` runs a short pass (`OMS_FUZZ_EXAMPLES`, 8 examples per route); `make fuzz` runs the same test
with 1,000 examples per route. Hypothesis prints the request that failed, so a finding is reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from devnet.network import Devnet

pytestmark = [pytest.mark.e2e]

EXAMPLES = int(os.environ.get("OMS_FUZZ_EXAMPLES", "8"))
"""Requests generated per route."""


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    devnet = Devnet.create(tmp_path_factory.mktemp("openapi") / "net", 1)
    devnet.start_all()
    try:
        devnet.wait_until_up()
        yield devnet.nodes[0].url
    finally:
        devnet.stop_all()


@pytest.fixture(scope="module")
def api_schema(node_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{node_url}/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_generated_request_gets_a_server_error(api_schema: schemathesis.BaseSchema, mode: GenerationMode) -> None:
    routes = sum(1 for _ in api_schema.get_all_operations())

    @given(case=api_schema.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES * routes,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error], timeout=30)

    call()
