"""Build test submissions from the solution notebooks.

Planted bugs are declared per assignment (autograder/suites/<name>/mutants.py)
and graded by the product (autograder.course.mutants); hostile and broken
submissions are the solution notebook with one graded cell's source replaced,
so the tests never carry stale copies of notebooks.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def solution_path(assignment: str) -> Path:
    return ROOT / "solutions" / f"{assignment}.ipynb"


def released_path(assignment: str) -> Path:
    return ROOT / "assignments" / assignment / f"{assignment}.ipynb"


def graded_cell(nb, function_name: str):
    """The code cell whose nbgrader grade_id is ``function_name``."""
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == function_name:
            return cell
    raise KeyError(f"no graded cell for {function_name}")


def with_function(assignment: str, function_name: str, source: str, base: Path | None = None):
    """The solution notebook (or ``base``) with one graded cell's source replaced."""
    nb = nbformat.read(base or solution_path(assignment), as_version=4)
    graded_cell(nb, function_name).source = source
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def load_public_tests(assignment: str):
    """The assignment's public_tests.py as its own module.

    Every assignment folder has a ``public_tests.py``; a plain
    ``import public_tests`` would return whichever was imported first in this
    pytest process.
    """
    import sys

    folder = ROOT / "assignments" / assignment
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))      # public_tests imports <assignment>_utils
    return _load_module(f"public_tests_{assignment}", folder / "public_tests.py")


def load_hidden_suite(assignment: str):
    """The assignment's hidden suite as a module, to test its checks and hints without grading."""
    return _load_module(f"{assignment}_hidden_suite", ROOT / "autograder" / "suites" / assignment / f"test_{assignment}.py")


def _load_module(name: str, path: Path):
    """Import the file at ``path`` once per pytest process, under ``name``."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class MutantGrades:
    """The declared planted bugs of an assignment (its suites/<name>/mutants.py), graded on first use.

    ``grades(name)`` is the :class:`autograder.course.mutants.MutantReport` of
    that mutant. With ``isolated`` every mutant has a notebook of its own;
    otherwise the mutants of its round (see ``Declarations.make_rounds``) are graded
    together, once.
    """

    def __init__(self, assignment: str, folder: Path, isolated: bool = False):
        self.assignment, self.folder, self.isolated = assignment, folder, isolated
        self.reports = {}

    def __call__(self, name: str):
        from autograder.course import mutants

        if name not in self.reports:
            members = [name] if self.isolated else next(
                [m.name for m in r] for r in mutants.load(self.assignment).make_rounds() if name in [m.name for m in r])
            for report in mutants.grade_mutants(self.assignment, self.folder / name, only=members,
                                                isolated=self.isolated):
                self.reports[report.mutant.name] = report
        return self.reports[name]


def mutant_names(assignment: str) -> list:
    """The names of the assignment's declared mutants, in declaration order (for parametrize)."""
    from autograder.course import mutants

    return [m.name for m in mutants.load(assignment).mutants]


def alternative_names(assignment: str) -> list:
    from autograder.course import mutants

    return [a.name for a in mutants.load(assignment).alternatives]


def run_public(test, target) -> str:
    """Run one public test function on ``target``; return what it printed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        test(target)
    return out.getvalue()


def numerical_gradient(f, x, epsilon=1e-6):
    """Two-sided difference of the scalar ``f()`` with respect to every entry of
    the array ``x``, which ``f`` reads (it is changed in place and restored)."""
    import numpy as np

    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        old = x[index]
        x[index] = old + epsilon
        plus = f()
        x[index] = old - epsilon
        minus = f()
        x[index] = old
        grad[index] = (plus - minus) / (2 * epsilon)
    return grad
