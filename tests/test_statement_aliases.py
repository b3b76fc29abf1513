"""The statement rule resolves cheap calls through the names the notebook's imports made.

``from numpy.random import default_rng`` then ``_rng = default_rng(2024)`` runs in
Jupyter, and the first cell promises that such a line runs to grade: it does,
in the imports cell and in any cell, for a submission and for the reference.
A name rebound since its import (``default_rng = my_function``, a ``def``, a
loop variable) no longer stands for the import, and a call of anything not on
the list stays refused (issue 21, item 2).
"""

from __future__ import annotations

import ast
import dataclasses

import nbformat
import pytest

from autograder.grading import catalogue
from autograder.grading.grade import grade_notebook
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.notebook import extract
from autograder.grading.time_policy import TimePolicy
from autograder.sandbox.statements import definitions_only, preamble_names
from tests.nbtools import graded_cell, solution_path, write

A = "initialization"
HE = "initialize_parameters_he"

# He initialization drawing from a module-level generator made at the top of the notebook.
HE_WITH_RNG = """
def initialize_parameters_he(layers_dims):
    parameters = {}
    for l in range(1, len(layers_dims)):
        scale = np.sqrt(2 / layers_dims[l - 1])
        parameters["W" + str(l)] = _rng.standard_normal((layers_dims[l], layers_dims[l - 1])) * scale
        parameters["b" + str(l)] = np.zeros((layers_dims[l], 1))
    return parameters
"""

# Each accepted form: the import that makes the alias, and the line that builds the generator through it.
ACCEPTED = {
    "from_import": ("from numpy.random import default_rng", "_rng = default_rng(2024)"),
    "from_import_as": ("from numpy.random import default_rng as rng_", "_rng = rng_(2024)"),
    "module_as": ("import numpy.random as npr", "_rng = npr.default_rng(2024)"),
    "from_package_import_module": ("from numpy import random", "_rng = random.default_rng(2024)"),
    "package_as": ("import numpy as numerical", "_rng = numerical.random.default_rng(2024)"),
    "builtin": ("", "_rng = np.random.default_rng(int(2024.0))"),
}
# Each refused form: the cell, and why the generator's line is not run.
REFUSED = {
    "not_on_the_list": ("from numpy.random import randint", "calls randint()"),
    "shadowed_by_an_assignment": (
        "from numpy.random import default_rng\ndef my_function(seed):\n    return seed\ndefault_rng = my_function",
        "calls default_rng() (default_rng was rebound after its import)",
    ),
    "shadowed_by_a_def": (
        "from numpy.random import default_rng\ndef default_rng(seed):\n    return seed",
        "calls default_rng() (default_rng was rebound after its import)",
    ),
    "rebound_by_code_that_is_not_run": (
        "from numpy.random import default_rng\ndefault_rng = make_generator_factory()",
        "calls default_rng() (default_rng was rebound after its import)",
    ),
    "rebound_by_a_loop": (
        "from numpy.random import default_rng\nfor default_rng in [print]:\n    pass",
        "calls default_rng() (default_rng was rebound after its import)",
    ),
    "alias_of_another_module": ("import os as default_rng", "calls default_rng()"),
    "shadowed_builtin": ("def int(x):\n    return x", "calls int()"),
    "a_relative_import": ("from .numpy.random import default_rng", "calls default_rng()"),
}
REFUSED_LINE = {
    "not_on_the_list": "_rng = randint(2024)",
    "shadowed_builtin": "_rng = np.random.default_rng(int(2024))",
}


def rule_for(cells: list, preamble: str = "import numpy as np") -> list:
    """[CellRule] of each cell's source, in order, names tracked from ``preamble``."""
    bound, provided = preamble_names(preamble)
    return [definitions_only(source, ast.parse(source), bound, provided) for source in cells]


# ------------------------------------------------------------ the rule itself, per form


@pytest.mark.parametrize("form", sorted(ACCEPTED))
def test_an_aliased_cheap_call_is_kept_in_a_cell(form):
    imports, line = ACCEPTED[form]
    rules = rule_for([imports, line])
    assert rules[1].kept_names == ["_rng"] and rules[1].skipped == []


@pytest.mark.parametrize("form", sorted(ACCEPTED))
def test_an_aliased_cheap_call_is_kept_after_the_imports_cell(form):
    imports, line = ACCEPTED[form]
    (rule,) = rule_for([line], preamble="import numpy as np\n" + imports)
    assert rule.kept_names == ["_rng"] and rule.skipped == []


@pytest.mark.parametrize("form", sorted(REFUSED))
def test_a_refused_form_is_not_run(form):
    cell, reason = REFUSED[form]
    line = REFUSED_LINE.get(form, "_rng = default_rng(2024)")
    rules = rule_for([cell, line])
    assert rules[1].kept_names == [] and [why for _, why in rules[1].skipped] == [reason]


