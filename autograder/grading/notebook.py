"""Read a submitted notebook, find its graded functions and the definitions of every cell.

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

What runs: the definitions of *every* code cell, in notebook order, so a
graded function may use a helper, a constant or an import from another cell,
as when the notebook runs top to bottom in Jupyter. The statement rule is
``autograder.sandbox.child.skip_reason`` (imports, def/class, assignments of
cheap values; never calls, loops or training); here it is applied with the
names bound so far, and the skipped statements are blanked out of the source
sent to the sandbox (line numbers kept for tracebacks). Each cell is still run
on its own, so a cell that fails costs only what it defines.
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
from autograder.sandbox.child import bound_names, classify_statements, strip_magics

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
    cell_defines: dict = field(default_factory=dict)   # cell id -> names its kept statements bind


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


def extract(nb, graded_functions: list, preamble: str = "") -> Extraction:
    """The definitions of every code cell, and where each graded function is defined.

    ``preamble``: the assignment's trusted imports cell, run before the
    notebook's cells; the names it binds count as defined.
    """
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

    bound = _preamble_names(preamble)
    partly_run, not_run = [], []
    for number, _ in code_cells:
        source, names, error = parsed[number]
        if error:
            if not any(number == places[-1][0] for places in definitions.values() if places):
                result.notes.append(f"cell {number} has a {error}; its definitions were not run")
            continue
        runnable, kept_names, skipped = _definitions_only(strip_magics(source), bound)
        if kept_names:
            result.cells.append(Cell(str(number), runnable, chosen.get(number, [])))
            result.cell_defines[str(number)] = kept_names
        if skipped and kept_names:
            partly_run.append((number, skipped))
        elif skipped:
            not_run.append(number)
    result.notes += _skipped_notes(partly_run, not_run)
    if code_cells and not any(nbgrader_meta(c) for _, c in code_cells):
        result.notes.append("no cell carries nbgrader metadata (lost or stripped); graded cells were found by the functions they define")
    return result


def _preamble_names(preamble: str) -> set:
    """The names the trusted imports cell binds (its imports and definitions)."""
    try:
        tree = ast.parse(strip_magics(preamble))
    except (SyntaxError, ValueError):
        return set()
    return {name for node in tree.body for name in bound_names(node)}


def _statement_lines(node) -> range:
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return range(first, (node.end_lineno or node.lineno) + 1)


def _definitions_only(source: str, bound: set) -> tuple:
    """(source with every skipped top-level statement blanked, names kept, [(lines, reason)] skipped).

    Blank lines keep the line numbers of the learner's cell. A kept statement
    sharing a line with a skipped one (``import x; train()``) is skipped too:
    a line is run whole or not at all. ``bound`` is updated with what is kept.
    """
    tree = ast.parse(source)
    trial = set(bound)
    verdicts = classify_statements(tree, trial)
    while True:
        skipped_lines = {line for node, reason in verdicts if reason for line in _statement_lines(node)}
        demoted = False
        for index, (node, reason) in enumerate(verdicts):
            if reason is None and skipped_lines.intersection(_statement_lines(node)):
                verdicts[index] = (node, "shares a line with code that is not run")
                demoted = True
        if not demoted:
            break
    lines = source.split("\n")
    kept_names, skipped = [], []
    for node, reason in verdicts:
        if reason is None:
            kept_names += bound_names(node)
            continue
        span = _statement_lines(node)
        skipped.append((span, reason))
        for line in span:
            lines[line - 1] = ""
    bound.update(kept_names)
    return "\n".join(lines), list(dict.fromkeys(kept_names)), skipped


def _line_ranges(spans: list) -> str:
    merged: list = []
    for span in sorted(spans, key=lambda r: r.start):
        if merged and span.start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], span.stop - 1)
        else:
            merged.append([span.start, span.stop - 1])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in merged)


def _skipped_notes(partly_run: list, not_run: list) -> list:
    """What was not run to grade, and why: one note per cell that mixes definitions and other code."""
    notes = []
    for number, skipped in partly_run[:20]:
        reasons = list(dict.fromkeys(reason for _, reason in skipped))
        why = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
        notes.append(f"cell {number}: top-level code on line(s) {_line_ranges([s for s, _ in skipped])} was not run "
                     f"({why}); only its definitions were (imports, def/class, assignments of constants)")
    if len(partly_run) > 20:
        notes.append(f"... and {len(partly_run) - 20} more cells with top-level code that was not run")
    if not_run:
        cells = ", ".join(map(str, not_run))
        notes.append(f"cell{'s' if len(not_run) > 1 else ''} {cells}: only calls (demos, public tests, "
                     "prints, training), which were not run to grade, and code using their results")
    return notes


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
