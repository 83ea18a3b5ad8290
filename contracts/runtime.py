"""The contract runtime: loads the domain rules, checks them, and runs every block through them.

`load_contracts()` reads each module named in `CONTRACT_MODULES` (and every
contract module they import), refuses it unless it passes the determinism
check (`contracts.determinism`), instruments it with step charges
(`contracts.steps`), hashes its source, and executes it in a namespace of its
own, with a reduced set of builtins and an import that only reaches the
allow-list. The node calls `ContractSet.execute_block` for every block:

1. the contract version pins are checked (`contract/<module>` in the world
   state; the running sources are pinned at the first block): a node whose
   source differs stops with `ContractVersionMismatch` rather than fork;
2. each module's `begin_block(state, ctx)` hook runs, in registry order;
3. each tx is checked (known signer, known kind, a role allowed to send it)
   and dispatched to `process_<kind>` inside a savepoint, under the step
   budget (times one plus the parts it carries, for a kind that a module's
   `STEP_PARTS` names: each part then runs under the step budget of its own
   through `ctx.run_part`). On success the writes are kept; a `Rejected` rolls them back into
   a receipt with its code and message.

Any other exception from a rule is a bug in the rule. It is still
deterministic, since every node runs the same pinned source on the same state
and tx, so it rejects the tx with code `contract_error` and only the
exception's type name as message (messages may hold reprs that differ between
processes), and the chain goes on. The exceptions that depend on the machine
rather than the ledger (`MemoryError`, `RecursionError`) are not turned into
receipts: they propagate and stop the node. A failing `begin_block` hook is
rolled back and the block goes on without its writes, for the same reason.

Configuration is declared in one place per key (`contracts.settings`):
`RUNTIME_SETTINGS` here for the runtime's own settings, merged with the
`SETTINGS` that a contract module may export (a key declared twice, or a
default that does not fit its own spec, is refused at load). Rules see the
declared defaults overlaid with the values set on the ledger as `ctx.config`,
and the declarations as `ctx.settings`.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from contracts.context import BlockContext, TxContext
from contracts.determinism import CONTRACT_PACKAGE, ContractRefused, check_module, is_allowed_import
from contracts.errors import Rejected
from contracts.governance import CONFIG_KEY, CONTRACT_PREFIX, get_contract_key
from contracts.payload import describe, integer, read_payload, read_value
from contracts.settings import Setting, describe_setting
from contracts.steps import StepMeter, instrument
from ledger.block import Receipt
from ledger.encoding import decode, encode
from ledger.errors import EncodingError, LedgerError
from ledger.genesis import ROLES as KNOWN_ROLES
from ledger.genesis import Genesis
from ledger.idempotency import answer_repeat, prune_keys, record_key
from ledger.membership import MEMBERSHIP_KEY, Membership, decode_membership
from ledger.state import StateView
from ledger.tx import Tx

CONTRACTS_DIR = Path(__file__).resolve().parent
"""Where the contract modules' sources are."""

CONTRACT_MODULES: tuple[str, ...] = (
    "governance",
    "catalogue",
    "inventory",
    "orders",
    "personal",
    "review",
    "allocation",
    "payments",
    "fulfilment",
    "returns",
    "invoicing",
)
"""The contract modules whose rules the ledger runs, in the order their `begin_block` hooks run."""

SHARED_MODULES = frozenset({"errors", "context", "records"})
"""Modules of the contract package shared by rules and runtime as they are (types, not rules)."""

RUNTIME_SETTINGS = (
    Setting(integer("step_budget", 1_000, 5_000_000, default=200_000, doc="steps one tx may take"), governed=True),
    Setting(
        integer(
            "block_step_budget", 10_000, 50_000_000, default=2_000_000, doc="steps each `begin_block` hook may take"
        ),
        governed=True,
    ),
    Setting(integer("max_call_depth", 10, 200, default=100, doc="deepest call nesting of a tx or hook"), governed=True),
)
"""The runtime's own settings (all governed: they bound the work of a tx and of a block; the deepest nesting stays
well inside the interpreter's recursion limit). Contract modules add theirs through `SETTINGS`."""

SAFE_BUILTINS = [
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "format",
    "frozenset",
    "getattr",
    "hasattr",
    "hex",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "zip",
    "__build_class__",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "Exception",
    "IndexError",
    "KeyError",
    "LookupError",
    "NotImplementedError",
    "OverflowError",
    "RuntimeError",
    "StopIteration",
    "TypeError",
    "ValueError",
    "ZeroDivisionError",
    "NotImplemented",
    "Ellipsis",
]
"""The builtins a contract module can reach (the determinism check refuses the others by name too)."""

