"""The one statement rule: which top-level statements of a notebook cell run to grade.

A notebook is graded by its definitions, taken from every code cell in
notebook order; its demos and training are never run. This module is the
rule and nothing else; the trusted side applies it once per cell
(``grading/notebook.py`` for a submission, ``grading/catalogue.py`` for the
reference), and the sandbox runs the source it produced (statements that do
not run are blanked out, line numbers kept). Nothing here runs in the sandbox.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from autograder.sandbox.scope import Scope

# What runs to grade. A notebook is graded by its definitions, taken from
# every code cell in notebook order; its demos and training are never run.
# The rule (stated to learners in each notebook's first cell):
#
# - imports, ``def``/``async def`` and ``class`` statements are kept (their
#   decorators, default values and class bodies run, as in Jupyter);
# - an assignment to plain names (``x = ...``, ``a, b = ...``, ``x: T = ...``,
#   ``x += ...``) is kept when its value is *cheap*: literals, names, attribute
#   reads (``np.pi``), arithmetic, comparisons, boolean and conditional
#   expressions, lambdas, tuples/lists/sets/dicts of those, and calls of
#   CHEAP_CALLS whose arguments are cheap too. A call is resolved through the
#   names the notebook's imports made (``scope.py``): ``np.zeros`` after
#   ``import numpy as np``, ``npr.default_rng`` after ``import numpy.random as
#   npr``, ``make_rng`` after ``from numpy.random import default_rng as
#   make_rng``; a name rebound since its import (``default_rng = f``) or a
#   builtin rebound (``range = f``) no longer resolves;
# - when the caller knows the names that earlier kept statements bind
#   (a strict ``Scope``: the grader tracks them across cells), an assignment that
#   reads any other name is skipped as well, since that name would come from
#   code that is not run (``acc = acc_l2`` after a training cell);
# - everything else is skipped: calls (``model(...)``, ``print``,
#   ``np.random.seed``), loops, ``if``/``with``/``try`` blocks, ``del``, and
#   assignments to items or attributes (``os.environ[...] = ...``).
KEPT_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

# Calls that build a small value from their arguments and touch nothing else, by their full names.
CHEAP_CALLS = frozenset(
    [
        f"numpy.{name}"
        for name in (
            "array",
            "asarray",
            "zeros",
            "ones",
            "full",
            "eye",
            "identity",
            "arange",
            "linspace",
            "float16",
            "float32",
            "float64",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "bool_",
            "dtype",
            "random.default_rng",
            "random.RandomState",
            "random.SeedSequence",
        )
    ]
    + [f"tensorflow.{name}" for name in ("constant", "random.Generator.from_seed")]
    + ["math.sqrt", "math.log", "math.exp"]
    + [
        f"builtins.{name}"
        for name in (
            "range",
            "list",
            "tuple",
            "dict",
            "set",
            "frozenset",
            "int",
            "float",
            "complex",
            "str",
            "bool",
            "abs",
            "min",
            "max",
            "round",
            "len",
        )
    ]
)
_CHEAP_NODES = (
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.UnaryOp,
    ast.BinOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.Call,
    ast.Starred,
    ast.keyword,
    ast.expr_context,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)
_EXPRESSION_WORDS = {
    ast.Subscript: "reads an item (x[...])",
    ast.ListComp: "runs a comprehension",
    ast.SetComp: "runs a comprehension",
    ast.DictComp: "runs a comprehension",
    ast.GeneratorExp: "runs a generator",
    ast.NamedExpr: "assigns inside an expression",
    ast.Await: "awaits",
    ast.Yield: "yields",
    ast.YieldFrom: "yields",
    ast.JoinedStr: "formats a string",
}
_STATEMENT_WORDS = {
    ast.For: "a for loop",
    ast.AsyncFor: "a for loop",
    ast.While: "a while loop",
    ast.If: "an if block",
    ast.With: "a with block",
    ast.AsyncWith: "a with block",
    ast.Try: "a try block",
    ast.Delete: "del",
    ast.Assert: "an assert",
    ast.Raise: "a raise",
    ast.Return: "a return outside a function",
}


def blank_magic_lines(source: str) -> str:
    """Every line that starts with ``%`` or ``!`` blanked (line numbers kept)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def parse_cell(source: str) -> tuple[str, ast.Module]:
    """(the cell's Python source, its tree): IPython magics and shell escapes blanked when there are any.

    Python first: a cell that parses has no magic (``%`` or ``!`` opening a
    statement is not Python), and a continuation line that starts with ``%``
    (``"%d" \n % n``) is kept. Raises what ``ast.parse`` raises.
    """
    try:
        return source, ast.parse(source)
    except SyntaxError:
        cleaned = blank_magic_lines(source)
        if cleaned == source:
            raise
        return cleaned, ast.parse(cleaned)


