"""The graded cells of a submission and which of them a graded function's child runs.

:class:`Cell` is one graded cell as sent to the child; :func:`cell_names`
works out the names each cell defines and uses, and :func:`cells_needed` the
cells a function needs (its own and, transitively, those defining the names
they use), so each graded function's child runs only those.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from autograder.sandbox.statements import kept_names_used, preamble_names


@dataclass
class Cell:
    """One graded cell of the submission, as sent to the child."""

    cell_id: str
    source: str  # what runs: the statement rule already applied (grading/notebook.py)
    functions: list
    # Top-level names the cell defines and the names it uses from other cells, from the
    # extraction's parse (None: worked out from ``source`` when the process starts).
    defines: set | None = None
    uses: set | None = None
    # A trusted step, not a learner cell: the request sent in its place (grading/stand_ins.py).
    trusted: dict | None = None


def cell_names(cells: list, preamble: str = "") -> tuple[dict, dict]:
    """(cell id -> top-level names it defines, cell id -> names it refers to).

    From the extraction's one parse of each cell where it gave them, else from
    the cell's source (every statement of which runs). A cell's ``import numpy
    as np`` does not define ``np`` for the others when the imports cell already
    does: another function's cell is not pulled in (with its definition-time
    side effects) for a module every child has.
    """
    provided: frozenset | None = None  # the imports cell's modules, parsed only if a cell needs them
    defines, uses = {}, {}
    for cell in cells:
        if cell.defines is not None and cell.uses is not None:
            defines[cell.cell_id], uses[cell.cell_id] = set(cell.defines), set(cell.uses)
            continue
        if provided is None:
            provided = preamble_names(preamble)[1]
        try:
            kept = ast.parse(cell.source).body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            defines[cell.cell_id], uses[cell.cell_id] = set(cell.functions), set()
            continue
        defined, used = kept_names_used(kept, provided)
        defines[cell.cell_id], uses[cell.cell_id] = defined | set(cell.functions), used - set(cell.functions)
    return defines, uses


def definers(cells: list, defines: dict) -> dict:
    """name -> the ids of the cells defining it (built once per submission, linear in its size)."""
    index: dict = {}
    for cell in cells:
        for name in defines[cell.cell_id]:
            index.setdefault(name, []).append(cell.cell_id)
    return index


def cells_needed(
    cells: list, defines: dict, uses: dict, names: set, index: dict | None = None, provided: frozenset = frozenset()
) -> list:
    """The cells defining ``names`` and, transitively, the names those cells use (in notebook order).

    A name no cell defines (a builtin, an imports-cell module) needs nothing;
    a function no cell defines leaves the child without it ("not defined").
    ``index`` is :func:`definers` of the same cells (built here without it): a
    worklist over names, each name and each cell visited once, so the walk is
    linear in the notebook's size however the cells depend on each other.
    ``provided``: names that need no cell (the child gets them otherwise: grading/stand_ins.py).
    """
    if index is None:
        index = definers(cells, defines)
    seen, needed, work = set(names) | set(provided), set(), list(set(names) - set(provided))
    while work:
        for cell_id in index.get(work.pop(), ()):
            if cell_id not in needed:
                needed.add(cell_id)
                fresh = uses[cell_id] - seen
                seen |= fresh
                work.extend(fresh)
    return [cell for cell in cells if cell.cell_id in needed]
