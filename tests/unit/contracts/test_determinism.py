"""The determinism check: what a contract module may and may not do."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from contracts import ContractRefused, load_contracts
from contracts.determinism import check_module
from contracts.runtime import CONTRACTS_DIR, SHARED_MODULES

FIXTURES = Path(__file__).parent / "fixtures_runtime"


@pytest.mark.parametrize(
    ("module", "line", "reason"),
    [
        ("bad_float", 14, "float literal 0.5"),
        ("bad_time", 5, "import of 'time'"),
        ("bad_random", 5, "import of 'random'"),
        ("bad_os", 5, "import of 'os'"),
        ("bad_import", 5, "import of 'json' is outside the allow-list"),
        ("bad_set_iteration", 15, "for loop over a set"),
    ],
)
def test_a_module_breaking_a_rule_is_refused_with_module_line_and_reason(module: str, line: int, reason: str) -> None:
    with pytest.raises(ContractRefused) as refused:
        load_contracts((module,), search_path=(FIXTURES,))
    assert refused.value.module == module
    assert refused.value.line == line
    assert reason in refused.value.reason
    assert f"{module!r} refused at line {line}" in str(refused.value)


def test_a_refused_helper_refuses_the_module_importing_it(tmp_path: Path) -> None:
    (tmp_path / "uses_helper.py").write_text("from contracts import bad_time\n\nROLES = {}\n")
    with pytest.raises(ContractRefused) as refused:
        load_contracts(("uses_helper",), search_path=(tmp_path, FIXTURES))
    assert refused.value.module == "bad_time"


def _check(source: str) -> None:
    check_module("snippet", textwrap.dedent(source))


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("x = 7 / 2", "true division"),
        ("x = 7\nx /= 2", "true division"),
        ("x = 2 ** -1", "negative exponent"),
        ("x = float('1')", "'float'"),
        ("x = 1j", "float literal"),
        ("def f(d):\n    return d.__class__", "dunder attribute"),
        ("def f(d):\n    return getattr(d, '__dict__')", "getattr needs a literal"),
        ("def f(d, name):\n    return getattr(d, name)", "getattr needs a literal"),
        ("x = __builtins__", "dunder name"),
        ("x = open('f')", "'open'"),
        ("x = eval('1')", "'eval'"),
        ("print(1)", "'print'"),
        ("x = hash('a')", "'hash'"),
        ("x = id(1)", "'id'"),
        ("import ledger.encoding\nx = ledger.encoding.hashlib.sys", "attribute 'sys'"),
        ("import math", "outside the allow-list"),
        ("from math import sqrt", "outside the allow-list"),
        ("from ledger.store import Store", "outside the allow-list"),
        ("from contracts import runtime", "outside the allow-list"),
        ("from contracts.steps import StepMeter", "outside the allow-list"),
        ("from typing import *", "star import"),
        ("n = 0\ndef f():\n    global n\n    n = 1", "`global`"),
        ("try:\n    x = 1\nexcept Exception:\n    x = 2", "catching Exception"),
        ("try:\n    x = 1\nexcept:\n    x = 2", "catching everything"),
        ("try:\n    x = 1\nexcept (KeyError, MemoryError):\n    x = 2", "catching MemoryError"),
        ("async def f():\n    return 1", "async"),
        ("x = [a for a in {1, 2}]", "comprehension over a set"),
        ("x = [a for a in {b for b in 'ab'}]", "comprehension over a set"),
        ("x = list(frozenset('ab'))", "list() of a set"),
        ("x = ','.join(set('ab'))", ".join() of a set"),
        ("x = set('ab').pop()", ".pop() from a set"),
        ("x = f'{set(\"ab\")}'", "formatting a set"),
        ("x = [*set('ab')]", "unpacking a set"),
        ("def f(d, e):\n    for k in d.keys() & e:\n        pass", "for loop over a set"),
        ("def f(a, b):\n    for k in set(a).union(b):\n        pass", "for loop over a set"),
        ("def f(s: set[str]):\n    return [x for x in s]", "comprehension over a set"),
        ("def f(s: frozenset[str]):\n    for x in s:\n        pass", "for loop over a set"),
        ("def f(a):\n    s = set(a)\n    return tuple(s)", "tuple() of a set"),
        ("S = frozenset('ab')\ndef f():\n    return list(S)", "list() of a set"),
    ],
)
def test_a_snippet_breaking_a_rule_is_refused(source: str, reason: str) -> None:
    with pytest.raises(ContractRefused) as refused:
        _check(source)
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    "source",
    [
        "x = 7 // 2",
        "x = divmod(7, 2)",
        "x = 2 ** 10",
        "def f(a: float) -> float:\n    return a",
        "x = sorted({'b', 'a'})",
        "x = sorted(set('ab') | set('cd'))",
        "x = len(set('ab'))",
        "x = 'a' in frozenset('ab')",
        "x = max(set([1, 2]))",
        "d = {'b': 1, 'a': 2}\ny = [k for k in d]\nz = list(d.items())",
        "def f(d: dict[str, int]):\n    for k, v in d.items():\n        pass",
        "from math import isqrt\nx = isqrt(10)",
        "from contracts import payload",
        "from contracts.errors import Rejected",
        "from . import keys",
        "from ledger.encoding import sha256",
        "def f(d):\n    return getattr(d, 'name', None)",
        "class C:\n    def __init__(self):\n        self.x = 1",
        "try:\n    x = {}['a']\nexcept KeyError:\n    x = 0",
    ],
)
def test_a_deterministic_snippet_passes(source: str) -> None:
    _check(source)


@pytest.mark.parametrize("module", sorted(SHARED_MODULES))
def test_the_modules_shared_with_the_runtime_pass_the_check_too(module: str) -> None:
    """Shared modules load as they are, unpinned: they hold types only, and nothing a contract may not."""
    check_module(module, (CONTRACTS_DIR / f"{module}.py").read_text())
