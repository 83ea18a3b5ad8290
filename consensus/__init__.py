"""PBFT consensus as a pure state machine.

A `Replica` takes events (a peer's message, a timer firing, a batch offered by
the mempool, blocks applied by sync) and returns actions (send, broadcast,
persist, decide, set or cancel a timer, request sync). It knows no socket,
clock, thread or disk: the node drives it, and the simulator in `tests/sim`
drives many of them in one process. See docs/spec/consensus.md.
"""
