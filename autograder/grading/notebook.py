"""Read a submitted notebook and find its graded cells, recovering what can be.

Recovery rules (each recovery is noted in the report):
- invalid JSON, an empty file or a non-notebook: :class:`NotebookError` with
  the parser's reason; the submission scores 0 with that message;
- an old nbformat (v3 and earlier) is upgraded by nbformat; a notebook that
  fails schema validation is still graded if its cells can be read;
- a graded cell whose nbgrader metadata was lost is found by the graded
  function it defines (or by a ``# GRADED FUNCTION: name`` line);
- a function defined in several cells: the last definition is graded, as when
  the notebook runs top to bottom;
- a cell with a syntax error costs only the functions it defines.
"""
from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.grading.learner import Cell
from autograder.sandbox.child import strip_magics

MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
_DEF_RE = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)
_GRADED_RE = re.compile(r"^#\s*GRADED FUNCTION:\s*([A-Za-z_]\w*)", re.MULTILINE)


class NotebookError(Exception):
    """The file cannot be graded at all; ``str()`` explains why to the learner."""


@dataclass
class Extraction:
    """What the grader will run from one submission."""

    cells: list = field(default_factory=list)          # [Cell] in notebook order
    problems: dict = field(default_factory=dict)       # function -> why it cannot be graded
    notes: list = field(default_factory=list)          # recoveries and warnings for the report
    defined: set = field(default_factory=set)          # every top-level function name seen


def read_notebook(path: Path) -> tuple:
    """Return (notebook, notes). Raises NotebookError with a learner-readable reason."""
    path = Path(path)
    notes = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"cannot read {path.name}: {exc.strerror}")
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"{path.name} is {len(raw) // 2**20} MB; the limit is {MAX_NOTEBOOK_BYTES // 2**20} MB (clear large outputs)")
    if not raw.strip():
        raise NotebookError(f"{path.name} is empty")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise NotebookError(f"{path.name} is not a text file (is it really a .ipynb notebook?)")
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                            "the file was probably damaged: download it again from Jupyter")
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        raise NotebookError(f"{path.name} is JSON but not a Jupyter notebook (no cells)")
    major = data.get("nbformat")
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # nbformat raises several types for malformed documents
        raise NotebookError(f"{path.name} could not be read as a notebook: {str(exc)[:300]}")
    if isinstance(major, int) and major < 4:
        notes.append(f"the notebook was in the old nbformat {major} and was upgraded to nbformat 4")
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        notes.append(f"the notebook does not follow the nbformat schema ({exc.message[:200]}); it was graded anyway")
    return nb, notes


def nbgrader_meta(cell) -> dict:
    """A cell's nbgrader metadata, {} when missing or damaged (the one place that reads it)."""
    meta = cell.get("metadata", {}) or {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def top_level_functions(source: str):
    """(function names, syntax error message or None) for one cell's source."""
    cleaned = strip_magics(source)
    try:
        tree = ast.parse(cleaned)
    except SyntaxError as exc:
        names = _DEF_RE.findall(cleaned) + _GRADED_RE.findall(cleaned)
        return list(dict.fromkeys(names)), f"SyntaxError on line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return list(dict.fromkeys(_DEF_RE.findall(cleaned))), f"the cell cannot be parsed ({type(exc).__name__})"
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return names, None


def extract(nb, graded_functions: list) -> Extraction:
    """Choose the cells that define the graded functions."""
    result = Extraction()
    code_cells = [(i + 1, c) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    parsed = {}
    # function -> [(cell number, syntax error or None)] in notebook order
    definitions: dict = {name: [] for name in graded_functions}
    claimed_by_metadata: dict = {}
    for number, cell in code_cells:
        source = cell.get("source", "")
        if not isinstance(source, str):
            source = "".join(source) if isinstance(source, list) else ""
        names, error = top_level_functions(source)
        parsed[number] = (source, names, error)
        result.defined.update(names)
        for name in names:
            if name in definitions:
                definitions[name].append((number, error))
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in definitions:
            claimed_by_metadata[grade_id] = number

    chosen: dict = {}
    for name in graded_functions:
        places = definitions[name]
        if not places:
            result.problems[name] = _missing_message(name, claimed_by_metadata.get(name), parsed, result.defined)
            continue
        if len(places) > 1:
            numbers = ", ".join(str(n) for n, _ in places)
            result.notes.append(f"{name} is defined in cells {numbers}; the last one (cell {places[-1][0]}) was graded, "
                                "as when the notebook runs top to bottom")
        number, error = places[-1]
        if error:
            result.problems[name] = f"{name} could not be graded: cell {number} has a {error}"
            continue
        chosen.setdefault(number, []).append(name)

    for number in sorted(chosen):
        source, names, _ = parsed[number]
        result.cells.append(Cell(str(number), source, chosen[number]))
    if code_cells and not any(nbgrader_meta(c) for _, c in code_cells):
        result.notes.append("no cell carries nbgrader metadata (lost or stripped); graded cells were found by the functions they define")
    return result


def _missing_message(name: str, claimed_cell, parsed: dict, defined: set) -> str:
    message = f"{name} is not defined in the notebook"
    if claimed_cell is not None:
        other = parsed[claimed_cell][1]
        if other:
            message += f"; its cell (cell {claimed_cell}) defines {', '.join(other)} instead"
    close = difflib.get_close_matches(name, sorted(defined), n=1, cutoff=0.75)
    if close and close[0] != name:
        message += f". Did you rename it to {close[0]}? Keep the name {name}"
    return message + "."


def detect_assignment(nb, catalogue: dict) -> str | None:
    """The assignment a notebook belongs to: metadata first, then graded names.

    ``catalogue`` maps assignment name -> list of graded function names.
    """
    meta = nb.get("metadata", {}).get("dlgrade", {})
    name = meta.get("assignment") if isinstance(meta, dict) else None
    if name in catalogue:
        return name
    seen = set()
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            seen.update(top_level_functions(cell.get("source", "") if isinstance(cell.get("source"), str) else "")[0])
            seen.add(nbgrader_meta(cell).get("grade_id"))
    scores = {a: len(seen & set(fns)) / max(len(fns), 1) for a, fns in catalogue.items()}
    best = max(scores.values(), default=0)
    winners = [a for a, s in scores.items() if s == best]
    if best == 0 or len(winners) != 1:
        return None
    return winners[0]
