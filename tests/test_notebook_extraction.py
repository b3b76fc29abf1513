"""What runs to grade: the definitions of every cell, in notebook order, never the demos.

A graded function may use a helper, a constant or an import from another
cell, or module-level state of its own cell, as when the notebook runs top to
bottom in Jupyter; demo and training code is never run; a cell that fails
costs only what it defines, and the report says which cell failed.
"""

from __future__ import annotations

import ast

import nbformat
import pytest

from autograder.grading import catalogue
from autograder.grading.grade import grade_notebook
from autograder.grading.notebook import extract
from autograder.sandbox.scope import Scope
from autograder.sandbox.statements import classify_statements, graded_statements
from tests.nbtools import graded_cell, solution_path, write

A = "initialization"
HE = "initialize_parameters_he"
ZEROS = "initialize_parameters_zeros"
RANDOM = "initialize_parameters_random"

# He initialization written the way learners do: a helper from another cell, a
# constant from another cell, an import made in another cell.
HE_WITH_HELPERS = """
def initialize_parameters_he(layers_dims):
    parameters = {}
    for l in range(1, len(layers_dims)):
        parameters["W" + str(l)] = he_matrix(layers_dims[l], layers_dims[l - 1])
        parameters["b" + str(l)] = np.zeros((layers_dims[l], BIAS_COLUMNS))
    return parameters
"""
HELPER_CELL = """
import math as m

BIAS_COLUMNS = 1
GAIN = 2.0

def he_matrix(rows, columns):
    return np.random.randn(rows, columns) * m.sqrt(GAIN / columns)
"""
# Module-level state of the graded cell itself: a generator made at the top.
ZEROS_WITH_STATE = """
rng = np.random.default_rng(0)
SHAPES_SEEN = []

def initialize_parameters_zeros(layers_dims):
    parameters = {}
    for l in range(1, len(layers_dims)):
        SHAPES_SEEN.append((layers_dims[l], layers_dims[l - 1]))
        parameters["W" + str(l)] = np.zeros((layers_dims[l], layers_dims[l - 1])) * rng.random()
        parameters["b" + str(l)] = np.zeros((layers_dims[l], 1))
    return parameters
"""


def solution():
    return nbformat.read(str(solution_path(A)), as_version=4)


def insert_before(nb, function: str, source: str):
    """A new code cell just above ``function``'s graded cell."""
    nb.cells.insert(nb.cells.index(graded_cell(nb, function)), nbformat.v4.new_code_cell(source))
    return nb


@pytest.fixture(scope="module")
def full_marks():
    return catalogue.load(A).max_score


def kept_source(source: str, bound=None) -> list:
    return [ast.unparse(node) for node, reason in classify_statements(ast.parse(source), bound) if reason is None]


def test_the_statement_rule_keeps_definitions_and_cheap_constants():
    source = "\n".join(
        [
            "import numpy as np",
            "from math import sqrt",
            "def f(x):\n    return train(x)",
            "class Net:\n    pass",
            "LEARNING_RATE = 0.01 * 2",
            "rng = np.random.default_rng(1)",
            "legacy = np.random.RandomState(3)",
            "W = np.array([[1.0, 2.0]])",
            "a, b = (1, -2)",
            "square = lambda v: v ** 2",
            "parameters = model(X, Y)",  # training
            "print(W)",  # a demo
            "np.random.seed(1)",  # changes global state
            "import os; os.environ['A'] = '1'",
            "for i in range(3):\n    train(i)",
            "costs = [c for c in history]",
        ]
    )
    kept = kept_source(source, bound=Scope())
    assert kept == [
        "import numpy as np",
        "from math import sqrt",
        "def f(x):\n    return train(x)",
        "class Net:\n    pass",
        "LEARNING_RATE = 0.01 * 2",
        "rng = np.random.default_rng(1)",
        "legacy = np.random.RandomState(3)",
        "W = np.array([[1.0, 2.0]])",
        "a, b = (1, -2)",
        "square = lambda v: v ** 2",
        "import os",
    ]


