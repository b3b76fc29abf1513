"""Bounded cost per submission (issue 20, item 4): the dependency walk is linear in the
notebook's size, the assignment's size limits are enforced before any sandbox starts, and
every learner-derived string in a message, a report and the batch state is capped."""

from __future__ import annotations

import signal
import time

import nbformat
import numpy as np
import pytest

from autograder.batch.state import GradeState
from autograder.grading import catalogue
from autograder.grading.cells import Cell, cell_names, cells_needed
from autograder.grading.checks import CheckFailed, check_dict_structure, check_keys
from autograder.grading.grade import grade_notebook
from autograder.grading.reports import feedback_html, feedback_markdown, gradescope_json, junit_xml, results_json
from autograder.grading.results import Result, TestResult
from tests.nbtools import solution_notebook

A = "initialization"


def _chain(n: int) -> list:
    """n cells, each function calling the one before: the walk from the last needs them all."""
    return [
        Cell(f"c{i}", f"def f_{i}():\n    return f_{i - 1}()\n" if i else "def f_0():\n    return 0\n", [f"f_{i}"])
        for i in range(n)
    ]


def _walk_seconds(n: int, guard: float | None = None) -> float:
    """The walk's best CPU time of three, on this thread only (other threads of the test process, a
    zygote starter or an output drainer left by an earlier test, do not count); ``guard``: wall
    seconds after which a SIGALRM stops a walk that would take minutes (the old one did)."""
    cells = _chain(n)
    defines, uses = cell_names(cells)
    best = float("inf")
    for _ in range(3):
        if guard is not None:
            signal.setitimer(signal.ITIMER_REAL, guard)
        started = time.thread_time()
        try:
            needed = cells_needed(cells, defines, uses, {f"f_{n - 1}"})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        best = min(best, time.thread_time() - started)
        assert [cell.cell_id for cell in needed] == [cell.cell_id for cell in cells]  # all, in notebook order
    return best


class _OverBudget(Exception):
    pass


def test_the_dependency_walk_is_linear_in_the_notebook(monkeypatch):
    small = max(_walk_seconds(2000), 0.01)  # floor (10 ms): a too-fast small run must not make the bound noise
    budget = 30 * small  # CPU seconds: 10x the nodes, 30x the time at most (linear, with room for noise)
    guard = max(20 * budget, 10.0)  # wall seconds: only a walk far off linear (minutes) reaches it

    def over(*_):
        raise _OverBudget(f"the 20,000-cell walk ran over {guard:.0f} s of wall time (CPU budget {budget:.3f} s)")

    previous = signal.signal(signal.SIGALRM, over)
    try:
        large = _walk_seconds(20000, guard)
    except _OverBudget as over_budget:
        pytest.fail(str(over_budget))  # raised in the signal handler: reported from a plain frame
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert large < budget, (small, large)


def _failing_spawner():
    class Refuses:
        def __getattr__(self, name):
            raise AssertionError(f"a sandbox was asked for ({name}) for a notebook over the limits")

    return Refuses()


def _with_code_cells(n: int):
    nb = solution_notebook(A)
    nb.cells += [nbformat.v4.new_code_cell(f"x_{i} = {i}") for i in range(n)]
    return nb


def test_a_notebook_over_the_cell_limit_is_a_zero_before_any_sandbox(tmp_path):
    limit = catalogue.load(A).config.max_code_cells
    path = tmp_path / "many.ipynb"
    path.write_text(nbformat.writes(_with_code_cells(limit + 1)))
    result = grade_notebook(path, A, spawner=_failing_spawner())
    assert result["score"] == 0
    assert "code cells, over this assignment's limit" in result["error"]
    assert set(result["functions"]) == set(catalogue.load(A).graded_functions)  # gradebook columns kept


def test_a_notebook_over_the_statement_and_byte_limits_is_a_zero(tmp_path, monkeypatch):
    spec = catalogue.load(A)
    path = tmp_path / "long.ipynb"
    nb = solution_notebook(A)
    nb.cells.append(nbformat.v4.new_code_cell("\n".join(f"y_{i} = {i}" for i in range(spec.config.max_statements))))
    path.write_text(nbformat.writes(nb))
    result = grade_notebook(path, A, spawner=_failing_spawner())
    assert result["score"] == 0 and "top-level statements, over" in result["error"]

    small = catalogue.AssignmentConfig(**{**spec.config.__dict__, "max_notebook_bytes": 1000})
    monkeypatch.setattr(catalogue, "load", lambda name: type(spec)(**{**spec.__dict__, "config": small}))
    result = grade_notebook(path, A, spawner=_failing_spawner())
    assert result["score"] == 0 and "bytes, over this assignment's limit of 1,000" in result["error"]


def test_assignment_toml_limits_are_checked(tmp_path):
    toml = tmp_path / "assignment.toml"
    toml.write_text("max_code_cells = 5\nmax_statements = 50\nmax_notebook_bytes = 100000\n")
    config = catalogue.AssignmentConfig.from_toml(toml)
    assert (config.max_code_cells, config.max_statements, config.max_notebook_bytes) == (5, 50, 100000)
    toml.write_text("max_code_cells = 0\n")
    with pytest.raises(catalogue.ConfigError, match="at least 1"):
        catalogue.AssignmentConfig.from_toml(toml)


def test_a_check_quotes_a_few_keys_and_counts_the_rest():
    got = {f"k{i}": i for i in range(100_000)}
    with pytest.raises(CheckFailed) as failed:
        check_keys(got, ["W1"], "parameters")
    message = failed.value.message
    assert len(message.encode()) < 2048 and "... 100,000 more" not in message
    assert "... 99,990 more" in message and "missing keys ['W1']" in message
    with pytest.raises(CheckFailed) as failed:
        check_dict_structure(got, {"W1": np.zeros(2)}, "parameters")
    assert len(failed.value.message.encode()) < 2048 and "more" in failed.value.message


def test_a_huge_learner_message_is_stored_and_reported_within_a_few_mb(tmp_path):
    huge = "<&x" * (50 * 1024 * 1024 // 3)
    result = Result(
        assignment=A,
        submission="big.ipynb",
        title="Initialization",
        score=0.0,
        max_score=1.0,
        tests=[TestResult("f", "a check", 1.0, False, message=huge, hint=huge, traceback=huge, kind="error")],
        notes=[huge] * 3 + ["n"] * 100_000,
        learner_output=huge,
        error=huge,
    )
    result.notes.append(huge)  # added after the Result was built: still capped in every document
    for report in (results_json, gradescope_json, junit_xml, feedback_markdown, feedback_html):
        text = report(result)
        assert len(text.encode()) < 3 * 1024 * 1024, report.__name__
    assert "more characters" in result.tests[0].message and any("more" in note for note in result.notes)

    with GradeState(tmp_path / "state.sqlite") as state:
        state.record("ada", A, "big.ipynb", "0" * 64, result)
        state.record("bob", A, "bob.ipynb", "1" * 64, {"score": 0, "output": huge, "tests": [{"message": huge}]})
        rows = {grade.learner: grade for grade in state.grades()}
    assert rows["ada"].result["tests"][0]["message"].endswith("more characters")
    assert len(rows["bob"].result["output"]) < 100_000
