"""The README's shell examples, run as a reader pastes them, against the devnet that `make run` starts.

Every fenced `sh` block that the README marks with the line
`<!-- README test: devnet -->` just before it is run, in README order, in
one bash shell (as a reader pastes section after section into one
terminal), from a folder that holds what `make run` leaves in the
repository: `.venv` and a 4-node devnet with sample data in `devnet-data/`.
The shell stops at the first command that fails (`set -e -o pipefail`) and
the test names its README line. `curl` fails on an HTTP error (4xx, 5xx),
and an answer of a write whose tx was committed as rejected counts as a
failure too, so an example that "works" only by printing an error does not
pass. To cover another section, mark its block: the README's own variables
(`$N`, `$TOKEN`, ...) are all the block may assume, as for a reader.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import omsnode

pytestmark = [pytest.mark.e2e]

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- README test: devnet -->"

PRELUDE = r"""
set -e -o pipefail
trap 'echo "README line $(( README_LINE + LINENO - SCRIPT_LINE )): exit $?: $BASH_COMMAND" >&2' ERR
curl() {
  # as curl, but an HTTP error, or a write whose tx was committed as rejected, is a failure
  local out
  out=$(command curl --fail-with-body "$@") || { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  if printf '%s' "$out" | jq -e 'objects | select(has("tx_id") and .status == "rejected")' >/dev/null 2>&1; then
    echo "rejected: $out" >&2
    return 1
  fi
}
"""
"""Runs before the README's blocks: stop at the first failure and say which README line it was."""


@dataclass(frozen=True)
class Block:
    """A fenced `sh` block of the README."""

    line: int
    """README line of its first command (after the fence)."""
    text: str


def find_blocks(readme: str) -> list[Block]:
    """The `sh` blocks right after a `MARKER` line, in README order."""
    lines = readme.splitlines()
    blocks = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        if lines[index + 1].strip() != "```sh":
            raise AssertionError(f"README line {index + 1}: {MARKER} must come right before a ```sh fence")
        end = lines.index("```", index + 2)
        blocks.append(Block(index + 3, "\n".join(lines[index + 2 : end])))
    return blocks


def make_script(blocks: list[Block]) -> str:
    """The prelude, then each block, each after a line that tells the ERR trap where the block is in the README."""
    parts = [PRELUDE.strip()]
    for block in blocks:
        parts.append(f"README_LINE={block.line}; SCRIPT_LINE=$((LINENO + 1))")
        parts.append(block.text)
    return "\n".join(parts) + "\n"


def test_the_marked_blocks_are_found_and_the_line_numbers_point_at_them() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = find_blocks(text)
    assert len(blocks) >= 3
    lines = text.splitlines()
    for block in blocks:
        assert lines[block.line - 1] == block.text.splitlines()[0]
    assert re.search(r"omsnode tx .* --wait", blocks[0].text) and "curl" in blocks[1].text


@pytest.fixture
def readme_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder as `make run` leaves the repository: `.venv`, and a 4-node devnet with sample data."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    omsnode("devnet", "up", "--nodes", "4", "--dir", str(tmp_path / "devnet-data"), "--sample-data", timeout=600)
    yield tmp_path
    omsnode("devnet", "down", "--dir", str(tmp_path / "devnet-data"), check=False)


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("curl")), reason="the README's examples use curl and jq")
def test_every_marked_readme_example_runs_against_a_devnet(readme_folder: Path) -> None:
    script = make_script(find_blocks(README.read_text(encoding="utf-8")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSNODE_")}
    env["XDG_CONFIG_HOME"] = str(readme_folder / "config")
    result = subprocess.run(
        ["bash", "-c", script], cwd=readme_folder, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n--- stdout ---\n{result.stdout[-3000:]}"
    assert "TSHIRT-M" in result.stdout
