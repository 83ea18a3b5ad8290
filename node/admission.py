"""Admission: the one place a tx is checked before it may enter a block.

A tx is checked once per node, when it first arrives (from a client or by
gossip): within its validity window for the next block, not already
committed (these two first, as they cost no signature check), chain id,
known kind, a payload that fits the kind's declared spec (no field outside it:
so a payload the contracts would refuse, and whatever unplanned data it
carries, never lies in a block), a signer of the membership in force (`ledger.membership`, read
from the committed state) holding a role allowed for the kind, and a valid
signature (by the replay records of the world state, which every
node holds alike, including one that joined by state sync). Its id and signature then
go into a bounded map of verified txs, so the same signed tx in a proposal is
not verified again; a copy with the same id and any other signature bytes is
verified like a new tx (and refused unless it verifies too). Execution never
re-verifies: the tx root under the certified header covers every signature.

Anyone can post well-formed txs that name a real signer with junk signature
bytes, and each costs a signature check. So a tx from a client address is
checked only while that address has failed checks left to spend
(`SourceBudget`, the same token bucket as the `/p2p` inbox's): each failed
check spends one, and a spent address is refused with
`SignatureChecksExhausted` (429, `Retry-After`) before any check, until its
budget refills. Txs gossiped by a peer are charged to that peer the same way
(the source `peer <id>`); proposals carry no source and are not budgeted here.
A signature that failed is remembered (by tx id and signature bytes, bounded),
so the same junk sent again is refused at no cost.
"""

from __future__ import annotations

from collections import OrderedDict

from contracts import ContractSet
from ledger.errors import InvalidSignature, InvalidTransaction, LedgerError, UnknownSigner
from ledger.genesis import Genesis, Identity
from ledger.membership import MEMBERSHIP_KEY, decode_membership
from ledger.replay import verify_fresh
from ledger.store import Store
from ledger.tx import Tx
from p2p.inbox import SourceBudget

VERIFIED_CACHE = 200_000
"""How many verified tx ids a node remembers."""

FAILED_CACHE = 65_536
"""How many failed signatures (tx id and signature bytes) a node remembers."""


class SignatureChecksExhausted(LedgerError):
    """The client's address has spent its budget of failed signature checks; it may send again shortly."""

    code = "signature_checks_exhausted"
    http_status = 429
    retry_after_s = 1


class Admission:
    """Checks txs against the membership in force and the contracts' role table."""

    def __init__(
        self, genesis: Genesis, contracts: ContractSet, store: Store, budget: SourceBudget | None = None
    ) -> None:
        self.genesis = genesis
        self.contracts = contracts
        self.store = store
        self.budget = budget if budget is not None else SourceBudget()
        """Failed signature checks each client address may still cost."""
        self._verified: OrderedDict[bytes, bytes] = OrderedDict()
        """Tx id -> the signature verified for it."""
        self._failed: OrderedDict[bytes, None] = OrderedDict()
        """Tx id and signature bytes of the signatures that failed, oldest first."""
        self.signature_checks = 0
        """Signatures checked so far (a tx found among the verified or the failed costs none)."""

    def check(self, tx: Tx, source: str | None = None) -> None:
        """Raise a `LedgerError` saying what is wrong, or return if `tx` (from the client address `source`,
        None for a peer's) may enter a block."""
        verify_fresh(self.store.get_state, tx, self.store.height + 1)
        self.verify(tx, source)

    def verify(self, tx: Tx, source: str | None = None) -> None:
        """Membership, role and signature, checked once per signed tx (window and replay are the caller's);
        a failed check is charged to `source`."""
        if self._verified.get(tx.id) != tx.signature:
            identity = self.check_membership(tx)
            if source is not None and not self.budget.allows(source):
                raise SignatureChecksExhausted(f"{source} sent too many txs whose signature failed; retry shortly")
            failed = tx.id + tx.signature
            try:
                if failed in self._failed:
                    raise InvalidSignature("signature does not verify (failed before)")
                self.signature_checks += 1
                tx.verify_signature(identity.public_key)
            except InvalidSignature:
                if source is not None:
                    self.budget.charge(source)
                self._remember_failed(failed)
                raise
            self._remember(tx)

    def check_membership(self, tx: Tx) -> Identity:
        """Chain, kind, role and payload checks (no signature); returns the signer's identity."""
        if tx.chain_id != self.genesis.chain_id:
            raise InvalidTransaction(f"tx is for chain {tx.chain_id!r}, this is {self.genesis.chain_id!r}")
        roles = self.contracts.required_roles(tx.kind)
        if roles is None:
            raise InvalidTransaction(f"unknown tx kind {tx.kind!r}")
        membership = decode_membership(self.store.get_state(MEMBERSHIP_KEY.encode()), self.genesis)
        identity = membership.identity(tx.signer, self.store.height + 1)
        if identity is None:
            raise UnknownSigner(f"signer {tx.signer!r} is not a member of this network")
        if not identity.roles & roles:
            raise InvalidTransaction(
                f"signer {tx.signer!r} (roles {sorted(identity.roles)}) may not send {tx.kind!r};"
                f" it needs one of {sorted(roles)}"
            )
        self.contracts.check_payload(tx.kind, tx.payload)
        return identity

    def _remember_failed(self, failed: bytes) -> None:
        self._failed[failed] = None
        self._failed.move_to_end(failed)
        if len(self._failed) > FAILED_CACHE:
            self._failed.popitem(last=False)

    def _remember(self, tx: Tx) -> None:
        self._verified[tx.id] = tx.signature
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
