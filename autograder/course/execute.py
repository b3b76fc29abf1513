"""Run a solution notebook top to bottom, store its outputs, and check the figures its text states.

The kernel's working directory is the assignment folder, where the helper
module and public_tests.py live, exactly as for a learner.

Stated figures. A number in a markdown cell that reports what the code
produced is marked, right after it, with an HTML comment (invisible when the
notebook is rendered)::

    train accuracy 93.8%<!-- figure: "Train accuracy:" -->
    cost 0.6244<!-- figure: "Cost after iteration 1000:" in "initialize_parameters_random" -->
    test 92.0%<!-- figure: "L2, lambd = 0.7" #2 -->

It names the text printed just before the value (the *label*); ``#N`` takes
the N-th number after the label on its line (default the first); ``@K`` the
K-th time the cell printed the label (default the last); ``in "..."``
restricts the search to code cells whose source contains that text. The value
is taken from the stored outputs of the nearest code cell above the markdown
cell whose outputs contain the label, and must
round to the stated figure at the stated precision (``94.8%`` and ``94.8
points`` match 0.9475 to 0.9485; ``2.9 \\times 10^{-10}`` matches 2.85e-10 to 2.95e-10).

The stored outputs are trusted only when they come from the current code:
``execute_solution`` records a fingerprint of the solution's code cells and
the helper module, and :func:`figure_problems` reports stale outputs. Every
markdown cell after the first that says "measured" or "what you will see"
(:data:`STATES_FIGURES`) must mark at least one figure.
"""

from __future__ import annotations

import hashlib
import re
import time

import nbformat

from autograder.grading import catalogue

FIGURE_MARK = re.compile(
    r'<!--\s*figure:\s*"(?P<label>[^"]+)"(?:\s*#(?P<index>\d+))?(?:\s*@(?P<occurrence>\d+))?'
    r'(?:\s+in\s+"(?P<cell>[^"]+)")?\s*-->'
)
# The figure as written just before its mark: 94.8%, 0.6931, $2.9 \times 10^{-10}$, 1.19e-07.
_STATED = re.compile(
    r"(?P<mantissa>-?\d+(?:\.(?P<decimals>\d+))?)(?:[eE](?P<e>[-+]?\d+))?"
    r"(?:\s*\\times\s*10\^\{?(?P<exp>-?\d+)\}?)?\s*\$?\s*(?P<percent>\\?%|\s(?:percentage\s+)?points)?[\s$*`]*$"
)
# A markdown cell after the introduction that states what the code produced ("**What you will see.**",
# "**Measured:**") must mark its figures.
STATES_FIGURES = re.compile(r"\bmeasured\b|\bwhat you will see\b", re.IGNORECASE)
_PRINTED = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?%?")


def fingerprint(name: str) -> str:
    """What the stored outputs depend on: the solution's code cells and the helper module."""
    spec = catalogue.load(name)
    nb = nbformat.read(str(spec.solution_path), as_version=4)
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    digest.update((spec.release_dir / f"{name}_utils.py").read_bytes())
    return digest.hexdigest()[:16]


def execute_solution(name: str, timeout: int = 1800) -> float:
    from nbclient import NotebookClient

    spec = catalogue.load(name)
    nb = nbformat.read(str(spec.solution_path), as_version=4)
    started = time.monotonic()
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(spec.release_dir)}}
    )
    client.execute()
    nb.metadata.setdefault("dlgrade", {})["outputs_from"] = fingerprint(name)
    nbformat.write(nb, str(spec.solution_path))
    return time.monotonic() - started


def _output_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output and "text/plain" in output["data"]:
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def stated_figures(nb) -> list:
    """[(cell number, stated text, label, index, occurrence, cell filter)] for every marked figure."""
    found = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "markdown":
            continue
        for mark in FIGURE_MARK.finditer(cell.source):
            before = cell.source[max(0, mark.start() - 80) : mark.start()]
            occurrence = int(mark["occurrence"]) if mark["occurrence"] else None
            found.append((number, before, mark["label"], int(mark["index"] or 1), occurrence, mark["cell"]))
    return found


def _stated_value(before: str):
    """(value, tolerance) of the figure written at the end of ``before``, or None."""
    match = _STATED.search(before)
    if not match:
        return None
    exponent = int(match["exp"] or match["e"] or 0)
    decimals = len(match["decimals"] or "")
    value = float(match["mantissa"]) * 10.0**exponent
    tolerance = 0.5 * 10.0 ** (exponent - decimals)
    if match["percent"]:
        value, tolerance = value / 100, tolerance / 100
    return value, tolerance, match.group(0).strip(" $*`")


def _printed_value(text: str, label: str, index: int, occurrence: int | None = None):
    """The index-th number after ``label`` (its occurrence-th, else last) in ``text``, on its line; None when absent."""
    starts = [m.start() for m in re.finditer(re.escape(label), text)]
    if not starts or (occurrence is not None and len(starts) < occurrence):
        return None
    at = starts[-1] if occurrence is None else starts[occurrence - 1]
    line = text[at + len(label) :].split("\n", 1)[0]
    numbers = _PRINTED.findall(line)
    if len(numbers) < index:
        return None
    token = numbers[index - 1]
    return (float(token[:-1]) / 100 if token.endswith("%") else float(token)), token


def figure_problems_in(nb, name: str = "notebook", expected_fingerprint: str | None = None) -> list:
    """Every stated figure that its stored output does not bear out, and stale or unmarked cells."""
    problems = []
    stored = (nb.metadata.get("dlgrade", {}) or {}).get("outputs_from")
    if expected_fingerprint is not None and stored != expected_fingerprint:
        problems.append(
            f"{name}: the stored outputs are not those of the current code "
            f"(run `dlgrade execute-solutions {name}`, then check the figures its text states)"
        )
    code_cells = [(n, c) for n, c in enumerate(nb.cells, start=1) if c.cell_type == "code"]
    for number, before, label, index, occurrence, cell_filter in stated_figures(nb):
        stated = _stated_value(before)
        where = f"{name}, cell {number}"
        if stated is None:
            problems.append(f"{where}: the mark for {label!r} does not follow a number")
            continue
        value, tolerance, written = stated
        source = None
        for code_number, cell in reversed([(n, c) for n, c in code_cells if n < number]):
            if cell_filter and cell_filter not in cell.source:
                continue
            printed = _printed_value(_output_text(cell), label, index, occurrence)
            if printed is not None:
                source = (code_number, printed)
                break
        if source is None:
            problems.append(f"{where}: states {written} for {label!r}, but no stored output above prints it")
            continue
        code_number, (actual, token) = source
        if abs(actual - value) > tolerance * (1 + 1e-9) + 1e-300:
            problems.append(f"{where}: states {written} for {label!r}, but cell {code_number} printed {token}")
    for number, cell in enumerate(nb.cells, start=1):
        if (
            number > 1
            and cell.cell_type == "markdown"
            and STATES_FIGURES.search(cell.source)
            and not FIGURE_MARK.search(cell.source)
        ):
            problems.append(
                f"{name}, cell {number}: states measured figures but marks none "
                '(add <!-- figure: "label" --> after each, see autograder/course/execute.py)'
            )
    return problems


def figure_problems(name: str) -> list:
    """figure_problems_in for the solution notebook of assignment ``name``."""
    spec = catalogue.load(name)
    nb = nbformat.read(str(spec.solution_path), as_version=4)
    return figure_problems_in(nb, name, fingerprint(name))
