"""Forming a network of organisations: node identities, a genesis built from them, and homes that join it.

Each organisation makes its node's home on its own machine (`make_identity`):
the node's key and its organisation's X25519 encryption key (files only
their owner reads, in a folder only its owner opens; a second node of the
organisation is given a copy of the first's encryption key) and
`identity.json`, which says what the others need to know of the node and
nothing secret: its organisation, its name, its public keys and the address
it is reached at. One of them collects the identity files (and the
public keys of the client identities: channels, stores, operators, auditors,
payment providers) and builds the genesis (`build_genesis`): every node
identity given becomes a validator. Every organisation compares the genesis
hash, then installs the file in its home (`install_genesis`): a node whose
key is a validator's votes; any other node of a member organisation follows
the chain without voting (state sync, then every block) and serves its
organisation's API.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ledger.errors import InvalidGenesis
from ledger.genesis import ROLES, ConsensusParams, Genesis, Identity
from ledger.keys import PrivateKey
from ledger.personal import ENCRYPTION_KEY_FILE, EncryptionKey
from node.config import GENESIS_FILE, KEY_FILE, NodeConfig
from p2p.reads import READER_ROLE

IDENTITY_FILE = "identity.json"
"""What a node's home says about the node to the other organisations (no secret in it)."""

MAX_IDENTITY_FILE_BYTES = 64 * 1024
"""Largest identity or public-key file read (they are a few hundred bytes)."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What an organisation, node or client name may be: letters, digits, `.`, `_`, `-`, at most 64."""

HOST_PATTERN = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
"""A host name, an IPv4 address, or an IPv6 address in brackets."""

HOME_MODE = 0o700
"""A home is opened by its owner alone: it holds the node's key, its data and its API tokens."""


