"""Determinism checked, not hoped for: the static check every contract module passes before it loads.

Every node runs the same rules on the same txs and must reach bit-identical
state. Python allows many ways to lose that property without noticing, so
before a contract module is loaded its syntax tree is walked and the module is
refused with `ContractRefused(module, line, reason)` if it:

- imports anything outside `ALLOWED_IMPORTS` (pure stdlib helpers, the
  `ledger` data types, other contract modules);
- uses floats: a float literal, `float(...)`/`complex(...)`, true division
  `/` (use `//`), or a negative literal exponent;
- names a clock, randomness, the environment, files, I/O or introspection
  (`FORBIDDEN_NAMES`, `FORBIDDEN_ATTRIBUTES`), reaches a dunder attribute, or
  calls `getattr`-like builtins with a computed or dunder name;
- rebinds module globals (`global`, `nonlocal`): module state would then
  depend on which txs this process happened to run, which differs between a
  node that restarted and one that did not;
- catches `Exception`, `BaseException`, `MemoryError` or `RecursionError`
  (or uses a bare `except:`): those would swallow failures that depend on the
  machine rather than on the ledger;
- lets the order of a set reach the result: iterating, listing, joining,
  popping or formatting a set (a literal, a set comprehension, `set(...)`,
  `frozenset(...)`, a set operation, or a name assigned or annotated as one)
  unless it goes through `sorted(...)`. Str hashing is salted per process, so
  set order differs between nodes. Dict iteration is insertion-ordered and
  `StateView.scan` is key-ordered, so both are deterministic.

The check is deliberately conservative; what it cannot see (a set hidden
behind an attribute, a helper returning a set) the runtime still contains:
floats cannot be encoded into state or receipts, and the module runs with a
restricted set of builtins and a guarded import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ledger.errors import LedgerError

ALLOWED_IMPORTS: dict[str, frozenset[str] | None] = {
    "__future__": None,
    "typing": None,
    "dataclasses": None,
    "bisect": None,
    "collections.abc": None,
    "enum": None,
    "heapq": None,
    "itertools": None,
    "operator": None,
    "collections": frozenset({"Counter", "OrderedDict", "defaultdict", "deque", "namedtuple"}),
    "copy": frozenset({"copy", "deepcopy"}),
    "functools": frozenset({"cmp_to_key", "partial", "reduce", "total_ordering"}),
    "math": frozenset({"comb", "gcd", "isqrt", "lcm", "perm", "prod"}),
}
"""Stdlib modules a contract may import; a name set means only `from m import <those names>`."""

LEDGER_PACKAGE = "ledger"
"""Contracts may import the ledger's data types (`ledger.<module>`)..."""

FORBIDDEN_LEDGER_MODULES = frozenset({"ledger.store"})
"""...but not the storage engine."""

CONTRACT_PACKAGE = "contracts"
"""The package whose modules are contracts (and are checked and loaded by the runtime)."""

RUNTIME_MODULES = frozenset({"runtime", "determinism", "steps"})
"""Modules of the contract package that contracts may not import: the runtime itself."""

FORBIDDEN_NAMES = frozenset(
    {
        "__import__",
        "breakpoint",
        "compile",
        "complex",
        "datetime",
        "delattr",
        "dir",
        "eval",
        "exec",
        "exit",
        "float",
        "globals",
        "hash",
        "help",
        "id",
        "input",
        "locals",
        "memoryview",
        "open",
        "os",
        "print",
        "quit",
        "random",
        "secrets",
        "setattr",
        "sys",
        "time",
        "vars",
    }
)
"""Builtins and module names that give clocks, randomness, environment, files, I/O or introspection."""

FORBIDDEN_ATTRIBUTES = frozenset(
    {
        "builtins",
        "ctypes",
        "datetime",
        "gc",
        "importlib",
        "inspect",
        "io",
        "os",
        "pathlib",
        "platform",
        "random",
        "secrets",
        "shutil",
        "signal",
        "socket",
        "subprocess",
        "sys",
        "threading",
        "time",
        "uuid",
    }
)
"""Attribute names that would reach such a module through another module's globals."""

ALLOWED_DUNDERS = frozenset({"__init__", "__post_init__", "__name__", "__future__"})
"""The only dunder names a contract may spell."""

NAMED_ATTRIBUTE_BUILTINS = frozenset({"getattr", "hasattr"})
"""Builtins taking an attribute name: allowed with a literal, non-dunder name only."""

