"""Broken notebooks get a clear message and a score, never a crash."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder.cli import main as dlgrade
from autograder.grading.grade import grade_notebook
from tests.nbtools import (
    grade_with_function,
    graded_cell,
    solution_notebook,
    solution_path,
    solution_source,
    with_function,
    write,
)

A = "initialization"
HE = "initialize_parameters_he"
ZEROS = "initialize_parameters_zeros"
RANDOM = "initialize_parameters_random"


@pytest.fixture(scope="module")
def full_marks():
    result = grade_notebook(solution_path(A), A)
    assert result["score"] == result["max_score"] > 0
    return result["max_score"]


def test_invalid_json(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text(solution_path(A).read_text()[:-200])
    result = grade_notebook(path, A)
    assert result["score"] == 0
    assert "not valid JSON" in result["error"]
    assert set(result["functions"]) == {ZEROS, RANDOM, HE}  # gradebook columns still exist


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ipynb"
    path.write_text("")
    result = grade_notebook(path)
    assert result["score"] == 0 and "empty" in result["error"]


def test_json_that_is_not_a_notebook(tmp_path):
    path = tmp_path / "list.ipynb"
    path.write_text("[1, 2, 3]")
    result = grade_notebook(path, A)
    assert result["score"] == 0 and "not a Jupyter notebook" in result["error"]


def test_nbformat_3_is_upgraded(tmp_path, full_marks):
    path = tmp_path / "v3.ipynb"
    path.write_text(nbformat.writes(nbformat.convert(solution_notebook(A), 3), version=3))
    assert json.loads(path.read_text())["nbformat"] == 3
    result = grade_notebook(path, A)
    assert result["score"] == full_marks
    assert any("nbformat 3" in note for note in result["notes"])


def test_metadata_stripped_from_every_cell(tmp_path, full_marks):
    nb = solution_notebook(A)
    for cell in nb.cells:
        cell.metadata = {}
    nb.metadata = {}
    result = grade_notebook(write(nb, tmp_path / "bare.ipynb"))  # assignment detected from function names
    assert result["assignment"] == A
    assert result["score"] == full_marks
    assert any("metadata" in note for note in result["notes"])


def test_renamed_function_costs_only_its_points(tmp_path, full_marks):
    source = solution_source(A, HE).replace(f"def {HE}(", "def initialize_parameters_He(")
    result = grade_with_function(A, HE, source, tmp_path / "renamed.ipynb")
    assert result["functions"][HE]["score"] == 0
    assert result["score"] == full_marks - result["functions"][HE]["max_score"]
    assert "Did you rename it to initialize_parameters_He" in "\n".join(t["output"] for t in result["tests"])


def test_two_cells_defining_the_same_function_grade_the_last(tmp_path, full_marks):
    nb = solution_notebook(A)
    wrong = nbformat.v4.new_code_cell(f"def {HE}(layers_dims):\n    return {{}}\n")
    cells = nb.cells
    index = cells.index(graded_cell(nb, HE))
    cells.insert(index + 1, wrong)  # a later, wrong definition wins, as in a notebook run
    result = grade_notebook(write(nb, tmp_path / "dup_wrong_last.ipynb"), A)
    assert result["functions"][HE]["score"] == 0
    assert any("defined in 2 cells" in note for note in result["notes"])

    nb = solution_notebook(A)
    nb.cells.insert(nb.cells.index(graded_cell(nb, HE)), wrong)  # an earlier, wrong one is overridden
    result = grade_notebook(write(nb, tmp_path / "dup_wrong_first.ipynb"), A)
    assert result["score"] == full_marks


def test_syntax_error_costs_only_that_cell(tmp_path, full_marks):
    source = solution_source(A, RANDOM) + "\n    return ((\n"
    result = grade_with_function(A, RANDOM, source, tmp_path / "syntax.ipynb")
    assert result["functions"][RANDOM]["score"] == 0
    assert result["score"] == full_marks - result["functions"][RANDOM]["max_score"]
    assert "SyntaxError" in "\n".join(t["output"] for t in result["tests"] if t["function"] == RANDOM)


def test_magics_and_demo_code_in_graded_cells_are_skipped(tmp_path, full_marks):
    source = (
        "%load_ext autoreload\n"
        + solution_source(A, HE)
        + "\nimport time\ntime.sleep(60)\nprint(initialize_parameters_he([2, 3]))\n"
    )
    result = grade_with_function(A, HE, source, tmp_path / "demo.ipynb")
    assert result["score"] == full_marks
    assert any("was not run" in note for note in result["notes"])


def test_notebook_of_another_assignment(tmp_path):
    other = solution_path("gradient_checking")
    result = grade_notebook(other, A)
    assert result["score"] == 0
    assert "is assignment 'gradient_checking', not 'initialization'" in result["error"]
    # Without --assignment the notebook's own assignment is detected.
    assert grade_notebook(other)["assignment"] == "gradient_checking"


def test_cli_grade_writes_reports_and_honours_min_score(tmp_path, full_marks, capsys):
    out = tmp_path / "out"
    assert dlgrade(["grade", str(solution_path(A)), "--out", str(out), "--min-score", str(full_marks)]) == 0
    assert {p.name for p in out.iterdir()} == {"results.json", "junit.xml", "feedback.md", "feedback.html"}
    stub = tmp_path / "stub.ipynb"
    stub.write_text(nbformat.writes(with_function(A, HE, f"def {HE}(layers_dims):\n    raise NotImplementedError()\n")))
    assert dlgrade(["grade", str(stub), "--min-score", str(full_marks)]) == 1
    capsys.readouterr()
    assert dlgrade(["grade", str(stub), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (
        printed["functions"][HE]["score"] == 0
        and printed["score"] == full_marks - printed["functions"][HE]["max_score"]
    )
