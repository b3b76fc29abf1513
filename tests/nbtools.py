"""Helpers shared by the test modules (their shared fixtures are in tests/conftest.py).

Build test submissions from the solution notebooks: planted bugs are declared
per assignment (autograder/suites/<name>/mutants.py) and graded by the product
(autograder.course.mutants); hostile and broken submissions are the solution
notebook (or the released stub) with graded cells' sources replaced, so the
tests never carry stale copies of notebooks. Also: an assignment's helper
module, public tests and hidden suite as modules, numerical gradients, and
the processes left by the sandboxes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def run_pytest_alone(test_file: str, env: dict, prefix: list | tuple = (), select: str = "not slow"):
    """``test_file`` in a pytest of its own, with the DLGRADE_* settings of ``env`` instead of
    this process's (tests/conftest.py reads them there), after the command ``prefix``; asserts it
    passed and returns the completed run (``-v``: its stdout names each test's outcome)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")} | env
    run = subprocess.run(
        [*prefix, sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", test_file, "-m", select],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    return run


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


def solution_notebook(assignment: str):
    return nbformat.read(str(solution_path(assignment)), as_version=4)


def solution_source(assignment: str, function_name: str) -> str:
    """The source of ``function_name``'s graded cell in the solution notebook."""
    return graded_cell(solution_notebook(assignment), function_name).source


def with_functions(assignment: str, sources: dict, base: Path | None = None):
    """The solution notebook (or ``base``) with the graded cells of ``sources`` (function -> source) replaced."""
    nb = nbformat.read(str(base or solution_path(assignment)), as_version=4)
    for function_name, source in sources.items():
        graded_cell(nb, function_name).source = source
    return nb


def with_function(assignment: str, function_name: str, source: str, base: Path | None = None):
    """The solution notebook (or ``base``) with one graded cell's source replaced."""
    return with_functions(assignment, {function_name: source}, base)


def released_with_solution(assignment: str, *function_names: str):
    """The released stub with the solution's cells of ``function_names`` (the rest still to do)."""
    return with_functions(
        assignment, {f: solution_source(assignment, f) for f in function_names}, base=released_path(assignment)
    )


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def grade_with_function(assignment: str, function_name: str, source: str, path: Path, base: Path | None = None):
    """Grade the solution notebook (or ``base``) with one graded cell's source replaced, written to ``path``."""
    from autograder.grading.grade import grade_notebook

    return grade_notebook(write(with_function(assignment, function_name, source, base), path), assignment)


def _on_path(assignment: str) -> None:
    """The assignment's folder on sys.path, as the notebook has it (for <assignment>_utils)."""
    import sys

    folder = str(ROOT / "assignments" / assignment)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def load_utils(assignment: str):
    """The assignment's helper module, ``<assignment>_utils`` (a name of its own: a plain import is safe)."""
    import importlib

    _on_path(assignment)
    return importlib.import_module(f"{assignment}_utils")


def load_public_tests(assignment: str):
    """The assignment's public_tests.py as its own module.

    Every assignment folder has a ``public_tests.py``; a plain
    ``import public_tests`` would return whichever was imported first in this
    pytest process.
    """
    _on_path(assignment)  # public_tests imports <assignment>_utils
    return _load_module(f"public_tests_{assignment}", ROOT / "assignments" / assignment / "public_tests.py")


def load_hidden_suite(assignment: str):
    """The assignment's hidden suite as a module, to test its checks and hints without grading."""
    return _load_module(
        f"{assignment}_hidden_suite", ROOT / "autograder" / "suites" / assignment / f"test_{assignment}.py"
    )


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
            members = [name] if self.isolated else next(r for r in mutant_rounds(self.assignment) if name in r)
            # public=True: a report's problems include a public test that rejects what the hidden suite accepts.
            for report in mutants.grade_mutants(
                self.assignment, self.folder / name, only=members, isolated=self.isolated, public=True
            ):
                self.reports[report.mutant.name] = report
        return self.reports[name]


def mutant_names(assignment: str) -> list:
    """The names of the assignment's declared mutants, in declaration order (for parametrize)."""
    from autograder.course import mutants

    return [m.name for m in mutants.load(assignment).mutants]


def mutant_functions(assignment: str) -> dict:
    """Declared mutant name -> the function it is planted in."""
    from autograder.course import mutants

    return {m.name: m.function for m in mutants.load(assignment).mutants}


def mutant_rounds(assignment: str) -> list:
    """The names of the mutants graded together in one notebook, round by round (``make_rounds``)."""
    from autograder.course import mutants

    return [[m.name for m in r] for r in mutants.load(assignment).make_rounds()]


def failed_names(result: dict, functions) -> list:
    """The names of the failed hidden checks of ``functions`` (a name or several) in a grade result."""
    from autograder.course import mutants

    return [t["name"] for t in mutants.failed_tests(result, functions)]


def assert_full_marks(result: dict) -> None:
    """Every function of a grade result has full marks; else the message lists each failed check and its feedback."""
    from autograder.course.mutants import failed_checks

    assert result["score"] == result["max_score"], failed_checks(result, list(result["functions"]))


def assert_costs_only_its_function(assignment: str, report) -> None:
    """A planted bug's report (a :class:`autograder.course.mutants.MutantReport`): the product found
    no problem with it, the grader did not fail, the bug's function lost points, and every function
    that no mutant of the same notebook was planted in kept full marks."""
    from autograder.course.mutants import failed_checks

    assert report.problems == [], report.problems
    result, function = report.result, report.mutant.function
    assert not result["grader_error"], result["tests"]
    functions = result["functions"]
    assert functions[function]["score"] < functions[function]["max_score"], f"{report.mutant.name} was not detected"
    planted = mutant_functions(assignment)
    replaced = {function} | {planted[name] for name in report.shared_with}
    for other, entry in functions.items():
        if other not in replaced:
            assert entry["score"] == entry["max_score"], (other, failed_checks(result, other))


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


# ------------------------------------------------------------------ the sandboxes' processes


def sandbox_strategy() -> str:
    """The sandbox this machine grades with (``DLGRADE_SANDBOX`` forces one): bwrap, setpriv or plain."""
    from autograder.sandbox import isolation

    return isolation.available_strategy()


def accept_unisolated() -> list:
    """The CLI flag a grading run needs here: under setpriv this world-readable checkout is refused
    without ``--accept-unisolated`` (see test_attacks' readability tests)."""
    return ["--accept-unisolated"] if sandbox_strategy() == "setpriv" else []


def process_listing() -> list:
    """(uid, pid, command line) of every process, from /proc: the grading image (a minimal Debian) has no procps."""
    import os

    listing = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/status") as handle:
                uid = int(next(line.split()[1] for line in handle if line.startswith("Uid:")))
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                args = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, StopIteration):
            continue  # gone meanwhile
        listing.append((uid, int(pid), args))
    return listing


def sandbox_processes() -> list:
    """'uid pid args' of every process running as a learner's uid (65534, or a private uid)."""
    from autograder.sandbox import isolation

    return [
        f"{uid} {pid} {args}"
        for uid, pid, args in process_listing()
        if uid == isolation.SANDBOX_UID or uid >= isolation.PRIVATE_UID_BASE
    ]


def leftover_processes() -> list:
    """Processes of this grader's learner uids that are not one of its zygotes."""
    import os

    from autograder.sandbox import isolation, spawn

    zygotes = {z.proc.popen.pid for z in spawn._ZYGOTES.values()}
    ours = range(
        isolation.PRIVATE_UID_BASE + os.getpid() * isolation.PRIVATE_UID_SLOTS,
        isolation.PRIVATE_UID_BASE + (os.getpid() + 1) * isolation.PRIVATE_UID_SLOTS,
    )
    return [
        line
        for line in sandbox_processes()
        if int(line.split()[1]) not in zygotes
        and (int(line.split()[0]) in ours or int(line.split()[0]) == isolation.SANDBOX_UID and os.geteuid() != 0)
    ]


def processes_running(text: str) -> list:
    """'pid args' of the live processes whose command line contains ``text`` (a zombie's is empty)."""
    return [f"{pid} {args}" for _, pid, args in process_listing() if text in args]
