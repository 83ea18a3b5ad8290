"""The client commands of `omsnode`, run as a user runs them, against one real node process.

One node serves the whole module. Every command runs in its own process
with a config folder of the test's own (`XDG_CONFIG_HOME`) and none of the
caller's `OMSNODE_*` variables, and is judged by its stdout (a table, or
JSON with `--json`), its stderr and its exit code, which scripts rely on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cli.output import ExitCode
from devnet.network import free_ports
from tests.e2e.conftest import SingleNode
from tests.e2e.integrator import order_payload

pytestmark = [pytest.mark.e2e]


class Cli:
    """The module's node, its tokens, and `omsnode` run in a clean environment."""

    def __init__(self, node: SingleNode, config_home: Path) -> None:
        self.node = node
        self.config_home = config_home
        self.operator = node.token
        self.channel = node.make_token("channel-1", "orders:read,orders:write,invoices:read,events:read")

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OMSNODE_")}
        return {**clean, "XDG_CONFIG_HOME": str(self.config_home), **extra}

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env or self.env(),
            input=stdin,
        )

    def ok(self, *args: str, token: str | None = None) -> str:
        """stdout of a command that must succeed, sent to the node with `token` (the operator's by default)."""
        result = self.run(*args, "--node", self.node.url, "--token", token or self.operator)
        assert result.returncode == 0, f"omsnode {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}"
        return result.stdout

    def json(self, *args: str, token: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", token=token))

    def api(self, path: str, **params: Any) -> Any:
        return self.node.client.get(path, **params)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("cli")
    node = SingleNode(root / "home")
    node.start()
    for kind, payload in (
        ("sku.upsert", {"sku": "TEE-M", "price": 1999, "currency": "EUR", "tax_class": "standard"}),
        ("location.upsert", {"location": "LIS-1", "type": "store", "org": "org-0", "region": "PT", "lat": 1, "lon": 1}),
        ("stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 50}]}),
    ):
        assert node.send("operator-1", kind, payload)["status"] == "committed"
    yield Cli(node, root / "config")
    node.stop()
    node.client.close()


def test_an_order_placed_read_listed_and_cancelled(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "order.json").write_text(json.dumps(order_payload("cli-1", qty=2)))
    placed = cli.ok("order", "create", "--payload", f"@{tmp_path / 'order.json'}", token=cli.channel)
    assert ": committed" in placed
    order_id = placed.split("order ")[-1].split(":")[0]
    assert f"order {order_id}: released" in placed

    order = cli.json("order", "get", order_id)
    assert order == cli.api(f"/v1/orders/{order_id}") and order["status"] == "released"
    shown = cli.ok("order", "get", order_id)
    assert "status: released" in shown and "TEE-M" in shown and f"{order_id}-1" in shown
    history = shown.split("\nhistory:\n")[1].splitlines()
    assert history[0].split()[:4] == ["time", "(UTC)", "height", "from"]
    assert history[-1].split()[4:6] == ["released", "channel-1"]

    listed = cli.json("order", "list", "--status", "released", "--channel", "channel-1")
    assert order_id in [row["order_id"] for row in listed["items"]]
    table = cli.ok("order", "list", "--external-ref", "cli-1", "--channel", "channel-1").splitlines()
    assert table[0].split()[:3] == ["order", "status", "channel"] and table[1].split()[:2] == [order_id, "released"]

    cancelled = cli.json("order", "cancel", order_id, "--reason", "changed mind", token=cli.channel)
    assert cancelled["status"] == "committed" and cancelled["resource"]["status"] == "cancelled"
    assert cli.api(f"/v1/orders/{order_id}")["history"][-1]["reason"] == "changed mind"
    again = cli.run("order", "cancel", order_id, "--node", cli.node.url, "--token", cli.channel)
    assert again.returncode == ExitCode.FAILED and ": rejected" in again.stdout and "invalid_transition" in again.stdout


def test_an_order_from_stdin_without_waiting_is_pending(cli: Cli) -> None:
    payload = json.dumps(order_payload("cli-stdin"))
    args = ("order", "create", "--payload", "@-", "--no-wait", "--json", "--node", cli.node.url, "--token", cli.channel)
    result = cli.run(*args, stdin=payload)
    assert result.returncode == 0, result.stderr
    queued = json.loads(result.stdout)
    assert queued["status"] == "pending"
    assert cli.node.client.wait_tx(queued["tx_id"])["status"] == "committed"


def test_hold_and_release_go_to_the_node_and_report_what_it_says(cli: Cli) -> None:
    """`order hold` sends the node's intercept action and `order release` its release; each reports the order."""
    placed = cli.json("order", "create", "--payload", json.dumps(order_payload("cli-hold")), token=cli.channel)
    order_id = placed["resource"]["order_id"]
    for action, status in (("hold", "intercepted"), ("release", "released")):
        result = cli.json("order", action, order_id, "--reason", "checked")
        assert result["status"] == "committed" and result["resource"]["status"] == status, result


def test_stock_inventory_and_journal(cli: Cli) -> None:
    stock = cli.json("stock", "LIS-1", "TEE-M")
    assert stock == cli.api("/v1/inventory/LIS-1/TEE-M")
    assert cli.json("stock", "LIS-1", "TEE-M", "--height", "1")["on_hand"] == 0
    assert f"available: {stock['available']}" in cli.ok("stock", "LIS-1", "TEE-M")
    (row,) = cli.json("inventory", "--location", "LIS-1")["items"]
    assert row["on_hand"] == stock["on_hand"]
    header, line = cli.ok("inventory", "--sku", "TEE-M").splitlines()
    assert header.split() == ["location", "sku", "on", "hand", "reserved", "available", "damaged"]
    assert line.split() == ["LIS-1", "TEE-M", str(row["on_hand"]), str(row["reserved"]), str(row["available"]), "0"]
    journal = cli.api("/v1/journal", location="LIS-1")["items"]
    assert len(journal) > 1
    assert cli.json("journal", "--location", "LIS-1", "--all", "--limit", "1")["items"] == journal
    assert list(cli.node.client.pages("/v1/journal", location="LIS-1", limit=1)) == journal
    first = cli.run("journal", "--limit", "1", "--node", cli.node.url, "--token", cli.operator)
    assert len(first.stdout.splitlines()) == 2 and "more: --cursor " in first.stderr
    cursor = first.stderr.split("--cursor ")[1].split()[0]
    second = cli.json("journal", "--limit", "1", "--cursor", cursor)
    assert second["items"] == journal[1:2]


def test_invoices_of_a_shipped_order(cli: Cli) -> None:
    placed = cli.json("order", "create", "--payload", json.dumps(order_payload("cli-ship")), token=cli.channel)
    fulfilment = placed["resource"]["fulfilments"][0]["fulfilment_id"]
    for kind, payload in (("fulfilment.pick", {}), ("fulfilment.ship", {"carrier": "CTT", "tracking": "RR1"})):
        assert cli.node.send("operator-1", kind, {"fulfilment_id": fulfilment, **payload})["status"] == "committed"
    order_id = placed["resource"]["order_id"]
    (invoice,) = cli.json("invoice", "list", "--order", order_id)["items"]
    assert invoice == cli.api(f"/v1/invoices/{invoice['number']}")
    assert cli.json("invoice", "get", invoice["number"]) == invoice
    shown = cli.ok("invoice", "get", invoice["number"])
    assert f"number: {invoice['number']}" in shown and f"total: {invoice['total']}" in shown and "TEE-M" in shown
    assert invoice["number"] in cli.ok("invoice", "list", "--all")


def test_blocks_txs_and_peers(cli: Cli) -> None:
    head = cli.node.client.status()["height"]
    assert cli.json("block") == cli.api(f"/v1/blocks/{head}")
    block = cli.json("block", "1")
    assert block == cli.api("/v1/blocks/1")
    shown = cli.ok("block", "1")
    assert "height: 1" in shown and f"hash: {block['hash']}" in shown and "certified by: node-0" in shown
    tx = block["txs"][0]
    assert any(line.split()[2:4] == [tx["kind"], tx["signer"]] for line in shown.splitlines())
    status = cli.json("tx", "get", tx["id"])
    assert status["status"] == "committed" and status["height"] == 1 and status["receipt"] == block["receipts"][0]
    assert cli.ok("tx", "get", tx["id"]).startswith(f"tx {tx['id']}: committed\n  at height 1: ok")
    assert cli.json("peers") == cli.api("/v1/peers") == []
    assert cli.ok("peers").split()[:2] == ["peer", "address"]


def test_tx_send_and_its_short_form(cli: Cli) -> None:
    home = str(cli.node.home)
    payload = json.dumps({"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 1}]})
    env = cli.env(OMSNODE_TOKEN=cli.operator)
    for command in (("tx", "stock.receive"), ("tx", "send", "stock.receive")):
        sent = cli.run(*command, "--home", home, "--as", "operator-1", "--payload", payload, "--wait", env=env)
        assert sent.returncode == 0, sent.stderr
        assert ": committed\n  at height " in sent.stdout
    cancel = ("--as", "operator-1", "--payload", '{"order_id": "x"}', "--wait", "--json")
    refused = cli.run("tx", "order.cancel", "--home", home, *cancel, env=env)
    assert refused.returncode == ExitCode.FAILED and json.loads(refused.stdout)["status"] == "rejected"


def test_events_up_to_now_then_followed_until_ctrl_c(cli: Cli) -> None:
    lines = cli.ok("events", "--json", "--types", "stock.movement").splitlines()
    events = [json.loads(line) for line in lines]
    assert events and {e["type"] for e in events} == {"stock.movement"}
    assert [int(e["cursor"]) for e in events] == sorted(int(e["cursor"]) for e in events)
    last = cli.run("events", "--node", cli.node.url, "--token", cli.operator)
    cursor = last.stderr.split("resume with: --after ")[1].split()[0]
    assert last.returncode == 0 and last.stdout.splitlines()[-1].startswith(cursor)

    args = ["events", "--follow", "--json", "--after", cursor, "--node", cli.node.url, "--token", cli.operator]
    follower = subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env()
    )
    try:
        cli.node.send("operator-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 3}]})
        assert follower.stdout is not None
        event = json.loads(follower.stdout.readline())
        assert event["type"] == "stock.movement" and event["data"]["delta"] == 3 and int(event["cursor"]) > int(cursor)
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
    resume = err.decode().split("resume with: --after ")[1].split()[0]
    assert follower.returncode == 0 and int(cursor) <= int(resume) <= int(event["cursor"]), "an event skipped"
    # the node holds the long-poll the follower left until a block commits: end it, or stopping the node waits
    cli.node.send("operator-1", "stock.receive", {"location": "LIS-1", "lines": [{"sku": "TEE-M", "qty": 1}]})


def test_reconcile_stock_tells_a_script_whether_the_snapshot_matches(cli: Cli, tmp_path: Path) -> None:
    place = {"location": "REC-1", "type": "warehouse", "org": "org-0", "region": "PT", "lat": 1, "lon": 1}
    assert cli.node.send("operator-1", "location.upsert", {**place, "ships_online": False})["status"] == "committed"
    for qty in (3, 2):
        receipt = {"location": "REC-1", "lines": [{"sku": "TEE-M", "qty": qty}]}
        assert cli.node.send("operator-1", "stock.receive", receipt)["status"] == "committed"
    first, second = cli.api("/v1/journal", location="REC-1")["items"]
    as_of = str(first["time_ms"])
    (tmp_path / "wms.csv").write_text("SKU,Quantity\nTEE-M,3\n")
    node = ("--node", cli.node.url, "--token", cli.operator)
    matched = cli.run("reconcile", "stock", str(tmp_path / "wms.csv"), "--location", "REC-1", "--as-of", as_of, *node)
    assert matched.returncode == ExitCode.OK, matched.stderr
    assert "compared: 1" in matched.stdout and "matched: 1" in matched.stdout

    snapshot = {"location": "REC-1", "as_of": first["time_ms"], "lines": [{"sku": "TEE-M", "qty": 2}]}
    (tmp_path / "erp.json").write_text(json.dumps(snapshot))
    differs = cli.run("reconcile", "stock", str(tmp_path / "erp.json"), *node)
    assert differs.returncode == ExitCode.FAILED and "1 of 1 SKUs differ" in differs.stderr
    lines = differs.stdout.splitlines()
    table = lines[lines.index("differences:") + 1 :]
    assert table[0].split()[:4] == ["sku", "snapshot", "ledger", "difference"]
    assert table[1].split()[:4] == ["TEE-M", "2", "3", "-1"]
    moved = lines[lines.index("moved since the snapshot:") + 2].split()
    assert moved[:5] == ["REC-1", "TEE-M", str(second["seq"]), "receipt", "2"]
    answer = cli.run("reconcile", "stock", "-", "--json", *node, stdin=json.dumps(snapshot))
    assert answer.returncode == ExitCode.FAILED
    expected = cli.node.client.http.post("/v1/reconciliations/stock", json=snapshot).json()
    assert json.loads(answer.stdout) == expected
    assert [entry["seq"] for entry in expected["differences"][0]["since"]] == [second["seq"]]
    elsewhere = json.dumps({**snapshot, "location": "LIS-1", "lines": []})
    now = cli.run("reconcile", "stock", "-", "--location", "REC-1", "--as-of", "2100-01-01", *node, stdin=elsewhere)
    assert now.returncode == ExitCode.FAILED, now.stderr
    lines = now.stdout.splitlines()
    assert "location: REC-1" in now.stdout
    assert lines[lines.index("differences:") + 2].split()[:4] == ["TEE-M", "0", "5", "-5"]
    (tmp_path / "bad.csv").write_text("sku;qty\nTEE-M;3\n")

    cases = [
        (("reconcile", "stock", str(tmp_path / "wms.csv"), *node), ExitCode.USAGE, "needs --location and --as-of"),
        (("reconcile", "stock", str(tmp_path / "none.csv"), *node), ExitCode.USAGE, "cannot read the snapshot"),
        (("reconcile", "stock", str(tmp_path / "erp.json"), "--as-of", "soon", *node), ExitCode.USAGE, "ISO date"),
        (
            ("reconcile", "stock", str(tmp_path / "bad.csv"), "--location", "REC-1", "--as-of", as_of, *node),
            ExitCode.REFUSED,
            "must name sku and qty",
        ),
        (
            ("reconcile", "stock", str(tmp_path / "erp.json"), "--node", cli.node.url, "--token", cli.channel),
            ExitCode.AUTH,
            "forbidden",
        ),
    ]
    for args, code, message in cases:
        result = cli.run(*args)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)


def test_reconcile_finance_flags_an_order_invoiced_but_not_paid(cli: Cli) -> None:
    placed = cli.json("order", "create", "--payload", json.dumps(order_payload("cli-money")), token=cli.channel)
    order_id, fulfilment = placed["resource"]["order_id"], placed["resource"]["fulfilments"][0]["fulfilment_id"]
    for kind, payload in (("fulfilment.pick", {}), ("fulfilment.ship", {"carrier": "CTT", "tracking": "RR2"})):
        assert cli.node.send("operator-1", kind, {"fulfilment_id": fulfilment, **payload})["status"] == "committed"
    (invoice,) = cli.api("/v1/invoices", order_id=order_id)["items"]
    day = datetime.fromtimestamp(invoice["time_ms"] / 1000, UTC).strftime("%Y-%m-%d")
    node = ("--node", cli.node.url, "--token", cli.operator)

    shown = cli.run("reconcile", "finance", "--day", day, *node)
    assert shown.returncode == ExitCode.FAILED
    assert f"orders of {day} whose paid and documented amounts differ: " in shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[lines.index("organisations:") + 1].split()[:3] == ["org", "cur", "captured"]
    cells = next(line.split() for line in lines if line.startswith(order_id))
    assert cells[-2:] == [str(-invoice["total"]), "awaiting_payment"]

    paged = cli.run("reconcile", "finance", "--day", day, "--limit", "1", "--json", *node)
    assert paged.returncode == ExitCode.FAILED
    answer = json.loads(paged.stdout)
    params: dict[str, Any] = {"day": day, "limit": 1}
    pages = [cli.api("/v1/reconciliations/finance", **params)]
    while pages[-1]["next_cursor"] is not None:
        pages.append(cli.api("/v1/reconciliations/finance", **params, cursor=pages[-1]["next_cursor"]))
    assert len(pages) > 1 and answer["flagged"] == [row for page in pages for row in page["flagged"]]
    assert answer["organisations"] == cli.api("/v1/reconciliations/finance", day=day)["organisations"]
    assert answer["next_cursor"] is None and order_id in [row["order_id"] for row in answer["flagged"]]

    quiet = cli.run("reconcile", "finance", "--day", "2001-01-01", *node)
    assert quiet.returncode == ExitCode.OK and "orders that disagree: 0" in quiet.stdout, quiet.stderr
    for args, code in (
        (("--day", "2001-02-30", *node), ExitCode.USAGE),
        (("--day", day, "--limit", "0", *node), ExitCode.REFUSED),
        (("--day", day, "--node", cli.node.url, "--token", "oms_00000000_guess"), ExitCode.AUTH),
    ):
        result = cli.run("reconcile", "finance", *args)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)


def test_exit_codes_a_script_can_trust(cli: Cli) -> None:
    node = ["--node", cli.node.url]
    cases = [
        (("order", "list", *node, "--token", "oms_00000000_guess"), ExitCode.AUTH, "unauthorized"),
        (("order", "list", *node), ExitCode.AUTH, "unauthorized"),
        (("inventory", *node, "--token", cli.channel), ExitCode.AUTH, "forbidden"),
        (("order", "get", "SO-nothing", *node, "--token", cli.operator), ExitCode.REFUSED, "not_found"),
        (("tx", "get", "00" * 32, *node, "--token", cli.operator), ExitCode.REFUSED, "not_found"),
        (("order", "list", "--limit", "0", *node, "--token", cli.operator), ExitCode.REFUSED, "invalid_request"),
        (("order", "list", "--node", f"http://127.0.0.1:{free_ports(1)[0]}"), ExitCode.UNREACHABLE, "cannot reach"),
        (("order", "list", "--bogus"), ExitCode.USAGE, "unrecognized arguments"),
        (("order", "create", "--payload", "{nope", *node), ExitCode.USAGE, "not valid JSON"),
        (("order", "create", "--payload", "[1]", *node), ExitCode.USAGE, "JSON object"),
        (("order", "list", "--created-min", "yesterday"), ExitCode.USAGE, "ISO date"),
        (("order", "list", "--profile", "nowhere"), ExitCode.USAGE, "no profile 'nowhere'"),
    ]
    for args, code, message in cases:
        result = cli.run(*args)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_profiles_the_environment_and_flags_in_their_order(cli: Cli) -> None:
    config = cli.config_home / "omsnode" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    nowhere = f"http://127.0.0.1:{free_ports(1)[0]}"
    config.write_text(
        f'[profiles.default]\nnode = "{cli.node.url}"\ntoken = "{cli.channel}"\n\n'
        f'[profiles.ops]\nnode = "{cli.node.url}"\ntoken = "{cli.operator}"\n\n'
        f'[profiles.down]\nnode = "{nowhere}"\n'
    )
    try:
        assert cli.run("inventory").returncode == ExitCode.AUTH  # the default profile: the channel's token
        assert cli.run("inventory", "--profile", "ops").returncode == 0
        assert cli.run("inventory", env=cli.env(OMSNODE_PROFILE="ops")).returncode == 0
        assert cli.run("inventory", env=cli.env(OMSNODE_TOKEN=cli.operator)).returncode == 0  # env over default
        named = cli.env(OMSNODE_TOKEN=cli.channel)
        assert cli.run("inventory", "--profile", "ops", env=named).returncode == 0  # a named profile over env
        assert cli.run("inventory", "--profile", "ops", "--token", cli.channel).returncode == ExitCode.AUTH
        assert cli.run("inventory", "--profile", "down").returncode == ExitCode.UNREACHABLE
        assert cli.run("inventory", "--profile", "down", "--node", cli.node.url).returncode == ExitCode.AUTH
        status = cli.run("status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["node_id"] == "node-0"
        config.write_text('[profiles.default]\nnode = "x"\nsecret = "y"\n')
        broken = cli.run("inventory")
        assert broken.returncode == ExitCode.USAGE and "may set only node, token" in broken.stderr
    finally:
        config.unlink()
