"""The figures a notebook states are what its code printed, and its outputs are clean.

The stored outputs are those of `dlgrade execute-solutions NAME` (its
fingerprint of the code is checked); no test here runs a notebook.
"""

from __future__ import annotations

import copy
import re

import nbformat
import pytest

from autograder.course import execute
from autograder.grading import catalogue
from tests.nbtools import solution_notebook

NAMES = catalogue.names()


@pytest.mark.parametrize("name", NAMES)
def test_every_stated_figure_matches_the_stored_outputs(name):
    assert execute.figure_problems(name) == []


@pytest.mark.parametrize("name", NAMES)
def test_every_notebook_marks_its_measured_figures(name):
    assert len(execute.stated_figures(solution_notebook(name))) >= 3


def test_a_figure_that_the_code_does_not_print_is_caught():
    """Today's regularization text (94.8% / 91.5% for L2) against what its code prints."""
    nb = solution_notebook("regularization")
    fingerprint = execute.fingerprint("regularization")
    assert execute.figure_problems_in(nb, "regularization", fingerprint) == []
    marked = [c for c in nb.cells if c.cell_type == "markdown" and "L2, lambd = 0.7" in c.source]
    assert marked, "the summary table marks the L2 figures"
    for cell in marked:
        cell.source = re.sub(r"\d+\.\d%(?=<!-- figure: \"L2, lambd = 0.7\" #1)", "94.8%", cell.source)
        cell.source = re.sub(r"\d+\.\d%(?=<!-- figure: \"L2, lambd = 0.7\" #2)", "91.5%", cell.source)
    problems = execute.figure_problems_in(nb, "regularization", fingerprint)
    assert any("states 94.8% for 'L2, lambd = 0.7'" in p for p in problems), problems
    assert any("states 91.5% for 'L2, lambd = 0.7'" in p for p in problems), problems


def test_outputs_of_older_code_or_unmarked_figures_are_caught():
    nb = solution_notebook("regularization")
    stale = copy.deepcopy(nb)
    stale.metadata["dlgrade"].pop("outputs_from")
    assert any(
        "not those of the current code" in p
        for p in execute.figure_problems_in(stale, "regularization", execute.fingerprint("regularization"))
    )
    unmarked = copy.deepcopy(nb)
    for cell in unmarked.cells:
        if cell.cell_type == "markdown":
            cell.source = execute.FIGURE_MARK.sub("", cell.source)
    assert any("marks none" in p for p in execute.figure_problems_in(unmarked, "regularization"))


@pytest.mark.parametrize(
    "before, printed, agrees",
    [
        ("accuracy 94.8%", "Train accuracy: 0.948", True),
        ("accuracy 94.8%", "Train accuracy: 0.9475", True),
        ("accuracy 94.8%", "Train accuracy: 0.943", False),
        ("cost $0.6248$", "Cost after iteration 1000: 0.6244196071819332", False),
        ("returns $2.9 \\times 10^{-10}$", "Train accuracy: 2.91e-10", True),
        ("accuracy 83.0%", "Train accuracy: 83.0%", True),
    ],
)
def test_a_stated_figure_matches_at_its_stated_precision(before, printed, agrees):
    label = printed.split(":")[0] + ":"
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("run()")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed + "\n")]
    nb.cells = [code, nbformat.v4.new_markdown_cell(f'{before}<!-- figure: "{label}" -->')]
    assert (execute.figure_problems_in(nb) == []) == agrees


@pytest.mark.parametrize("name", NAMES)
def test_stored_outputs_show_no_axes_reprs_and_no_import_noise(name):
    nb = solution_notebook(name)
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            assert not text.startswith(("<Axes", "<matplotlib")), f"cell {number} prints {text[:60]!r}"
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "imports":
                assert output.get("name") != "stderr", (
                    f"the imports cell writes to stderr: {output.get('text', '')[:200]}"
                )


@pytest.mark.parametrize("name", NAMES)
def test_the_stored_whole_notebook_check_passes(name):
    last = solution_notebook(name).cells[-1]
    assert last.source.strip() == "check_all()"
    text = "".join(o.get("text", "") for o in last.get("outputs", []))
    count = len(catalogue.load(name).graded_functions)
    assert f"{count} of {count} public tests passed." in text
