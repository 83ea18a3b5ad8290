"""`omsnode init`, `genesis create|inspect`, `client-key create`, `--version`, run in-process as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from cli.output import ExitCode
from ledger.genesis import Genesis


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits (--version, --help, a missing argument)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_two_organisations_form_a_network_and_a_third_node_follows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, org in enumerate(("north", "south")):
        code, out, _ = run(
            capsys, "init", "--home", str(tmp_path / org), "--org", org, "--name", f"{org}-1",
            "--advertise", f"127.0.0.{i + 2}:26600",
        )  # fmt: skip
        assert code == 0 and "identity.json" in out
    assert run(capsys, "client-key", "create", "--out", str(tmp_path / "ops.key"))[0] == 0
    genesis = tmp_path / "genesis.json"
    code, out, _ = run(
        capsys, "genesis", "create", "--chain-id", "two", "--identity", str(tmp_path / "north" / "identity.json"),
        "--identity", str(tmp_path / "south" / "identity.json"),
        "--client", f"north:ops:operator:{tmp_path / 'ops.pub'}",
        "--set", "max_block_txs=100", "--out", str(genesis),
    )  # fmt: skip
    assert code == 0 and "genesis hash" in out
    assert Genesis.load(genesis).consensus.max_block_txs == 100
    code, out, _ = run(capsys, "genesis", "inspect", str(genesis), "--json")
    shown = json.loads(out)
    assert shown["quorum"] == 2 and shown["clients"] == [{"id": "ops", "org": "north", "roles": ["operator"]}]
    assert len(shown["genesis_hash"]) == 64
    code, out, _ = run(capsys, "genesis", "inspect", str(genesis))
    assert code == 0 and "quorum: 2 of 2" in out.replace("  ", " ")

    assert "validator" in run(capsys, "init", "--home", str(tmp_path / "north"), "--genesis", str(genesis))[1]
    follower = ("init", "--home", str(tmp_path / "till"), "--org", "south", "--name", "till", "--advertise", "h:1")
    code, out, _ = run(capsys, *follower, "--genesis", str(genesis))
    assert code == 0 and "this node is a follower" in out


def test_wrong_command_lines_say_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "--home", str(tmp_path / "a"), "--org", "x")
    assert code == ExitCode.USAGE and "go together" in err
    code, _, err = run(capsys, "init", "--home", str(tmp_path / "b"), "--genesis", str(tmp_path / "none.json"))
    assert code == ExitCode.USAGE and "holds no node yet" in err
    code, _, err = run(capsys, "init", "--home", str(tmp_path / "c"), "--org", "x", "--name", "y", "--advertise", "no")
    assert code == ExitCode.FAILED and "HOST:PORT" in err
    code, _, err = run(capsys, "genesis", "create", "--chain-id", "c", "--identity", str(tmp_path / "missing.json"),
                       "--out", str(tmp_path / "g.json"))  # fmt: skip
    assert code == ExitCode.FAILED and "missing.json" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("omsnode ")
