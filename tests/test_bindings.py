"""A function bound when a cell runs is graded with the reference in its place (grading/stand_ins.py).

A graded function B that calls a graded function A may bind A when its cell
runs: an alias at the top of the cell, a default argument, a closure (a
decorator's argument), a class attribute. A bug in A must still cost only A:
B's child is given the reference A before B's cell runs. Each assignment with
such a B plants, in its mutants.py, a bug in A beside a B written in each of
the four forms (autograder/course/bindings.py); tests/test_<name>_suite.py
grades them. Here: the plan of a child's cells, and the forms end to end.
"""

from __future__ import annotations

import pytest

from autograder.course import mutants
from autograder.course.bindings import FORMS, bound_source
from autograder.course.mutants import lost_points
from autograder.grading import catalogue
from autograder.grading.cells import Cell, cell_names, definers
from autograder.grading.stand_ins import AGAIN, FIRST, plan
from tests.nbtools import with_functions, write

# assignment -> (dependent function, the graded functions it calls) of every such pair.
DEPENDENT = {
    "batch_norm": [
        ("affine_bn_relu_forward", ["batchnorm_forward"]),
        ("affine_bn_relu_backward", ["batchnorm_backward_alt"]),
    ],
    "practical_setup": [("random_search", ["sample_learning_rates", "sample_betas"])],
    "gradient_checking": [("gradient_check", ["forward_propagation", "backward_propagation"])],
    "tensorflow_intro": [("model", ["initialize_parameters", "forward_propagation", "compute_total_loss"])],
}


def planned(cells, name, sources):
    defines, uses = cell_names(cells)
    return plan(cells, defines, uses, definers(cells, defines), name, sources, "import math\n")


def ids(cells):
    return [cell.cell_id for cell in cells]


def test_the_reference_is_defined_before_the_dependent_cell_and_the_dependency_cell_is_not_run():
    cells = [
        Cell("a", "def A(x):\n    return x + 1\n", ["A"]),
        Cell("other", "def C(x):\n    return x\n", ["C"]),
        Cell("b", "a = A\ndef B(x, f=A):\n    return f(x) + a(x) + C(x)\n", ["B"]),
    ]
    steps = planned(cells, "B", {"A": "def A(x):\n    return x\n", "B": "def B(x):\n    pass\n"})
    assert ids(steps) == ["other", FIRST, "b"]
    request = steps[1].trusted
    assert request["op"] == "probe"
    inputs = request["inputs"]["__dict__"]
    assert inputs["names"] == ["A"] and "def A" in inputs["source"]
    assert "def B" not in inputs["source"]  # B's own reference never goes to B's child
    # A itself, and a function that calls nothing graded: the learner's cells only.
    assert ids(planned(cells, "A", {"A": "", "B": ""})) == ["a"]
    assert ids(planned(cells, "B", {})) == ["a", "other", "b"]


def test_a_cell_run_after_the_dependent_one_that_binds_the_dependency_again_is_followed_by_the_reference():
    cells = [
        Cell("b", "def B(x):\n    return A(x) + h(x)\n", ["B"]),
        Cell("a", "def A(x):\n    return x + 1\ndef h(x):\n    return x\n", ["A"]),
    ]
    assert ids(planned(cells, "B", {"A": "def A(x):\n    return x\n"})) == [FIRST, "b", "a", AGAIN]
    both = [Cell("ab", "def A(x):\n    return x + 1\nb = A\ndef B(x):\n    return b(x)\n", ["A", "B"])]
    assert ids(planned(both, "B", {"A": "def A(x):\n    return x\n"})) == [FIRST, "ab", AGAIN]


def test_the_reference_source_holds_what_the_replaced_function_needs():
    cells = [Cell("b", "def B(x):\n    return A(x)\n", ["B"])]
    sources = {"L": "def L(x):\n    return x\n", "A": "def A(x):\n    return L(x)\n", "B": "def B(x):\n    return 0\n"}
    source = planned(cells, "B", sources)[0].trusted["inputs"]["__dict__"]["source"]
    assert "def L" in source and "def A" in source and "def B" not in source


@pytest.mark.parametrize("name", sorted(DEPENDENT))
def test_every_dependent_function_has_a_planted_bug_beside_each_binding_form(name):
    declared = mutants.load(name).mutants
    for function, dependencies in DEPENDENT[name]:
        for form in FORMS:
            source = bound_source(name, function, dependencies, form)
            assert any(m.function in dependencies and m.beside.get(function) == source for m in declared), (
                f"{name}: no mutant of {dependencies} beside {function} bound by {form}"
            )


def test_the_dependencies_listed_here_are_all_there_are():
    for name, pairs in DEPENDENT.items():
        spec = catalogue.load(name)
        sources = catalogue.reference_sources(name)
        cells = [Cell(f, sources[f], [f]) for f in spec.graded_functions]
        defines, uses = cell_names(cells)
        found = {(f, tuple(sorted(uses[f] & set(spec.graded_functions)))) for f in spec.graded_functions}
        found = {pair for pair in found if pair[1]}
        assert found == {(f, tuple(sorted(d))) for f, d in pairs}


BETAS_LINEAR = """
import numpy as np

def sample_betas(n, low=0.9, high=0.999):
    return np.random.uniform(low, high, size=n)
"""


@pytest.mark.parametrize("form", FORMS)
def test_a_search_binding_a_wrong_sampler_keeps_its_points(tmp_path, form):
    """End to end, another sampler bug than mutants.py's: only the sampler loses points."""
    from autograder.grading.grade import grade_notebook

    search = bound_source("practical_setup", "random_search", ["sample_learning_rates", "sample_betas"], form)
    nb = with_functions("practical_setup", {"sample_betas": BETAS_LINEAR, "random_search": search})
    result = grade_notebook(write(nb, tmp_path / f"{form}.ipynb"), "practical_setup")
    assert set(lost_points(result)) == {"sample_betas"}
