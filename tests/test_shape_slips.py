"""Shape and value are separate checks (issue 21, item 4).

Right values with keepdims shapes ((1, D) where the notebook says (D,)) keep
the points of the values and lose only those of the shape check, whose
feedback says "values right; shape (1, D), expected (D,)"; a backward pass
graded after a forward pass with such a slip keeps all its points.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.course.mutants import grade_mutants
from autograder.grading import catalogue, shapes
from autograder.grading.checks import CheckFailed, check_close, check_dict_close, check_shape

A = "batch_norm"


@pytest.fixture
def recording():
    record = shapes.start()
    yield record
    shapes.stop()


def test_outside_a_test_with_shape_points_a_slip_is_a_wrong_shape():
    with pytest.raises(CheckFailed, match=r"^dbeta has shape \(1, 5\), expected \(5,\)$"):
        check_shape(np.ones((1, 5)), (5,), "dbeta")


def test_a_slip_is_recorded_and_the_values_still_compared(recording):
    assert check_shape(np.ones((1, 5)), (5,), "dbeta").shape == (5,)
    check_close(np.arange(3.0).reshape(3, 1), np.arange(3.0), "mu")
    check_dict_close({"b1": np.zeros((4,))}, {"b1": np.zeros((4, 1))}, "parameters")
    assert [slip[:3] for slip in recording.slips] == [
        ("dbeta", (1, 5), (5,)),
        ("mu", (3, 1), (3,)),
        ("b1 of parameters", (4,), (4, 1)),
    ]
    assert (
        recording.message(values_passed=True) == "dbeta: values right; shape (1, 5), expected (5,) (and 2 more like it)"
    )
    assert "values right" not in recording.message(values_passed=False)
    assert "keepdims" in recording.hint()
    with pytest.raises(CheckFailed, match="differs from the expected values"):
        check_close(np.ones((1, 5)), np.zeros(5), "dgamma")  # a slip never hides wrong values


def test_only_size_one_axes_make_a_slip(recording):
    with pytest.raises(CheckFailed, match=r"has shape \(3, 2\), expected \(2, 3\)"):
        check_shape(np.ones((3, 2)), (2, 3), "w")  # a transpose is a wrong shape, not a slip
    with pytest.raises(CheckFailed, match=r"has shape \(6,\), expected \(2, 3\)"):
        check_shape(np.ones(6), (2, 3), "w")
    assert not recording.slips and recording.wrong
    assert not recording.passed()


def test_every_suite_keeps_each_functions_points():
    """shape_points are carved out of a test's points: validate's per-function sums are unchanged."""
    from tests.nbtools import load_hidden_suite

    for name in catalogue.names():
        suite = load_hidden_suite(name)
        totals: dict = {}
        for test in vars(suite).values():
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "graded":
                    assert 0 <= mark.kwargs.get("shape_points", 0) < mark.kwargs["points"], (name, test.__name__)
                    totals[mark.args[0]] = totals.get(mark.args[0], 0) + mark.kwargs["points"]
        assert totals == {f: p for f, p in catalogue.load(name).points.items() if p}, name


@pytest.fixture(scope="module")
def keepdims(tmp_path_factory):
    names = ["forward_keepdims_statistics", "backward_keepdims_sums", "alt_keepdims_sums"]
    reports = grade_mutants(A, tmp_path_factory.mktemp("keepdims"), only=names, isolated=True)
    return {report.mutant.name: report for report in reports}


@pytest.mark.parametrize(
    "bug, function, lost",
    [
        ("forward_keepdims_statistics", "batchnorm_forward", 0.75),  # the train-mode and running-average shapes
        ("backward_keepdims_sums", "batchnorm_backward", 0.5),
        ("alt_keepdims_sums", "batchnorm_backward_alt", 0.5),
    ],
)
def test_keepdims_loses_only_the_shape_points(keepdims, bug, function, lost):
    result = keepdims[bug].result
    spec = catalogue.load(A)
    scores = {f: (s.score, s.max_score) for f, s in result.functions.items()}
    assert scores[function] == (spec.points[function] - lost, spec.points[function]), scores
    assert all(score == most for f, (score, most) in scores.items() if f != function), scores
    failed = [t for t in result.tests if not t.passed]
    assert failed and all(t.check.startswith(shapes.SHAPE_CHECK_PREFIX) for t in failed), [t.name for t in failed]
    assert any("values right; shape (1, 5), expected (5,)" in t.message for t in failed), [t.message for t in failed]


def test_a_backward_pass_after_a_keepdims_forward_keeps_its_points(keepdims):
    """Functions are graded, not notebooks: the forward's (1, D) cache costs the backward nothing."""
    result = keepdims["forward_keepdims_statistics"].result
    for function in (
        "batchnorm_backward",
        "batchnorm_backward_alt",
        "affine_bn_relu_forward",
        "affine_bn_relu_backward",
    ):
        assert result.functions[function].score == result.functions[function].max_score, function


def test_the_solution_passes_every_shape_check(full_marks_result):
    shape_checks = [t for t in full_marks_result.tests if t.check.startswith(shapes.SHAPE_CHECK_PREFIX)]
    assert len(shape_checks) == 7 and all(t.passed for t in shape_checks)


@pytest.fixture(scope="module")
def full_marks_result():
    from autograder.grading.grade import grade_notebook

    return grade_notebook(catalogue.load(A).solution_path, A)
