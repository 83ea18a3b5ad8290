"""Fault scenarios on a devnet of real node processes, and the checker that reads only their public API.

`omsnode devnet chaos --scenario NAME` plays one scenario (`scenarios`) on
a 4-node devnet under order load (`load`): the scenario injects its fault
and heals it on a `stage`, the runner (`runner`) measures commits during the
fault, the time to resume and the view changes, and the checker
(`invariants`) reports every violation: a fork, an acknowledged tx lost or
reported differently, stock that does not add up, nodes with different
states, a chain that does not verify, an honest node that never votes again.
"""