def strip_magics(source: str) -> str:
    """The cell's source with IPython magics and shell escapes blanked, keeping line numbers."""
    try:
        return parse_cell(source)[0]
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return blank_magic_lines(source)


def dotted_name(node) -> str | None:
    """``np.random.default_rng`` for that attribute chain; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _expression_problem(node, scope: Scope) -> str | None:
    """Why evaluating ``node`` is not cheap (see the rule above), or None when it is."""
    if isinstance(node, ast.Lambda):  # its body runs only when called
        defaults = node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
        return next(filter(None, (_expression_problem(d, scope) for d in defaults)), None)
    if isinstance(node, ast.Name):
        if scope.strict and node.id not in scope and scope.resolve(node.id) != f"builtins.{node.id}":
            return f"uses {node.id}, which only code that is not run defines"
        return None
    if isinstance(node, ast.Call):
        name = dotted_name(node.func)
        if name is None:
            return "calls a computed function()"
        if scope.resolve(name) not in CHEAP_CALLS:
            rebound = f" ({name.partition('.')[0]} was rebound after its import)" if scope.rebound(name) else ""
            return f"calls {name}(){rebound}"
    elif not isinstance(node, _CHEAP_NODES):
        return _EXPRESSION_WORDS.get(type(node), f"evaluates a {type(node).__name__}")
    return next(filter(None, (_expression_problem(c, scope) for c in ast.iter_child_nodes(node))), None)


def _target_names(target) -> list | None:
    """The names an assignment target binds; None when it writes into an object."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        names = [_target_names(t) for t in target.elts]
        return None if any(group is None for group in names) else [n for group in names for n in group or []]
    return None


def bound_names(node) -> list:
    """The names a kept statement binds (``from x import *`` binds none this rule can know)."""
    if isinstance(node, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [a.asname or a.name for a in node.names if a.name != "*"]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in _target_names(t) or []]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        return _target_names(node.target) or []
    return []


def skip_reason(node, scope: Scope | None = None) -> str | None:
    """Why a top-level statement is not run to grade, or None when it is kept (``scope``: the names so far)."""
    scope = Scope(strict=False) if scope is None else scope
    if isinstance(node, KEPT_STATEMENTS) or isinstance(node, (ast.Pass, ast.Global, ast.Nonlocal)):
        return None
    if isinstance(node, ast.Expr):
        if isinstance(node.value, ast.Constant):  # a bare string or number: nothing runs
            return None
        if isinstance(node.value, ast.Call):
            return f"calls {dotted_name(node.value.func) or 'a function'}()"
        return "an expression statement"
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(_target_names(t) is None for t in targets):
            return "assigns into an item or attribute"
        if node.value is None:
            return "an annotation without a value"
        parts = [node.value] + ([node.annotation] if isinstance(node, ast.AnnAssign) else [])
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            parts.append(ast.Name(id=node.target.id, ctx=ast.Load()))
        try:
            return next(filter(None, (_expression_problem(p, scope) for p in parts)), None)
        except RecursionError:
            return "an expression too deeply nested to inspect"
    return _STATEMENT_WORDS.get(type(node), f"a {type(node).__name__} statement")


def classify_statements(tree: ast.Module, bound: Scope | None = None) -> list:
    """[(statement, reason it is skipped or None)] for a cell's top-level statements.

    ``bound``: the names defined before this cell and what they stand for
    (preamble, earlier statements; builtins are implied); it is updated with
    what this cell's statements bind. None: a scope of this cell alone, without
    the name rule (``np``, ``tf`` and ``math`` read as the usual imports).
    """
    scope = Scope(strict=False) if bound is None else bound
    verdicts = []
    for node in tree.body:
        reason = skip_reason(node, scope)
        scope.apply(node, reason is None, bound_names(node))
        verdicts.append((node, reason))
    return verdicts