def test_a_name_from_code_that_is_not_run_is_not_used():
    verdicts = dict(
        (ast.unparse(n), r)
        for n, r in classify_statements(
            ast.parse("history = model(X)\nlast = history\nrate = 0.1\ntwice = rate * 2"), Scope()
        )
    )
    assert verdicts["history = model(X)"] == "calls model()"
    assert verdicts["last = history"] == "uses history, which only code that is not run defines"
    assert verdicts["rate = 0.1"] is None and verdicts["twice = rate * 2"] is None
    # The sandbox side, which sees one cell at a time, applies the same rule without the names.
    kept, skipped = graded_statements(ast.parse("rng = np.random.default_rng(0)\nmodel(1)"))
    assert len(kept) == 1 and skipped == [2]


def test_helpers_constants_and_imports_from_other_cells_are_graded(tmp_path, full_marks):
    nb = solution()
    graded_cell(nb, HE).source = HE_WITH_HELPERS
    graded_cell(nb, ZEROS).source = ZEROS_WITH_STATE
    insert_before(nb, HE, HELPER_CELL)
    result = grade_notebook(write(nb, tmp_path / "helpers.ipynb"), A)
    failed = [t["name"] + ": " + t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert result["score"] == full_marks, failed


def test_demo_and_training_cells_are_not_run(tmp_path, full_marks):
    nb = solution()
    insert_before(nb, HE, "import time\ntime.sleep(600)\nraise SystemExit('demo')\n")
    insert_before(nb, HE, "import os\nos._exit(3)\n")
    insert_before(nb, ZEROS, "history = model(train_X, train_Y)\n")
    insert_before(nb, ZEROS, "last_cost = history\ndef unused():\n    return last_cost\n")
    result = grade_notebook(write(nb, tmp_path / "demos.ipynb"), A)
    assert result["score"] == full_marks
    assert result["execution_time"] < 60
    notes = "\n".join(result["notes"])
    assert "was not run (calls time.sleep(); a raise)" in notes, notes
    assert "uses history, which only code that is not run defines" in notes, notes
    assert "only calls (demos, public tests, prints, training), which were not run" in notes, notes


def test_a_failing_helper_cell_costs_only_the_functions_that_need_it(tmp_path, full_marks):
    nb = solution()
    graded_cell(nb, HE).source = HE_WITH_HELPERS
    insert_before(nb, HE, "import module_that_does_not_exist\n" + HELPER_CELL)
    path = write(nb, tmp_path / "broken_helper.ipynb")
    result = grade_notebook(path, A)
    assert result["functions"][HE]["score"] == 0
    assert result["score"] == full_marks - result["functions"][HE]["max_score"]
    # Named by what it defines: JupyterLab shows no cell numbers.
    note = next(n for n in result["notes"] if n.startswith("the cell defining he_matrix failed when run"))
    assert "module_that_does_not_exist" in note and "he_matrix" in note, note


def test_a_helper_cell_that_kills_the_process_costs_only_the_functions_that_need_it(tmp_path, full_marks):
    """Class bodies run when defined: one that ends the process is left out, the rest is graded."""
    nb = solution()
    graded_cell(nb, HE).source = HE_WITH_HELPERS
    insert_before(nb, HE, HELPER_CELL + "\nclass Sneaky:\n    import os\n    os._exit(0)\n")
    result = grade_notebook(write(nb, tmp_path / "killer_helper.ipynb"), A)
    assert result["functions"][HE]["score"] == 0
    assert result["score"] == full_marks - result["functions"][HE]["max_score"]
    assert any("failed when run" in note for note in result["notes"])


def test_skipped_statements_are_blanked_keeping_line_numbers():
    nb = solution()
    cell = graded_cell(nb, RANDOM)
    cell.source = "print('demo')\nx = 1; train()\n" + cell.source
    spec = catalogue.load(A)
    extraction = extract(nb, spec.graded_functions, spec.preamble)
    sent = next(c for c in extraction.cells if RANDOM in c.functions)
    lines = sent.source.split("\n")
    assert lines[0] == "" and lines[1] == ""  # the statement sharing a line goes too
    assert lines[2:] == cell.source.split("\n")[2:]  # the definition, at its own line numbers
    assert any("shares a line with code that is not run" in note for note in extraction.notes)


def test_plotting_imports_of_demo_cells_are_preloaded_in_the_warm_zygote():
    """Every cell's imports now run for every submission: matplotlib is imported once per zygote instead."""
    from autograder.grading.notebook import modules_imported_by

    assert "matplotlib" in modules_imported_by(catalogue.load("optimization").released_notebook)
    assert "matplotlib" not in modules_imported_by(catalogue.load("initialization").released_notebook)
