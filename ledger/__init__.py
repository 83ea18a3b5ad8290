"""Data formats and storage of the ledger: encoding, keys, txs, blocks, Merkle trees, genesis, state and the store."""