BROAD_EXCEPTIONS = frozenset({"BaseException", "Exception", "MemoryError", "RecursionError"})
"""Exception classes a contract may not catch."""

UNORDERED_CONSTRUCTORS = frozenset({"set", "frozenset"})
"""Calls that build a set."""

SET_METHODS = frozenset({"union", "intersection", "difference", "symmetric_difference"})
"""Methods that return a set."""

SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
"""Binary operators that yield a set when an operand is a set (or a dict key view)."""

DICT_VIEWS = frozenset({"keys", "items"})
"""Dict views: a set operation on them returns a set."""

ORDER_SENSITIVE_CALLS = frozenset(
    {"enumerate", "iter", "list", "map", "filter", "next", "repr", "reversed", "str", "tuple", "zip"}
)
"""Builtins whose result depends on the order of their argument."""

ORDER_SENSITIVE_METHODS = frozenset({"extend", "join"})
"""Methods whose result depends on the order of their argument."""


class ContractRefused(LedgerError):
    """A contract module that the runtime will not load, and why."""

    code = "contract_refused"

    def __init__(self, module: str, line: int, reason: str) -> None:
        super().__init__(f"contract module {module!r} refused at line {line}: {reason}")
        self.module = module
        self.line = line
        self.reason = reason


def is_allowed_import(module: str, names: tuple[str, ...] | None) -> bool:
    """May a contract import `module` (`import module` when `names` is None, else `from module import names`)?"""
    if module in ALLOWED_IMPORTS:
        allowed = ALLOWED_IMPORTS[module]
        return allowed is None or (names is not None and set(names) <= allowed)
    if module.startswith(LEDGER_PACKAGE + "."):
        return module not in FORBIDDEN_LEDGER_MODULES
    if module == CONTRACT_PACKAGE:
        return names is not None and not set(names) & RUNTIME_MODULES
    if module.startswith(CONTRACT_PACKAGE + "."):
        return module.split(".")[1] not in RUNTIME_MODULES
    return False


def check_module(module: str, source: str, filename: str = "<contract>") -> ast.Module:
    """Parse and check a contract module's source; return its tree or raise `ContractRefused`."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise ContractRefused(module, exc.lineno or 0, f"syntax error: {exc.msg}") from exc
    _Checker(module).check(tree)
    return tree


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def _call_name(node: ast.expr) -> str | None:
    """The bare function name of a call (`f(...)`), if it is one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _is_set_annotation(node: ast.expr | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute):
        return node.attr in {"Set", "AbstractSet", "FrozenSet", "MutableSet"}
    if isinstance(node, ast.Name):
        return node.id in {"set", "frozenset", "Set", "AbstractSet", "FrozenSet", "MutableSet"}
    return (
        isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(("set[", "frozenset["))
    )


def _scope_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of a scope's body, without descending into nested functions or classes."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                stack.append(child)


