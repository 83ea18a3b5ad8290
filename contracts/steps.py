"""The step budget: how much work a tx may do, counted rather than timed.

A timeout would fire at different points on a fast and a slow node, so a
runaway rule would be accepted on one and refused on another. Instead each
contract module's syntax tree is instrumented when it is loaded: a step is
charged at every function entry, every loop iteration and every item a
comprehension draws (as a first, always true, condition of the
comprehension), and the call depth is tracked. Every node counts the same
steps for the same tx, so a tx that runs past `budget` steps (or nests calls
deeper than `max_depth`) fails with `StepBudgetExceeded` (or
`call_depth_exceeded`) identically everywhere.

Work done inside a builtin (`sorted`, `sum(range(n))`) is one step however
large; the budget bounds control flow, the tx size bounds the data.

A tx that carries many independent parts (the orders of an `order.import`)
gets a budget that grows with them, and runs each part under a budget of its
own (`StepMeter.run_part`, reached by a rule as `ctx.run_part`): a part that
runs out is refused alone, never the whole tx.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, TypeVar

from contracts.errors import Rejected, StepBudgetExceeded

STEP = "__step__"
"""Name of the charge for one loop iteration."""

ENTER = "__step_enter__"
"""Name of the charge for a function entry (also counts depth)."""

LEAVE = "__step_leave__"
"""Name of the depth release at function exit."""

LEAVE_VALUE = "__step_leave_value__"
"""Name of the depth release that passes a lambda's value through."""

T = TypeVar("T")


class CallDepthExceeded(Rejected):
    """A tx whose calls nested deeper than allowed (the same on every node)."""

    def __init__(self, max_depth: int) -> None:
        super().__init__("call_depth_exceeded", f"tx nested calls deeper than {max_depth}")


class StepMeter:
    """Counts the steps and call depth of the tx being executed."""

    __slots__ = ("budget", "depth", "failure", "max_depth", "remaining")

    def __init__(self) -> None:
        self.budget = 0
        self.remaining = 0
        """Steps left; negative once the budget is spent."""
        self.depth = 0
        self.max_depth = 0
        self.failure: Rejected | None = None
        """The budget failure raised, kept so that a rule cannot swallow it."""

    def reset(self, budget: int, max_depth: int) -> None:
        """Start counting for one tx (or one block hook)."""
        self.budget = budget
        self.remaining = budget
        self.depth = 0
        self.max_depth = max_depth
        self.failure = None

    @property
    def used(self) -> int:
        return self.budget - self.remaining

    def _fail(self, error: Rejected) -> None:
        if self.failure is None:
            self.failure = error
        raise self.failure

    def step(self) -> bool:
        """Charge one step; true, so that it can stand as a comprehension condition."""
        self.remaining -= 1
        if self.remaining < 0:
            self._fail(StepBudgetExceeded(self.budget))
        return True

    def enter(self) -> None:
        self.remaining -= 1
        self.depth += 1
        if self.remaining < 0:
            self._fail(StepBudgetExceeded(self.budget))
        if self.depth > self.max_depth:
            self._fail(CallDepthExceeded(self.max_depth))

    def leave(self) -> None:
        self.depth -= 1

    def leave_value(self, value: T) -> T:
        self.depth -= 1
        return value

    def run_part(self, budget: int, part: Callable[..., T], *args: Any) -> T:
        """Run one part of a tx, `part(*args)` (one order of an import), under `budget` steps of its own: a part
        that runs out fails alone, with `StepBudgetExceeded` raised to the rule, which refuses that part and
        goes on. The steps the part took count against the tx all the same."""
        outer_budget, outer_failure, start = self.budget, self.failure, self.remaining
        self.budget = self.remaining = budget
        self.failure = None
        try:
            result = part(*args)
            if self.failure is not None:
                raise self.failure
            return result
        finally:
            used = self.budget - self.remaining
            self.budget, self.failure = outer_budget, outer_failure
            self.remaining = start - used

    def get_globals(self) -> dict[str, Callable[..., Any]]:
        """The charge functions an instrumented module calls, by the names the instrumentation uses."""
        return {
            STEP: self.step,
            ENTER: self.enter,
            LEAVE: self.leave,
            LEAVE_VALUE: self.leave_value,
        }


def _charge(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


def _is_generator(node: ast.FunctionDef) -> bool:
    """Does this function's own body (not a nested one) yield?"""
    stack: list[ast.AST] = list(node.body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(child))
    return False


class _Instrumenter(ast.NodeTransformer):
    """Inserts the step charges into a checked module tree."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        body = node.body
        docstring = (
            body[:1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else []
        )
        rest = body[len(docstring) :] or [ast.Pass()]
        if _is_generator(node):
            # A suspended generator holds no depth: its frame is released by the garbage collector, not by the rule.
            node.body = [*docstring, ast.Expr(_charge(STEP)), *rest]
        else:
            guarded = ast.Try(body=rest, handlers=[], orelse=[], finalbody=[ast.Expr(_charge(LEAVE))])
            node.body = [*docstring, ast.Expr(_charge(ENTER)), guarded]
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        self.generic_visit(node)
        pair = ast.Tuple(elts=[_charge(ENTER), _charge(LEAVE_VALUE, node.body)], ctx=ast.Load())
        node.body = ast.Subscript(value=pair, slice=ast.Constant(value=1), ctx=ast.Load())
        return node

    def _charge_loop(self, node: ast.For | ast.While) -> ast.For | ast.While:
        self.generic_visit(node)
        node.body.insert(0, ast.Expr(_charge(STEP)))
        return node

    def visit_For(self, node: ast.For) -> ast.For | ast.While:
        return self._charge_loop(node)

    def visit_While(self, node: ast.While) -> ast.For | ast.While:
        return self._charge_loop(node)

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.ifs.insert(0, _charge(STEP))
        return node


def instrument(tree: ast.Module) -> ast.Module:
    """Insert step charges into a module tree (in place) and return it ready to compile."""
    _Instrumenter().visit(tree)
    return ast.fix_missing_locations(tree)
