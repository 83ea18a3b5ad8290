"""Customer references as the ledger knows them: keyed hashes that only their organisation can recompute.

A plain SHA-256 of a name, an e-mail or a shop's customer number is reversed
by hashing a dictionary of candidates. So an organisation keeps a secret
(`CUSTOMER_KEY_ENV` by default, at least `MIN_KEY_BYTES` bytes), and the
ledger's `customer_hash` of a reference is HMAC-SHA256 under it, in hex: the
same customer hashes alike across the organisation's orders (review rules and
block lists still match), and nobody without the secret can test a guess.
"""

from __future__ import annotations

import hashlib
import hmac

CUSTOMER_KEY_ENV = "OMS_CUSTOMER_KEY"
"""The environment variable that holds an organisation's customer key unless a config names another."""

MIN_KEY_BYTES = 16
"""Shortest customer key accepted."""


def hash_customer(key: bytes, reference: str) -> str:
    """The ledger's `customer_hash` of a customer reference: HMAC-SHA256 under the organisation's key, hex."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a customer key has at least {MIN_KEY_BYTES} bytes")
    return hmac.new(key, reference.encode(), hashlib.sha256).hexdigest()
