"""What the names of a notebook's module namespace stand for, as far as the statement rule knows.

The statement rule (``statements.py``) keeps an assignment whose calls are all
on its list of cheap calls, named in full (``numpy.random.default_rng``). A
call is resolved through the names the notebook's imports made, in the
imports cell and in any cell:

- ``import numpy as np`` makes ``np`` stand for ``numpy``, so
  ``np.random.default_rng(0)`` is ``numpy.random.default_rng``;
- ``import numpy.random as npr`` makes ``npr`` stand for ``numpy.random``;
  ``import numpy.random`` (no ``as``) binds ``numpy`` only;
- ``from numpy.random import default_rng as make_rng`` makes ``make_rng``
  stand for ``numpy.random.default_rng``; ``from numpy import random``
  makes ``random`` stand for ``numpy.random``;
- a builtin (``range``, ``len``) stands for itself until something rebinds it.

Only an import that runs gives a name a meaning. Any other statement that binds
the name, whether it runs to grade or not (``default_rng = my_function``,
``def default_rng(...)``, ``np = load()``, a ``for`` loop's variable, ``del``),
takes the meaning away from then on, so a call through that name is not
cheap. An import of the same thing that does not run (``import numpy as np;
train()`` on one line) leaves the meaning as it was. A relative import, or
``from x import *``, gives no name a meaning (and the names a ``*`` import
binds are not known).

A :class:`Scope` follows this statement by statement. It also holds the names
the kept statements bind (``bound``: the grader's run), which the rule uses to
skip an assignment that reads a name only code that is not run defines.
"""

from __future__ import annotations

import ast
import builtins

_BUILTINS = frozenset(dir(builtins))
REBOUND = "<rebound>"  # the meaning of a name an import gave a meaning and something else rebound since
_MISSING = object()
# Without the names of the imports cell (``Scope(strict=False)``), these heads are read as the usual imports.
CONVENTIONAL = {"np": "numpy", "numpy": "numpy", "tf": "tensorflow", "tensorflow": "tensorflow", "math": "math"}


def import_bindings(node) -> dict:
    """name -> the full dotted name it stands for (None when unknown) after an import statement."""
    if isinstance(node, ast.Import):
        return {(a.asname or a.name.split(".")[0]): (a.name if a.asname else a.name.split(".")[0]) for a in node.names}
    if isinstance(node, ast.ImportFrom):
        known = node.module if node.level == 0 else None
        return {(a.asname or a.name): (f"{known}.{a.name}" if known else None) for a in node.names if a.name != "*"}
    return {}


def names_bound_within(node) -> dict:
    """Every module-level name a statement may bind, nested blocks included: name -> import path or None.

    Conservative: names bound inside nested blocks (an ``if``'s body, a loop's
    target, an ``except ... as e``) count; the bodies of functions, lambdas and
    classes (their own scopes) do not, but their names, decorators and default
    values do. Walrus targets count wherever they are.
    """
    found: dict = {}

    def add(name, full=None):
        found[name] = full if found.get(name, full) == full else None

    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if not isinstance(item, ast.Lambda):
                add(item.name)
                stack.extend(item.decorator_list)
            stack.extend(item.args.defaults + [d for d in item.args.kw_defaults if d is not None])
            continue
        if isinstance(item, ast.ClassDef):
            add(item.name)
            stack.extend(item.decorator_list + item.bases + [k.value for k in item.keywords])
            continue
        if isinstance(item, (ast.Import, ast.ImportFrom)):
            for name, full in import_bindings(item).items():
                add(name, full)
        elif isinstance(item, ast.Name) and isinstance(item.ctx, (ast.Store, ast.Del)):
            add(item.id)
        elif isinstance(item, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and item.name:
            add(item.name)
        elif isinstance(item, ast.MatchMapping) and item.rest:
            add(item.rest)
        elif isinstance(item, ast.comprehension):  # its target is the comprehension's own
            stack.extend([item.iter] + item.ifs)
            continue
        stack.extend(ast.iter_child_nodes(item))
    return found


def top_level_bindings(node, names: list) -> dict:
    """name -> import path or None for what a statement that runs binds (``names``: its bound names)."""
    imported = import_bindings(node)
    return {name: imported.get(name) for name in names}


class Scope:
    """The names bound so far and what each stands for; changes since :meth:`begin` can be undone."""

    def __init__(self, strict: bool = True):
        self.strict = strict  # whether a name must be bound by a kept statement (or be a builtin) to be used
        self.bound: set = set()  # names the kept statements bind
        self.meaning: dict = {}  # name -> full dotted name (an import), None, or REBOUND
        self._journal: list | None = None

    def __contains__(self, name) -> bool:
        return name in self.bound

    def copy(self) -> Scope:
        other = Scope(self.strict)
        other.bound, other.meaning = set(self.bound), dict(self.meaning)
        return other

    # ----------------------------------------------------------- what a name stands for

    def resolve(self, dotted: str) -> str | None:
        """The full name a dotted call name stands for (``numpy.random.default_rng``), or None."""
        head, dot, rest = dotted.partition(".")
        meaning = self.meaning.get(head, _MISSING)
        if meaning is _MISSING:
            meaning = CONVENTIONAL.get(head) if not self.strict else None
            if meaning is None and head in _BUILTINS:
                meaning = f"builtins.{head}"
        if not isinstance(meaning, str) or meaning == REBOUND:
            return None
        return meaning + dot + rest

    def rebound(self, dotted: str) -> bool:
        """Whether the head of ``dotted`` was an import's name and has been rebound since."""
        return self.meaning.get(dotted.partition(".")[0]) == REBOUND

    # ----------------------------------------------------------- statements

    def apply(self, node, kept: bool, names: list) -> None:
        """Follow one top-level statement: ``kept`` when it runs to grade; ``names`` what it binds then."""
        top = top_level_bindings(node, names) if kept else {}
        for name, full in names_bound_within(node).items():
            if name not in top and not (full is not None and self.meaning.get(name) == full):
                self._set_meaning(name, None)
        for name, full in top.items():
            if name not in self.bound:
                self._log(("bound", name))
                self.bound.add(name)
            self._set_meaning(name, full)

    def _set_meaning(self, name: str, full: str | None) -> None:
        old = self.meaning.get(name, _MISSING)
        if full is None and isinstance(old, str):
            full = REBOUND  # an import's name, rebound: say so when a call through it is refused
        self._log(("meaning", name, old))
        self.meaning[name] = full

    # ----------------------------------------------------------- undo

    def _log(self, change: tuple) -> None:
        if self._journal is not None:
            self._journal.append(change)

    def begin(self) -> None:
        """Start recording changes, to keep them (:meth:`commit`) or undo them (:meth:`rollback`)."""
        self._journal = []

    def commit(self) -> None:
        self._journal = None

    def rollback(self) -> None:
        for change in reversed(self._journal or []):
            if change[0] == "bound":
                self.bound.discard(change[1])
            elif change[2] is _MISSING:
                self.meaning.pop(change[1], None)
            else:
                self.meaning[change[1]] = change[2]
        self._journal = None