OK = "ok"
"""Receipt code of an accepted tx."""

LOAD_STEP_BUDGET = 1_000_000
"""Steps a contract module's top level may take when it loads (building its tables, e.g. payload specs)."""

LOAD_MAX_DEPTH = 100
"""Deepest call nesting of a contract module's top level when it loads."""


class ContractVersionMismatch(LedgerError):
    """This node's contract source is not the version pinned on the ledger: it stops rather than fork."""

    code = "contract_version_mismatch"

    def __init__(self, module: str, expected: str | None, local: str | None, height: int) -> None:
        super().__init__(
            f"contract module {module!r} at height {height}: the ledger pins sha256 {expected or '(none)'}, "
            f"this node runs {local or '(no such module)'}; install the pinned version to go on"
        )
        self.module = module
        self.expected = expected
        self.local = local
        self.height = height


@dataclass(frozen=True)
class ContractModule:
    """One loaded, checked and instrumented contract module."""

    name: str
    """Module name inside the contract package, e.g. `orders`."""
    sha256: str
    """Hex sha256 of the module's source bytes: what the ledger pins."""
    module: ModuleType
    roles: dict[str, frozenset[str]]
    """Tx kind -> roles allowed to sign it (empty for helper modules)."""
    payloads: dict[str, Any]
    """Tx kind -> the spec of its payload (`contracts.payload.Field`), for the kinds that declare one."""
    step_parts: dict[str, str]
    """Tx kind -> the list field of its payload whose items each get a step budget of their own."""


@dataclass(frozen=True)
class Rule:
    """How one tx kind is processed."""

    kind: str
    module: str
    roles: frozenset[str]
    process: Callable[[StateView, Tx, TxContext], Any]
    parts: str | None = None
    """The payload list whose items are the tx's parts (`STEP_PARTS`), each with a step budget of its own."""


def get_rule_name(kind: str) -> str:
    """`order.create` -> `process_order_create`."""
    return "process_" + kind.replace(".", "_")


def count_parts(rule: Rule, tx: Tx) -> int:
    """How many parts the tx carries, each given a step budget of its own (0 for a kind of one part)."""
    parts = tx.payload.get(rule.parts) if rule.parts is not None else None
    return len(parts) if isinstance(parts, list) else 0


def _reject(tx: Tx, code: str, message: str) -> Receipt:
    return Receipt(tx.id, False, code, message, {})


