"""Per-node settings, read from `config.toml` in the node's home directory.

Everything all nodes must agree on lives in genesis or on the ledger; this
file holds only what is local to one node: its id, where it listens, where
its data lives, its mempool limits and batching, and how its API treats
clients (rate per token, who may scrape metrics, which web origins may call
it). API tokens live beside it, in `api_tokens.json` (`node.tokens`).
"""

from __future__ import annotations

import ssl
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

CONFIG_FILE = "config.toml"
GENESIS_FILE = "genesis.json"
KEY_FILE = "node_key"
DATA_DIR = "data"
WAL_FILE = "consensus.wal"
DAMAGED_WAL_FILE = "consensus.wal.damaged"
"""Where the repair of a damaged consensus log moves it (docs/spec/consensus.md): while it is there and the log is
empty, the validator abstains through the height after its head, even before its first block."""
WINDOWS_FILE = "envelope.windows"
"""The highest envelope sequence number accepted from each peer (`p2p.windows`)."""
TEMPLATES_DIR = "templates"
"""The node's own customer message templates, which take precedence over the shipped ones (`node.notify.messages`)."""
ADDRESSES_FILE = "addresses.json"
"""The peers' signed address records, newest of each (`p2p.addresses`)."""
LINK_FAULTS_FILE = "link_faults.json"
"""The fault layer's control file (`p2p.faults`), obeyed only by a node made for fault tests."""
CLIENTS_DIR = "clients"
"""Client key files (`<client id>.key`) made by `omsnode init` for a single-node network."""


@dataclass(frozen=True)
class NodeConfig:
    """Settings of one node."""

    node_id: str
    """The node's name: its validator id in genesis if it votes."""
    org: str = ""
    """The organisation running the node (empty: the organisation genesis gives its validator id)."""
    host: str = "127.0.0.1"
    """Address the HTTP server (API and /p2p) listens on."""
    port: int = 26600
    advertise: str = ""
    """`HOST:PORT` the other nodes reach this one at, announced to them (empty: `host:port`)."""
    log_format: str = "json"
    """`json` (one event a JSON line) or `text` (for people)."""
    mempool_max_txs: int = 100_000
    mempool_max_bytes: int = 128 * 1024 * 1024
    mempool_signer_max_txs: int = 25_000
    """Most txs of one signer waiting in the mempool at once."""
    mempool_signer_max_bytes: int = 32 * 1024 * 1024
    """Most bytes of one signer's txs waiting in the mempool at once."""
    mempool_max_wait_ms: int = 10_000
    """The mempool holds at most the txs the network commits in this long (at its recent rate): a client is
    refused (503, `Retry-After`) rather than queued for minutes."""
    batch_wait_ms: int = 5
    """How long the primary lets a batch fill before it proposes."""
    log_level: str = "warning"
    api_rate_per_s: int = 200
    """Units of work per second each API token may spend, on average (a request is one unit; `node.api.limits`
    says what else counts)."""
    api_burst: int = 400
    """Requests a token may send at once before its rate applies."""
    api_address_rate_per_s: int = 1000
    """Units of work per second each client address may spend on the routes that need no token (`POST /v1/tx`,
    `/v1/txs`: a request or a tx signature checked is one unit), bursting to twice that."""
    metrics_loopback_only: bool = False
    """Serve `/metrics` to clients on this machine only (others get 403)."""
    cors_origins: str = ""
    """Comma-separated origins whose web pages may call the API with a token (empty: none)."""
    max_connections: int = 512
    """Most HTTP connections (API and /p2p, from anyone) open at once; past it a new one is closed at once."""
    tls_cert_file: str = ""
    """PEM certificate (chain) the node serves its API and /p2p with over HTTPS (empty: plain HTTP)."""
    tls_key_file: str = ""
    """PEM private key of `tls_cert_file`."""
    tls_ca_file: str = ""
    """PEM certificates that peers' certificates must chain to (empty: the system's trusted authorities)."""

    webhook_retry_base_ms: int = 2_000
    """Delay before a failed webhook delivery is tried again; it triples with each failure (with jitter)."""
    webhook_retry_cap_ms: int = 3_600_000
    """Longest delay between two attempts of a webhook delivery."""
    webhook_max_attempts: int = 10
    """Attempts of a webhook delivery before it is dead (10 with the defaults span about two and a half hours)."""
    webhook_timeout_ms: int = 10_000
    """Longest one attempt may take, connecting and answering included."""
    webhook_max_in_flight: int = 16
    """Most webhook attempts in flight at once, over all subscriptions."""
    alert_interval_ms: int = 5_000
    """How often the node evaluates its alert rules (`node.notify.alerts`)."""
    alert_stall_ms: int = 60_000
    """Consensus is stalled when txs wait and no block committed for this long."""
    alert_peer_unreachable_ms: int = 60_000
    """A peer is unreachable when every exchange with it failed for this long."""
    alert_webhook_failures: int = 3
    """A subscription's deliveries are failing after this many failed attempts in a row."""
    test_faults: bool = False
    """Accept the test-only fault settings below (a devnet made for `omsnode devnet chaos`); never on a real
    network. Set when such a devnet is made; a node without it refuses them at start."""
    test_clock_offset_ms: int = 0
    """Milliseconds added to this node's clock, the source of the block times it proposes and checks (a skewed
    clock, for fault tests); refused unless `test_faults`."""

    def __post_init__(self) -> None:
        if self.test_clock_offset_ms and not self.test_faults:
            raise ValueError("test_clock_offset_ms is a test-only fault: refused unless the node has test_faults")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file else "http"

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the node."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else "[::1]" if self.host == "::" else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def advertised_url(self) -> str:
        """Where the other nodes reach this one."""
        return f"{self.scheme}://{self.advertise}" if self.advertise else self.url

    def make_peer_ssl_context(self) -> ssl.SSLContext:
        """How this node checks its peers' certificates: against `tls_ca_file`, or the system's authorities."""
        return ssl.create_default_context(cafile=self.tls_ca_file or None)

    def save(self, home: Path) -> None:
        lines = ["# oms-ledger node settings (local to this node; shared rules live in genesis)"]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                lines.append(f"{f.name} = {str(value).lower()}")
            elif isinstance(value, int):
                lines.append(f"{f.name} = {value}")
            else:
                lines.append(f'{f.name} = "{value}"')
        (home / CONFIG_FILE).write_text("\n".join(lines) + "\n")

    @classmethod
    def load(cls, home: Path) -> NodeConfig:
        path = home / CONFIG_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `omsnode init --home {home}` first")
        wire = tomllib.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(wire) - known)
        if unknown:
            raise ValueError(f"{path}: unknown settings {unknown}")
        return cls(**wire)
