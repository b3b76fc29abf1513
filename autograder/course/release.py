"""Generate the released notebooks from the solutions with nbgrader's preprocessors.

nbgrader is used as a library: its preprocessors run on the solution notebook
in memory, without a course database or a course directory. The released
notebook is a pure function of the solution notebook, so ``check_release``
can tell whether ``assignments/`` has drifted.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)
from traitlets.config import Config

from autograder.grading import catalogue

# The stub a learner sees in place of ### BEGIN SOLUTION ... ### END SOLUTION.
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def _preprocessors():
    config = Config()
    config.ClearSolutions.code_stub = {"python": CODE_STUB}
    config.ClearSolutions.enforce_metadata = True
    config.LockCells.lock_grade_cells = True
    config.LockCells.lock_readonly_cells = True
    config.LockCells.lock_solution_cells = False
    return [
        CheckCellMetadata(config=config),
        LockCells(config=config),
        ClearSolutions(config=config),
        ClearOutput(config=config),
        ClearHiddenTests(config=config),
        ClearMarkScheme(config=config),
        ComputeChecksums(config=config),
    ]


def released_notebook(solution_path: Path):
    nb = nbformat.read(str(solution_path), as_version=4)
    nb = copy.deepcopy(nb)
    resources: dict = {}
    for preprocessor in _preprocessors():
        nb, resources = preprocessor.preprocess(nb, resources)
    # Widget state and nbclient's execution timings are noise in a released notebook.
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def render(nb) -> str:
    return nbformat.writes(nb) + "\n"


def release(name: str) -> Path:
    spec = catalogue.load(name)
    target = spec.released_notebook
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(released_notebook(spec.solution_path)), encoding="utf-8")
    return target


def drift(name: str) -> bool:
    """True when the released notebook is not what release would write now."""
    spec = catalogue.load(name)
    expected = render(released_notebook(spec.solution_path))
    try:
        current = spec.released_notebook.read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    return current != expected
