"""Admission verifies the bytes it received, always: a known tx id never vouches for another signature."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from contracts import load_contracts
from ledger.errors import LedgerError
from ledger.store import Store
from node.admission import Admission
from tests.helpers.builders import make_network


def test_a_copy_of_an_admitted_tx_with_another_signature_is_checked_and_refused(tmp_path: Path):
    network = make_network(4)
    store = Store(tmp_path / "data")
    admission = Admission(network.genesis, load_contracts(), store)
    tx = network.tx("operator-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "S", "qty": 1}]})
    admission.check(tx)
    admission.check(tx)
    for signature in (tx.signature[::-1], bytes(64)):
        with pytest.raises(LedgerError) as refused:
            admission.check(dataclasses.replace(tx, signature=signature))
        assert refused.value.code == "invalid_signature"
    store.close()
