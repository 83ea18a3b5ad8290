"""The node's HTTP API (FastAPI): versioned routes under `/v1`, node-to-node routes under `/p2p`."""