@dataclass(frozen=True)
class NodeIdentity:
    """What one organisation tells the others about one of its nodes (`identity.json`)."""

    org: str
    """The organisation running the node."""
    name: str
    """The node's name, unique in the network: its validator id if genesis makes it one."""
    public_key: bytes
    """The node's Ed25519 key: it signs votes, envelopes and address announcements."""
    address: str
    """Base URL the node is reached at when the genesis is made (`http://HOST:PORT`)."""
    encryption_key: bytes | None = None
    """The organisation's X25519 public key, that personal data is sealed to (None: an identity without one)."""

    def to_wire(self) -> dict[str, Any]:
        keys = {"node": self.public_key.hex()}
        if self.encryption_key is not None:
            keys["encryption"] = self.encryption_key.hex()
        return {"org": self.org, "name": self.name, "public_keys": keys, "address": self.address}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_wire(), indent=2, sort_keys=True) + "\n")

    def as_follower(self) -> Identity:
        """The node as a member node that follows without voting: a client identity with role `node`, which
        the validators serve blocks and snapshots to (`p2p.reads`)."""
        return Identity(self.name, self.org, self.public_key, frozenset({READER_ROLE}))

    @classmethod
    def load(cls, path: Path) -> NodeIdentity:
        wire = read_json(path)
        try:
            keys = wire["public_keys"]
            encryption = keys.get("encryption")
            return cls(
                check_name(wire["org"], "organisation"),
                check_name(wire["name"], "node name"),
                parse_public_key(keys["node"]),
                check_address(wire["address"]),
                None if encryption is None else parse_public_key(encryption),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidGenesis(f"{path} is not an identity file: missing or malformed {exc}") from exc


def read_json(path: Path) -> Any:
    """A small JSON file, refused when larger than `MAX_IDENTITY_FILE_BYTES` or not JSON."""
    data = read_small(path)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidGenesis(f"{path} is not JSON: {exc}") from exc


def read_small(path: Path) -> bytes:
    with open(path, "rb") as file:
        data = file.read(MAX_IDENTITY_FILE_BYTES + 1)
    if len(data) > MAX_IDENTITY_FILE_BYTES:
        raise InvalidGenesis(f"{path} is larger than {MAX_IDENTITY_FILE_BYTES} bytes")
    return data


def check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidGenesis(f"{what} {value!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
    return value


def parse_public_key(value: object) -> bytes:
    """A 32-byte Ed25519 public key written as 64 hex digits."""
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidGenesis(f"public key {str(value)[:80]!r} is not 64 hex digits")
    return key


def parse_host_port(text: str, what: str = "address") -> tuple[str, int]:
    """`HOST:PORT` (IPv6 in brackets) as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not HOST_PATTERN.fullmatch(host) or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InvalidGenesis(f"{what} {text!r} is not HOST:PORT")
    return host, int(port)


def check_address(value: object) -> str:
    """A node's base URL: `http://HOST:PORT` or `https://HOST:PORT`."""
    if isinstance(value, str):
        scheme, sep, rest = value.partition("://")
        if sep and scheme in ("http", "https"):
            parse_host_port(rest)
            return value
    raise InvalidGenesis(f"address {str(value)[:80]!r} is not http(s)://HOST:PORT")


def make_identity(
    home: Path, org: str, name: str, advertise: str, listen: str | None = None, tls: TlsFiles | None = None
) -> NodeIdentity:
    """Make a node's home: its key, its organisation's encryption key, `config.toml` (it listens on `listen`, by
    default the advertised address; over HTTPS with `tls`) and `identity.json`."""
    check_name(org, "organisation")
    check_name(name, "node name")
    parse_host_port(advertise, "--advertise")
    host, port = parse_host_port(listen or advertise, "--listen")
    if (home / KEY_FILE).exists():
        raise FileExistsError(f"{home} already holds a node key; choose another --home or remove it")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(HOME_MODE)
    key = PrivateKey.generate()
    key.save(home / KEY_FILE)
    encryption = EncryptionKey.generate()
    encryption.save(home / ENCRYPTION_KEY_FILE)
    files = tls or TlsFiles()
    for path in (files.cert, files.key, files.ca):
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"{path} not found")
    config = NodeConfig(
        node_id=name,
        org=org,
        host=host,
        port=port,
        advertise=advertise,
        tls_cert_file=files.cert,
        tls_key_file=files.key,
        tls_ca_file=files.ca,
    )
    config.save(home)
    identity = NodeIdentity(org, name, key.public, config.advertised_url, encryption.public)
    identity.save(home / IDENTITY_FILE)
    return identity


@dataclass(frozen=True)
class TlsFiles:
    """The certificate files a node serves HTTPS with and checks its peers against (absolute paths)."""

    cert: str = ""
    key: str = ""
    ca: str = ""
    """The network's certificate authority: peers' certificates must chain to it (empty: the system's)."""


def parse_client(spec: str) -> Identity:
    """`ORG:NAME:ROLE:PUBKEY_FILE` (roles joined by `+`) as a client identity; the file holds the hex public key
    that `omsnode client-key create` wrote."""
    parts = spec.split(":", 3)
    if len(parts) != 4:
        raise InvalidGenesis(f"--client {spec!r} is not ORG:NAME:ROLE:PUBKEY_FILE")
    org, name, role_text, key_file = parts
    roles = frozenset(role_text.split("+"))
    if not roles <= ROLES - {"validator"}:
        raise InvalidGenesis(f"--client {name!r}: roles are {', '.join(sorted(ROLES - {'validator'}))}")
    try:
        key = parse_public_key(read_small(Path(key_file)).decode("ascii", "replace").strip())
    except OSError as exc:
        raise InvalidGenesis(f"--client {name!r}: cannot read {key_file}: {exc.strerror}") from exc
    return Identity(check_name(name, "client name"), check_name(org, "organisation"), key, roles)


def parse_settings(pairs: Iterable[str]) -> ConsensusParams:
    """`KEY=VALUE` settings (the consensus parameters; integers) over their defaults."""
    known = {f.name for f in fields(ConsensusParams)}
    values: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise InvalidGenesis(f"--set {pair!r}: settings are {', '.join(sorted(known))} (KEY=VALUE)")
        if not value.isdigit() or not 0 < int(value) < 2**31:
            raise InvalidGenesis(f"--set {pair!r}: the value must be a positive integer")
        values[key] = int(value)
    return replace(ConsensusParams(), **values)


def build_genesis(
    chain_id: str,
    identities: Sequence[NodeIdentity],
    clients: Sequence[Identity] = (),
    consensus: ConsensusParams | None = None,
    organisation_names: Mapping[str, str] | None = None,
) -> Genesis:
    """A genesis whose validators are the nodes of `identities` (in that order) and whose organisations are
    every organisation they and the `clients` name, each with the encryption key of its first node that has
    one."""
    check_name(chain_id, "chain id")
    names = organisation_names or {}
    orgs: dict[str, dict[str, str]] = {}
    for org in [i.org for i in identities] + [c.org for c in clients]:
        orgs.setdefault(org, {"id": org, "name": names.get(org, org)})
    for identity in identities:
        if identity.encryption_key is not None:
            orgs[identity.org].setdefault("encryption_key", identity.encryption_key.hex())
    keys = [i.public_key for i in identities] + [c.public_key for c in clients]
    if len(set(keys)) != len(keys):
        raise InvalidGenesis("two identities share a public key")
    validators = tuple(Identity(i.name, i.org, i.public_key, frozenset({"validator"}), i.address) for i in identities)
    now_ms = int(time.time() * 1000)
    return Genesis(chain_id, now_ms, tuple(orgs.values()), validators, tuple(clients), consensus or ConsensusParams())


def install_genesis(home: Path, genesis: Genesis, added: bool = False) -> str:
    """Put the network's genesis into a home made by `make_identity`; answer the node's part: `validator` if
    genesis lists its key, else `follower` (its organisation must be a member of genesis, or with `added` one
    that governance added since, which the node checks once it has synced the chain)."""
    config = NodeConfig.load(home)
    key = PrivateKey.load(home / KEY_FILE)
    validator = next((v for v in genesis.validators if v.public_key == key.public), None)
    if validator is not None:
        if validator.org != config.org:
            raise InvalidGenesis(f"genesis lists this node's key for {validator.org!r}, not {config.org!r}")
        config = replace(config, node_id=validator.id)
    else:
        if config.org not in {o["id"] for o in genesis.organisations} and not added:
            raise InvalidGenesis(f"{config.org!r} is not an organisation of {genesis.chain_id!r}")
        listed = genesis.identity(config.node_id)
        if listed is not None and listed != NodeIdentity(config.org, config.node_id, key.public, "").as_follower():
            raise InvalidGenesis(f"{config.node_id!r} names another identity of {genesis.chain_id!r}; rename the node")
    target = home / GENESIS_FILE
    if target.exists() and Genesis.load(target).to_wire() != genesis.to_wire():
        raise FileExistsError(f"{home} already holds another network's genesis")
    genesis.save(target)
    config.save(home)
    return "validator" if validator is not None else "follower"


def is_listed_node(home: Path, genesis: Genesis) -> bool:
    """Does genesis list the node of `home` as a member node (a validator, or a follower with role `node`)?"""
    key = PrivateKey.load(home / KEY_FILE).public
    listed = (*genesis.validators, *genesis.clients)
    return any(i.public_key == key and ({"validator", READER_ROLE} & i.roles) for i in listed)


def save_client_key(out: Path) -> Path:
    """Make a client identity's key pair: the private key in `out` (owner only) and the hex public key beside it
    (`.pub`), the file `genesis create --client` reads; answers the public key's path."""
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out")
    out.parent.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    key = PrivateKey.generate()
    key.save(out)
    public = out.with_suffix(".pub")
    public.write_text(key.public.hex() + "\n")
    return public


def describe_genesis(genesis: Genesis, genesis_hash: bytes) -> dict[str, Any]:
    """What `genesis inspect` shows: organisations, validators, quorum, clients and roles, settings, hash."""
    return {
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis_hash.hex(),
        "organisations": [o["id"] for o in genesis.organisations],
        "validators": [{"id": v.id, "org": v.org, "address": v.address} for v in genesis.validators],
        "faults_tolerated": genesis.f,
        "quorum": genesis.quorum,
        "clients": [{"id": c.id, "org": c.org, "roles": sorted(c.roles)} for c in genesis.clients],
        "settings": genesis.consensus.to_wire(),
    }