class _Checker(ast.NodeVisitor):
    """Walks one module; raises `ContractRefused` at the first problem."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.set_names: list[frozenset[str]] = []
        """Names known to hold sets, one entry per enclosing scope."""

    def check(self, tree: ast.Module) -> None:
        self.set_names.append(self._collect_set_names(tree.body, ()))
        self.generic_visit(tree)

    def refuse(self, node: ast.AST, reason: str) -> None:
        raise ContractRefused(self.module, getattr(node, "lineno", 0), reason)

    # scopes and annotations

    def _collect_set_names(self, body: list[ast.stmt], args: tuple[ast.arg, ...]) -> frozenset[str]:
        names = {a.arg for a in args if _is_set_annotation(a.annotation)}
        for node in _scope_nodes(body):
            if isinstance(node, ast.Assign) and self.is_unordered(node.value):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and self._is_set_binding(node):
                names.add(node.target.id)
        return frozenset(names)

    def _is_set_binding(self, node: ast.AnnAssign) -> bool:
        return _is_set_annotation(node.annotation) or (node.value is not None and self.is_unordered(node.value))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._check_name(node, node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        all_args = (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)
        extra = tuple(a for a in (node.args.vararg, node.args.kwarg) if a is not None)
        for arg in (*all_args, *extra):
            self._check_name(arg, arg.arg)
        for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)):
            self.visit(default)
        self.set_names.append(self._collect_set_names(node.body, all_args) | self.set_names[-1])
        for statement in node.body:
            self.visit(statement)
        self.set_names.pop()

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.refuse(node, "async code has no place in a contract")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_name(node, node.name)
        for child in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(child)
        for statement in node.body:
            self.visit(statement)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_name(node, node.arg)

    # imports

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not is_allowed_import(alias.name, None):
                self.refuse(node, f"import of {alias.name!r} is outside the allow-list")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            module = CONTRACT_PACKAGE + ("." + module if module else "")
        names = tuple(alias.name for alias in node.names)
        if "*" in names:
            self.refuse(node, f"star import from {module!r}")
        if not is_allowed_import(module, names):
            self.refuse(node, f"import of {', '.join(names)} from {module!r} is outside the allow-list")

    # floats

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, float | complex):
            self.refuse(node, f"float literal {node.value!r}: use integers (minor units)")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Div):
            self.refuse(node, "true division `/` gives a float: use `//` (and say how it rounds)")
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.UnaryOp) and isinstance(node.right.op, ast.USub):
            self.refuse(node, "a negative exponent gives a float")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Div):
            self.refuse(node, "true division `/=` gives a float: use `//=`")
        self.generic_visit(node)

    # clocks, randomness, environment, I/O, introspection

    def _check_name(self, node: ast.AST, name: str) -> None:
        if name in FORBIDDEN_NAMES:
            self.refuse(node, f"{name!r} is not allowed in a contract (clock, randomness, environment, I/O or float)")
        if _is_dunder(name) and name not in ALLOWED_DUNDERS:
            self.refuse(node, f"dunder name {name!r} is not allowed in a contract")

    def visit_Name(self, node: ast.Name) -> None:
        self._check_name(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in FORBIDDEN_ATTRIBUTES:
            self.refuse(node, f"attribute {node.attr!r} is not allowed in a contract")
        if _is_dunder(node.attr) and node.attr not in ALLOWED_DUNDERS:
            self.refuse(node, f"dunder attribute {node.attr!r} is not allowed in a contract")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self.refuse(node, "`global` would keep state between txs outside the ledger")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.refuse(node, "`nonlocal` is not allowed in a contract")

    def visit_Await(self, node: ast.Await) -> None:
        self.refuse(node, "async code has no place in a contract")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        for kind in caught:
            name = kind.id if isinstance(kind, ast.Name) else kind.attr if isinstance(kind, ast.Attribute) else None
            if kind is None or name in BROAD_EXCEPTIONS:
                self.refuse(
                    node, f"catching {name or 'everything'} would hide machine-dependent failures: catch what you raise"
                )
        self.generic_visit(node)

    # set order

    def is_unordered(self, node: ast.expr) -> bool:
        """Does `node` evaluate to a set (whose iteration order is not reproducible)?"""
        if isinstance(node, ast.Set | ast.SetComp):
            return True
        if _call_name(node) in UNORDERED_CONSTRUCTORS:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SET_METHODS:
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, SET_OPERATORS):
            return any(self.is_unordered(side) or self._is_dict_view(side) for side in (node.left, node.right))
        if isinstance(node, ast.Name):
            return bool(self.set_names) and node.id in self.set_names[-1]
        return False

    @staticmethod
    def _is_dict_view(node: ast.expr) -> bool:
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DICT_VIEWS

    def _refuse_unordered(self, node: ast.expr, where: str) -> None:
        if self.is_unordered(node):
            self.refuse(node, f"{where} a set: its order differs between nodes; wrap it in sorted(...)")

    def visit_For(self, node: ast.For) -> None:
        self._refuse_unordered(node.iter, "for loop over")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._refuse_unordered(node.iter, "comprehension over")
        self.generic_visit(node)

    def visit_Starred(self, node: ast.Starred) -> None:
        self._refuse_unordered(node.value, "unpacking")
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        self._refuse_unordered(node.value, "formatting")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name in NAMED_ATTRIBUTE_BUILTINS:
            attr = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(attr, ast.Constant) and isinstance(attr.value, str) and not _is_dunder(attr.value)):
                self.refuse(node, f"{name} needs a literal, non-dunder attribute name in a contract")
        if name in ORDER_SENSITIVE_CALLS:
            for arg in node.args:
                self._refuse_unordered(arg, f"{name}() of")
        if isinstance(node.func, ast.Attribute):
            if node.func.attr in ORDER_SENSITIVE_METHODS:
                for arg in node.args:
                    self._refuse_unordered(arg, f".{node.func.attr}() of")
            if node.func.attr == "pop" and not node.args:
                self._refuse_unordered(node.func.value, ".pop() from")
        self.generic_visit(node)
