"""Changing the validator set by governance during load: a validator added, another removed.

`reconfigure` makes the home of a fresh validator (its own key, in the
organisation of the replica it replaces, with that organisation's encryption
key), and the validators of three organisations propose and approve two
changes: add the newcomer, then remove the replica. A change of the validator
set takes effect right after the next checkpoint boundary (ADR 0010); the
newcomer is added first, so that no epoch between the two has fewer than
four validators, and the replica runs on until its removal took effect, so
that every epoch keeps a quorum of running validators.

Only member nodes may read the chain by p2p, so the newcomer's node starts
once the addition is executed; it follows the chain from genesis past the
approval and restarts as the validator it now is. The removed node is then
stopped and the newcomer takes its place in the devnet: the network is left
with four voting validators, as every other scenario expects.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from typing import Any

from devnet.chaos.stage import ScenarioError, Stage, wait_until
from devnet.network import Devnet, NodeInfo, free_ports
from ledger.keys import PrivateKey
from ledger.membership import compute_epoch_start
from ledger.personal import ENCRYPTION_KEY_FILE
from node.config import CLIENTS_DIR, GENESIS_FILE, KEY_FILE, NodeConfig
from node.tokens import TOKENS_FILE
from omsclient.signing import Signer

CHANGE_LIMIT_S = 300.0
"""Longest wait for a governance tx to commit, for the newcomer to catch up, or for an epoch to begin."""


def reconfigure(stage: Stage) -> None:
    """Add a fresh validator and remove a replica by governance, under load; the newcomer takes the replica's
    place, and the load goes on `seconds` with the new set."""
    victim = stage.replica()
    others = [node.index for node in stage.devnet.nodes if node.index != victim]
    leaving = NodeConfig.load(stage.devnet.node(victim).home)
    org = organisation_of(stage, leaving)
    newcomer = make_newcomer_home(stage.devnet, victim, org)
    key = PrivateKey.load(newcomer.home / KEY_FILE)
    ident = NodeConfig.load(newcomer.home).node_id
    stage.fault(f"propose and approve adding validator {ident} of {org} and removing {leaving.node_id}")
    params = {"id": ident, "org": org, "public_key": key.public.hex(), "address": newcomer.url}
    added = decide(stage, others, "validator.add", params)
    removed = decide(stage, others, "validator.remove", {"id": leaving.node_id})
    interval = stage.devnet.genesis.consensus.checkpoint_interval
    stage.note(f"{ident} votes from height {compute_epoch_start(added, interval)}")
    stage.note(f"{leaving.node_id} stops voting at height {compute_epoch_start(removed, interval)}")
    stage.start(newcomer.index)
    wait_until(lambda: height_of(stage, newcomer.index) >= added, CHANGE_LIMIT_S, f"{ident} to follow past {added}")
    stage.devnet.kill(newcomer.index)
    stage.start(newcomer.index)
    role = stage.devnet.client(newcomer.index).status()["role"]
    if role != "validator":
        raise ScenarioError(f"{ident} restarted as {role}, not as a validator, after its addition")
    start = compute_epoch_start(removed, interval)
    wait_until(lambda: stage.height() >= start, CHANGE_LIMIT_S, f"the epoch without {leaving.node_id} to begin")
    stage.devnet.stop(victim)
    stage.devnet.take_place(victim, newcomer.index)
    stage.note(f"stopped the removed node {victim}; {ident} is node {victim} now")
    stage.pause(stage.seconds)
    stage.heal(f"the network runs with {ident} in place of {leaving.node_id}")


def organisation_of(stage: Stage, config: NodeConfig) -> str:
    """The organisation that runs the node of `config`: its own setting, or the one genesis gives its validator."""
    if config.org:
        return config.org
    for validator in stage.devnet.genesis.validators:
        if validator.id == config.node_id:
            return validator.org
    raise ScenarioError(f"no organisation is known for node {config.node_id}")


def make_newcomer_home(devnet: Devnet, model: int, org: str) -> NodeInfo:
    """A home for a validator that genesis does not list, next to node `model`'s (whose organisation it
    joins): genesis, a new key, the organisation's encryption key, the devnet's clients and API token, and
    `model`'s settings with a new id, port and address. It joins the devnet as its last node."""
    source = devnet.node(model).home
    number = len(devnet.nodes)
    while (devnet.root / f"node-{number}").exists():
        number += 1
    ident = f"node-{number}"
    home = devnet.root / ident
    home.mkdir()
    for name in (GENESIS_FILE, TOKENS_FILE, ENCRYPTION_KEY_FILE):
        shutil.copy2(source / name, home / name)
    shutil.copytree(source / CLIENTS_DIR, home / CLIENTS_DIR)
    PrivateKey.generate().save(home / KEY_FILE)
    (port,) = free_ports(1)
    replace(NodeConfig.load(source), node_id=ident, org=org, port=port, advertise=f"127.0.0.1:{port}").save(home)
    return devnet.add_node(home, port)


def decide(stage: Stage, voters: list[int], action: str, params: dict[str, Any]) -> int:
    """Have the validator of the first of `voters` propose `action` and the next two approve it (three
    organisations of four); the height at which it was executed."""
    proposed = submit(stage, voters[0], "governance.propose", {"action": action, "params": params})
    proposal = proposed["receipt"]["result"]["proposal"]
    submit(stage, voters[1], "governance.approve", {"proposal": proposal})
    done = submit(stage, voters[2], "governance.approve", {"proposal": proposal})
    result = done["receipt"]["result"]
    if result["status"] != "executed":
        raise ScenarioError(f"{action} was not executed after three approvals: {result}")
    stage.note(f"{action} {params.get('id')} executed at height {done['height']}")
    return int(done["height"])


def submit(stage: Stage, index: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Sign a tx with node `index`'s validator key, submit it to that node, and wait until it commits."""
    home = stage.devnet.node(index).home
    signer = Signer.from_key_file(home / KEY_FILE, NodeConfig.load(home).node_id)
    with stage.devnet.client(index, timeout=30.0) as client:
        tx = signer.sign(kind, payload, chain_id=stage.devnet.genesis.chain_id, valid_until=client.valid_until())
        done: dict[str, Any] = client.wait_tx(client.submit(tx), timeout=CHANGE_LIMIT_S)
    if done["status"] != "committed":
        raise ScenarioError(f"{kind} signed by node {index} did not commit: {done}")
    return done


def height_of(stage: Stage, index: int) -> int:
    return int(stage.devnet.status(index)["height"] or 0)