def test_a_later_import_gives_the_name_its_meaning_back():
    rules = rule_for(["default_rng = 3", "from numpy.random import default_rng", "_rng = default_rng(0)"])
    assert rules[2].kept_names == ["_rng"]


def test_an_import_that_does_not_run_changes_nothing_and_binds_nothing():
    # The same import on a line that does not run leaves np as it was; a new alias on such a line is not made.
    rules = rule_for(
        ["import numpy as np; print(np)", "x = np.zeros(3)", "import numpy as npx; print(1)\ny = npx.zeros(3)"]
    )
    assert rules[1].kept_names == ["x"]
    assert rules[2].kept_names == [] and "calls npx.zeros()" in [why for _, why in rules[2].skipped]


# ------------------------------------------------------------ through the real grading path


def solution_with(*cells: str):
    """The initialization solution whose He cell draws from ``_rng``, with ``cells`` just above it."""
    nb = nbformat.read(str(solution_path(A)), as_version=4)
    graded_cell(nb, HE).source = HE_WITH_RNG
    at = nb.cells.index(graded_cell(nb, HE))
    for offset, source in enumerate(cells):
        nb.cells.insert(at + offset, nbformat.v4.new_code_cell(source))
    return nb


@pytest.mark.parametrize("form", sorted(ACCEPTED))
def test_an_aliased_generator_in_a_cell_is_graded(tmp_path, form):
    imports, line = ACCEPTED[form]
    result = grade_notebook(write(solution_with(imports, line), tmp_path / f"{form}.ipynb"), A)
    he = result["functions"][HE]
    failed = [t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert he["score"] == he["max_score"], failed


@pytest.mark.parametrize("form", ["from_import", "from_import_as", "module_as", "from_package_import_module"])
def test_an_aliased_generator_from_the_imports_cell_is_graded(form):
    """The imports cell is the solution's; a course may write its alias there."""
    imports, line = ACCEPTED[form]
    spec = catalogue.load(A)
    preamble = spec.preamble + "\n" + imports + "\n"
    extraction = extract(solution_with(line), spec.graded_functions, preamble)
    process = LearnerProcess(
        preamble=preamble,
        cells=extraction.cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=60),
    )
    try:
        parameters = Learner(process).initialize_parameters_he([4, 3, 1])
    finally:
        process.close()
    assert parameters["W1"].shape == (3, 4), extraction.notes


@pytest.mark.parametrize("form", ["shadowed_by_an_assignment", "rebound_by_code_that_is_not_run"])
def test_a_rebound_alias_is_not_run_and_costs_only_its_function(tmp_path, form):
    cell = REFUSED[form][0]
    result = grade_notebook(write(solution_with(cell, "_rng = default_rng(2024)"), tmp_path / f"{form}.ipynb"), A)
    assert result["functions"][HE]["score"] == 0
    assert result["score"] == catalogue.load(A).max_score - result["functions"][HE]["max_score"]
    outputs = [t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert outputs and all("name '_rng' is not defined" in output for output in outputs), outputs
    # The report says why the line did not run, not only the generic "only calls" note.
    why = [note for note in result["notes"] if "default_rng was rebound after its import" in note]
    assert why and "names it assigns are not defined" in why[0], result["notes"]


def test_the_reference_follows_the_same_rule(monkeypatch, tmp_path):
    """catalogue.reference runs the solution's cells through the same rule, aliases included."""
    spec = catalogue.load(A)
    nb = solution_with()
    graded_cell(nb, HE).source = "# GRADED FUNCTION: initialize_parameters_he\n_rng = rng_(7)\n" + HE_WITH_RNG
    path = write(nb, tmp_path / "solution.ipynb")
    changed = dataclasses.replace(
        spec, solution_path=path, preamble=spec.preamble + "\nfrom numpy.random import default_rng as rng_\n"
    )
    monkeypatch.setattr(catalogue, "load", lambda name: changed)
    reference = catalogue.reference.__wrapped__(A)
    assert reference.initialize_parameters_he([4, 3, 1])["W1"].shape == (3, 4)


def test_the_first_cell_lists_every_cheap_call():
    """The rule the notebooks state is the rule: each call on the list is named under its module."""
    from autograder.course.release import GRADING_RULES
    from autograder.sandbox.statements import CHEAP_CALLS

    lines = {"numpy": "numpy's", "tensorflow": "tensorflow's", "math": "math's", "builtins": "the builtins"}
    for full in CHEAP_CALLS:
        module, _, rest = full.partition(".")
        stated = [line for line in GRADING_RULES.split("- ") if line.lstrip().startswith(lines[module])]
        assert stated and f"`{rest}`" in stated[0], f"{full} is not stated in release.GRADING_RULES"