class _Loader:
    """Loads contract modules by name, each once, resolving their imports of one another."""

    def __init__(self, search_path: Sequence[Path], meter: StepMeter) -> None:
        self.search_path = tuple(search_path)
        self.meter = meter
        self.loaded: dict[str, ContractModule] = {}
        self.loading: list[str] = []
        self.builtins: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
        self.builtins["__import__"] = self.import_for_contract

    def find_source(self, name: str) -> Path:
        for directory in self.search_path:
            path = directory / f"{name}.py"
            if path.is_file():
                return path
        raise ContractRefused(name, 0, f"no source {name}.py in the contract search path")

    def load(self, name: str) -> ContractModule:
        if name in self.loaded:
            return self.loaded[name]
        if name in self.loading:
            raise ContractRefused(name, 0, f"circular import: {' -> '.join([*self.loading, name])}")
        self.loading.append(name)
        path = self.find_source(name)
        source = path.read_bytes()
        tree = instrument(check_module(name, source.decode(), str(path)))
        module = ModuleType(f"{CONTRACT_PACKAGE}.{name}")
        module.__dict__.update(self.meter.get_globals())
        module.__dict__.update({"__builtins__": self.builtins, "__package__": CONTRACT_PACKAGE, "__file__": str(path)})
        try:
            self.meter.reset(LOAD_STEP_BUDGET, LOAD_MAX_DEPTH)
            exec(compile(tree, str(path), "exec"), module.__dict__)
        except ContractRefused:
            raise
        except Exception as exc:
            raise ContractRefused(name, 0, f"failed to load: {type(exc).__name__}: {exc}") from exc
        roles = _get_roles(name, module)
        loaded = ContractModule(
            name=name,
            sha256=hashlib.sha256(source).hexdigest(),
            module=module,
            roles=roles,
            payloads=_get_payloads(name, module, roles),
            step_parts=_get_step_parts(name, module, roles),
        )
        self.loading.pop()
        self.loaded[name] = loaded
        return loaded

    def import_for_contract(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: dict[str, Any] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        """The `__import__` contract modules run with: contract modules come from this loader, the rest only
        from the allow-list."""
        if level:
            name = importlib.util.resolve_name("." * level + name, CONTRACT_PACKAGE)
        names = tuple(fromlist) if fromlist else None
        if not is_allowed_import(name, names):
            raise ImportError(f"contracts may not import {name}")
        package, _, submodule = name.partition(".")
        if package != CONTRACT_PACKAGE:
            return importlib.__import__(name, globals, locals, fromlist or (), 0)
        if not submodule:
            return SimpleNamespace(**{n: self.get_contract_attribute(n) for n in names or ()})
        target = self.get_contract_attribute(submodule)
        return target if names else SimpleNamespace(**{submodule: target})

    def get_contract_attribute(self, name: str) -> ModuleType:
        """A module of the contract package as a contract sees it: shared as is, contracts through the loader."""
        if name in SHARED_MODULES:
            return importlib.import_module(f"{CONTRACT_PACKAGE}.{name}")
        return self.load(name).module


def _get_roles(name: str, module: ModuleType) -> dict[str, frozenset[str]]:
    """A module's `ROLES` table, checked: known roles, and a `process_<kind>` function for each kind."""
    roles = module.__dict__.get("ROLES", {})
    if not isinstance(roles, dict):
        raise ContractRefused(name, 0, "ROLES must be a dict of tx kind -> frozenset of roles")
    for kind, allowed in roles.items():
        if not isinstance(kind, str) or not isinstance(allowed, frozenset) or not allowed <= KNOWN_ROLES:
            raise ContractRefused(name, 0, f"ROLES[{kind!r}] must be a frozenset of roles among {sorted(KNOWN_ROLES)}")
        if not callable(module.__dict__.get(get_rule_name(kind))):
            raise ContractRefused(name, 0, f"tx kind {kind!r} has no function {get_rule_name(kind)}")
    return dict(roles)


def _get_payloads(name: str, module: ModuleType, roles: dict[str, frozenset[str]]) -> dict[str, Any]:
    """A module's `PAYLOADS` table, checked: a payload spec (a `map` field) for kinds of its own `ROLES`."""
    payloads = module.__dict__.get("PAYLOADS", {})
    if not isinstance(payloads, dict):
        raise ContractRefused(name, 0, "PAYLOADS must be a dict of tx kind -> payload spec")
    for kind, spec in payloads.items():
        if kind not in roles:
            raise ContractRefused(name, 0, f"PAYLOADS[{kind!r}] names a tx kind this module does not handle")
        if getattr(spec, "type", None) != "map":
            raise ContractRefused(name, 0, f"PAYLOADS[{kind!r}] must be a payload spec (`payload.payload(...)`)")
    return dict(payloads)


def _get_step_parts(name: str, module: ModuleType, roles: dict[str, frozenset[str]]) -> dict[str, str]:
    """A module's `STEP_PARTS` table, checked: kinds of its own `ROLES`, each naming a field of its payload."""
    parts = module.__dict__.get("STEP_PARTS", {})
    if not isinstance(parts, dict):
        raise ContractRefused(name, 0, "STEP_PARTS must be a dict of tx kind -> payload list field")
    for kind, field_name in parts.items():
        if kind not in roles or not isinstance(field_name, str):
            raise ContractRefused(name, 0, f"STEP_PARTS[{kind!r}] must name a list field of a kind of this module")
    return dict(parts)


class ContractSet:
    """The loaded contracts of one node: what the executor runs blocks through."""

    def __init__(self, modules: Sequence[ContractModule], registry: Sequence[str], meter: StepMeter) -> None:
        self.modules = {module.name: module for module in modules}
        """Every loaded contract module (the registry and the helpers they import), by name."""
        self.registry = tuple(registry)
        self.meter = meter
        self.rules: dict[str, Rule] = {}
        self.payloads: dict[str, Any] = {
            kind: spec for module in self.modules.values() for kind, spec in module.payloads.items()
        }
        """Tx kind -> the spec of its payload, as its module declares it."""
        self.settings: dict[str, Setting] = {}
        """Every declared configuration key: `RUNTIME_SETTINGS` and each module's `SETTINGS`, by key."""
        self.defaults: dict[str, Any] = {}
        """Effective configuration defaults: the default of every declared key."""
        self._declare("runtime", RUNTIME_SETTINGS)
        self.hooks: list[Callable[[StateView, BlockContext], None]] = []
        for name in self.registry:
            self._register(self.modules[name])
        self._config_cache: tuple[bytes | None, bytes] = (None, encode(self.defaults))

    def _register(self, module: ContractModule) -> None:
        namespace = module.module.__dict__
        for kind, roles in module.roles.items():
            if kind in self.rules:
                raise ContractRefused(
                    module.name, 0, f"tx kind {kind!r} is already handled by {self.rules[kind].module}"
                )
            process = namespace[get_rule_name(kind)]
            self.rules[kind] = Rule(kind, module.name, roles, process, module.step_parts.get(kind))
        self._declare(module.name, namespace.get("SETTINGS", ()))
        hook = namespace.get("begin_block")
        if callable(hook):
            self.hooks.append(hook)

    def _declare(self, name: str, settings: Any) -> None:
        """Add module `name`'s settings: each a `Setting` of a new key whose default fits its spec and is ledger
        data."""
        if not isinstance(settings, tuple):
            raise ContractRefused(name, 0, "SETTINGS must be a tuple of `settings.Setting`")
        for setting in settings:
            spec: Any = getattr(setting, "spec", None)
            key = getattr(spec, "name", None)
            if not isinstance(key, str) or not isinstance(getattr(setting, "governed", None), bool):
                raise ContractRefused(name, 0, "SETTINGS must be a tuple of `settings.Setting`")
            if key in self.settings:
                raise ContractRefused(name, 0, f"config key {key!r} is already declared elsewhere")
            try:
                read_value(spec, spec.default)
                encode(spec.default)
            except (Rejected, EncodingError) as exc:
                raise ContractRefused(name, 0, f"the default of config key {key!r} does not fit: {exc}") from exc
            self.settings[key] = setting
            self.defaults[key] = spec.default

    def setting_specs(self) -> dict[str, dict[str, Any]]:
        """Config key -> its declaration as plain data (`contracts.settings.describe_setting`), in key order."""
        return {key: describe_setting(self.settings[key]) for key in sorted(self.settings)}

    def customer_keys(self) -> list[str]:
        """The config keys whose values name customers (`Setting.names_customers`), in key order."""
        return [key for key in sorted(self.settings) if self.settings[key].names_customers]

    def governed_keys(self) -> list[str]:
        """The config keys only governance changes, in key order."""
        return [key for key in sorted(self.settings) if self.settings[key].governed]

    def required_roles(self, kind: str) -> frozenset[str] | None:
        """Roles of which a signer needs one to send `kind`; None for a kind no contract handles."""
        rule = self.rules.get(kind)
        return None if rule is None else rule.roles

    def payload_specs(self) -> dict[str, dict[str, Any]]:
        """Tx kind -> the spec of its payload as plain data (`contracts.payload.describe`), in kind order."""
        return {kind: describe(self.payloads[kind]) for kind in sorted(self.payloads) if kind in self.rules}

    def check_payload(self, kind: str, payload: dict[str, Any]) -> None:
        """Refuse with `Rejected` code `bad_payload`, naming the field, a payload of `kind` that does not fit the
        kind's declared spec: a field outside it, missing, or of another type or bounds. Stateless, so admission
        runs it before a tx may enter a block, and a payload refused here never reaches the ledger."""
        spec = self.payloads.get(kind)
        if spec is not None:
            read_payload(spec, payload)

    def versions(self) -> dict[str, str]:
        """Module name -> hex sha256 of its source, for every loaded contract module."""
        return {name: self.modules[name].sha256 for name in sorted(self.modules)}

    def get_config(self, state: StateView) -> dict[str, Any]:
        """The effective configuration: defaults overlaid with the values set on the ledger (a fresh copy)."""
        raw = state.get_raw(CONFIG_KEY.encode())
        cached_raw, merged = self._config_cache
        if raw != cached_raw:
            values = {} if raw is None else decode(raw)
            merged = encode({**self.defaults, **values})
            self._config_cache = (raw, merged)
        # `merged` is this runtime's own encoding (checked as `encode` made it): no need to check it again
        config: dict[str, Any] = decode(merged, check=False)
        return config

    def check_versions(self, state: StateView, height: int) -> None:
        """Switch the pins that take effect at `height`, pin every module on a ledger that has no pins yet,
        and raise `ContractVersionMismatch` unless every pin matches the local source."""
        pins = {key.removeprefix(CONTRACT_PREFIX): record for key, record in state.scan(CONTRACT_PREFIX)}
        if not pins:
            for name, module in self.modules.items():
                state.put(get_contract_key(name), {"hash": module.sha256, "since_height": height})
            return
        for name, record in pins.items():
            scheduled = record.get("next")
            if scheduled is not None and scheduled["since_height"] <= height:
                pins[name] = {"hash": scheduled["hash"], "since_height": scheduled["since_height"]}
                state.put(get_contract_key(name), pins[name])
        for name, module in self.modules.items():
            expected = pins[name]["hash"] if name in pins else None
            if expected != module.sha256:
                raise ContractVersionMismatch(name, expected, module.sha256, height)
        for name, record in pins.items():
            if record["hash"] is not None and name not in self.modules:
                raise ContractVersionMismatch(name, record["hash"], None, height)

    def execute_block(self, state: StateView, txs: Sequence[Tx], ctx: BlockContext) -> list[Receipt]:
        """Run the block's hooks and txs on `state`; one receipt per tx, in order. A tx that repeats an
        idempotency key is answered by its record instead of run (`ledger.idempotency`)."""
        self.check_versions(state, ctx.height)
        prune_keys(state, ctx.time_ms)
        self._run_hooks(state, ctx)
        receipts = []
        for index, tx in enumerate(txs):
            receipt = answer_repeat(state, tx, ctx.time_ms)
            if receipt is None:
                receipt = self.execute_tx(state, tx, ctx, index)
                record_key(state, tx, ctx.time_ms)
            receipts.append(receipt)
        return receipts

    def _run_hooks(self, state: StateView, ctx: BlockContext) -> None:
        config = self.get_config(state)
        for hook in self.hooks:
            state.begin()
            self.meter.reset(int(config["block_step_budget"]), int(config["max_call_depth"]))
            try:
                hook(state, replace(ctx, config=self.get_config(state)))
            except (MemoryError, RecursionError):
                state.rollback()
                raise
            except Exception:
                state.rollback()
                continue
            if self.meter.failure is not None:
                state.rollback()
            else:
                state.commit()

    def execute_tx(self, state: StateView, tx: Tx, block: BlockContext, index: int) -> Receipt:
        """Check one tx's signer and kind, run its rule in a savepoint, and say what happened."""
        membership = read_membership(state, block.genesis)
        signer = membership.identity(tx.signer, block.height)
        if signer is None:
            return _reject(tx, "unknown_signer", f"signer {tx.signer!r} is not a member of this network")
        rule = self.rules.get(tx.kind)
        if rule is None:
            return _reject(tx, "unknown_kind", f"no contract handles tx kind {tx.kind!r}")
        if not signer.roles & rule.roles:
            return _reject(
                tx,
                "forbidden_role",
                f"{tx.signer} may not send {tx.kind}: it needs one of {', '.join(sorted(rule.roles))}",
            )
        config = self.get_config(state)
        budget = int(config["step_budget"])
        run_part = partial(self.meter.run_part, budget)
        ctx = TxContext(
            block.height,
            block.time_ms,
            index,
            tx.id,
            tx.kind,
            signer,
            config,
            block.genesis,
            self.settings,
            membership,
            run_part,
        )
        state.begin()
        self.meter.reset(budget * (1 + count_parts(rule, tx)), int(config["max_call_depth"]))
        try:
            result = rule.process(state, tx, ctx)
            if self.meter.failure is not None:
                raise self.meter.failure
            if not isinstance(result, dict):
                raise TypeError(f"{rule.kind} returned {type(result).__name__}, not a dict")
            encode(result)
        except (MemoryError, RecursionError):
            state.rollback()
            raise
        except Exception as exc:
            state.rollback()
            failure = self.meter.failure or exc
            if isinstance(failure, Rejected):
                return _reject(tx, failure.code, failure.message)
            return _reject(tx, "contract_error", type(failure).__name__)
        state.commit()
        return Receipt(tx.id, True, OK, "", result)


def read_membership(state: StateView, genesis: Genesis) -> Membership:
    """The membership in force in `state` (genesis's until governance changed it)."""
    return decode_membership(state.get_raw(MEMBERSHIP_KEY.encode()), genesis)


def load_contracts(
    modules: Sequence[str] = CONTRACT_MODULES, search_path: Sequence[Path] = (CONTRACTS_DIR,)
) -> ContractSet:
    """Load, check and instrument the contract modules `modules` (found in `search_path`) and what they import."""
    meter = StepMeter()
    loader = _Loader(search_path, meter)
    for name in modules:
        loader.load(name)
    return ContractSet(list(loader.loaded.values()), modules, meter)
