"""Assignment discovery and the reference solution's memo."""

from __future__ import annotations

import numpy as np

from autograder.grading import catalogue
from autograder.grading.catalogue import _memoized


def test_assignments_are_discovered_with_points_and_limits():
    """Every folder of autograder/suites with a solution notebook is an assignment (a new one too)."""
    names = catalogue.names()
    assert names == sorted(names)
    assert {"initialization", "regularization", "gradient_checking", "optimization", "tensorflow_intro"} <= set(names)
    suites = {p.name for p in catalogue.SUITES_DIR.iterdir() if (p / "assignment.toml").exists()}
    solutions = {p.stem for p in (catalogue.root() / "solutions").glob("*.ipynb")}
    assert set(names) == suites & solutions
    for name in names:
        spec = catalogue.load(name)
        assert spec.graded_functions and spec.max_score > 0
        assert set(spec.points) == set(spec.graded_functions)
        assert spec.limits().address_space_mb >= 4096
    assert catalogue.load("tensorflow_intro").config.uses_tensorflow


def test_memoized_reference_computes_once_and_returns_copies():
    calls = []

    def double(a, scale=2):
        calls.append(1)
        return {"out": a * scale}

    memo = _memoized(double)
    first = memo(np.arange(3), scale=2)
    first["out"][0] = 99  # a suite that edits a result ...
    second = memo(np.arange(3), scale=2)  # ... does not change the next answer
    assert len(calls) == 1 and second["out"].tolist() == [0, 2, 4]
    memo(np.arange(3), scale=3)
    memo(np.arange(4), scale=2)
    assert len(calls) == 3


def test_memoized_reference_calls_through_for_arguments_that_are_not_plain_data():
    calls = []
    memo = _memoized(lambda f: calls.append(1) or f(2))
    assert memo(lambda x: x + 1) == 3 and memo(lambda x: x + 1) == 3
    assert len(calls) == 2
