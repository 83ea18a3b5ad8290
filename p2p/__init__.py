"""The p2p layer: moving bytes between nodes.

- `p2p.envelope`: signed envelopes and the `EnvelopeGate` that checks them on arrival;
- `p2p.windows`: the gate's replay windows kept in the node's home across restarts;
- `p2p.inbox`: frames (one POST = a batch of envelopes) and dispatch to handlers by kind;
- `p2p.transport`: the `Transport` interface and `HttpTransport`;
- `p2p.memory`: the seeded in-memory network for tests; `p2p.conformance`: `check_transport`;
- `p2p.peers`: the `PeerTable` behind `GET /v1/peers`;
- `p2p.gossip`: tx gossip; `p2p.sync`: block sync; `p2p.snapshot`: state sync.

The wire protocol is written down in docs/spec/p2p.md.
"""