def graded_statements(tree: ast.Module, bound: Scope | None = None) -> tuple[list, list]:
    """Split a cell's top-level statements into (kept, skipped line numbers)."""
    kept, skipped = [], []
    for node, reason in classify_statements(tree, bound):
        if reason is None:
            kept.append(node)
        else:
            skipped.append(node.lineno)
    return kept, skipped


def preamble_names(preamble: str) -> tuple[Scope, frozenset]:
    """(the names the imports cell binds and what they stand for, the modules it gives every
    process: ``np`` for ``import numpy as np``), from one parse; empty when it does not parse.
    The imports cell runs whole, so every statement of it counts as kept."""
    bound = Scope()
    try:
        body = parse_cell(preamble)[1].body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return bound, frozenset()
    for node in body:
        bound.apply(node, True, bound_names(node))
    provided = frozenset(
        name.split(".")[0]
        for node in body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in bound_names(node)
    )
    return bound, provided


def statement_lines(node) -> range:
    """The lines a top-level statement spans, its decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return range(first, (node.end_lineno or node.lineno) + 1)


@dataclass
class CellRule:
    """What the rule makes of one cell: the source to run and what it binds, uses and skips."""

    runnable: str  # the source with every skipped statement blanked
    kept_names: list  # names the kept statements bind, in order
    skipped: list = field(default_factory=list)  # [(line range, reason)]
    defines: set = field(default_factory=set)  # top-level names the kept statements make
    uses: set = field(default_factory=set)  # names the kept statements read and do not make


def _line_groups(body: list) -> list:
    """The statements in runs that share lines (``x = 1; train()``), in order."""
    groups: list = []
    last = 0
    for node in body:
        span = statement_lines(node)
        if groups and span.start <= last:
            groups[-1].append(node)
        else:
            groups.append([node])
        last = max(last, span.stop - 1)
    return groups


def definitions_only(source: str, tree: ast.Module, bound: Scope, provided: frozenset = frozenset()) -> CellRule:
    """Apply the rule to a parsed cell (``tree`` is ``ast.parse(source)``; ``source`` magic-free).

    A kept statement sharing a line with a skipped one (``import x; train()``)
    is skipped too: a line is run whole or not at all, and what follows sees
    the names as they are without it. ``bound`` (the names defined before this
    cell) is updated. ``provided``: the modules the imports cell gives every
    process; a cell's own import of one is not a definition another cell needs
    (see :func:`kept_names_used`).
    """
    verdicts: list = []
    for group in _line_groups(tree.body):
        bound.begin()
        found = []
        for node in group:
            reason = skip_reason(node, bound)
            bound.apply(node, reason is None, bound_names(node))
            found.append((node, reason))
        if len(group) > 1 and any(reason for _, reason in found):
            bound.rollback()
            found = [(node, reason or "shares a line with code that is not run") for node, reason in found]
            for node, _ in found:
                bound.apply(node, False, [])
        bound.commit()
        verdicts += found
    lines = source.split("\n")
    kept, kept_names, skipped = [], [], []
    for node, reason in verdicts:
        if reason is None:
            kept.append(node)
            kept_names += bound_names(node)
            continue
        span = statement_lines(node)
        skipped.append((span, reason))
        for line in span:
            lines[line - 1] = ""
    defines, uses = kept_names_used(kept, provided)
    return CellRule("\n".join(lines), list(dict.fromkeys(kept_names)), skipped, defines, uses)


def kept_names_used(kept: list, provided: frozenset = frozenset()) -> tuple[set, set]:
    """(names the statements ``kept`` define, names they read and do not define themselves).

    The grader uses these to give each graded function's process only the
    cells it needs. An import of a module the imports cell already provides
    (``provided``) does not define it for other cells.
    """
    defined: set = set()
    for node in kept:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update(name.split(".")[0] for name in bound_names(node) if name.split(".")[0] not in provided)
        else:
            defined.update(bound_names(node))
    used = {n.id for node in kept for n in ast.walk(node) if isinstance(n, ast.Name)}
    return defined, used - defined
