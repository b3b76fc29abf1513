"""The Batch normalization suite: planted bugs, other correct answers, public tests.

Each planted bug of autograder/suites/batch_norm/mutants.py must lose points on
its own function only. Correct answers written differently from the reference
(CS231n's nine-step staged backward, another closed form, statistics written
by hand, the running averages stored in place, a layer that inlines the affine
step or uses the staged backward) must get full marks: the suite checks
gradients numerically and the running averages by their recurrence, never one
way of writing them.
"""
from __future__ import annotations

import numpy as np
import pytest

from autograder.grading import catalogue
from autograder.course.mutants import failed_checks, grade_alternatives, lost_points
from tests.nbtools import MutantGrades, alternative_names, load_public_tests, mutant_names, run_public

A = "batch_norm"
public_tests = load_public_tests(A)
reference = catalogue.reference(A)



@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    return MutantGrades(A, tmp_path_factory.mktemp("mutants"))


@pytest.mark.parametrize("variant", alternative_names(A))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    result = grade_alternatives(A, tmp_path, only=[variant])[variant]
    failures = [t["name"] + ": " + t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert result["score"] == result["max_score"], failures


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_function(grades, bug):
    report = grades(bug)
    assert report.problems == [], report.problems   # it costs points of its own function(s), and only of them
    assert set(report.mutant.costs) & set(lost_points(report.result))
    for function in report.mutant.costs:
        for failure in failed_checks(report.result, function):
            assert "Hint:" in failure or " raised " in failure, failure  # a crash shows its traceback


def test_the_listed_bugs_of_the_issue_are_planted():
    names = set(mutant_names(A))
    assert {"forward_unbiased_variance", "forward_momentum_swapped", "backward_missing_variance_path",
            "backward_missing_mean_path", "alt_dgamma_wrong_axis"} <= names


def test_feedback_names_the_variance_slip(grades):
    text = " ".join(failed_checks(grades("forward_unbiased_variance").result, "batchnorm_forward"))
    assert "not by N - 1" in text


def test_public_tests_pass_on_the_reference():
    for function in catalogue.load(A).graded_functions:
        assert "All tests passed." in run_public(getattr(public_tests, function + "_test"), getattr(reference, function))
    out = run_public(public_tests.batchnorm_backward_test, reference.batchnorm_backward)
    assert "All tests passed." in out
    assert "All tests passed." in run_public(
        lambda target: public_tests.batchnorm_backward_test(target, reference.batchnorm_forward),
        reference.batchnorm_backward)


def test_public_backward_test_rejects_a_missing_path():
    def no_mean_path(dout, cache):
        x, x_hat, mu, var, gamma, beta, eps = cache
        dx_hat = dout * gamma
        inv_std = 1 / np.sqrt(var + eps)
        dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * inv_std ** 3
        return dx_hat * inv_std + dvar * 2 * (x - mu) / x.shape[0], np.sum(dout * x_hat, 0), np.sum(dout, 0)

    with pytest.raises(AssertionError, match="three paths"):
        run_public(public_tests.batchnorm_backward_test, no_mean_path)


def test_public_forward_test_rejects_test_mode_that_updates_the_running_averages():
    def updates_in_test_mode(x, gamma, beta, bn_param):
        bn_param["mode"] = "train"
        return reference.batchnorm_forward(x, gamma, beta, bn_param)

    with pytest.raises(AssertionError):
        run_public(public_tests.batchnorm_forward_test, updates_in_test_mode)


def test_demo_network_trains_with_the_reference_layer():
    """The helper network's gradients (batchnorm layers included) agree with numerical ones."""
    import batch_norm_utils as utils

    rng = np.random.RandomState(0)
    X, y = rng.randn(6, 5), rng.randint(0, 3, 6)
    params, bn_params = utils.init_network([5, 4, 3], 0.5, True, seed=1)
    _, grads = utils.network_loss(params, bn_params, X, y, reference.affine_bn_relu_forward,
                                  reference.affine_bn_relu_backward)
    for key in ("W1", "gamma1", "beta1", "W2"):
        numeric = np.zeros_like(params[key])
        for index in np.ndindex(*params[key].shape):
            old = params[key][index]
            params[key][index] = old + 1e-6
            plus = utils.network_loss(params, bn_params, X, y, reference.affine_bn_relu_forward,
                                      reference.affine_bn_relu_backward)[0]
            params[key][index] = old - 1e-6
            minus = utils.network_loss(params, bn_params, X, y, reference.affine_bn_relu_forward,
                                       reference.affine_bn_relu_backward)[0]
            params[key][index] = old
            numeric[index] = (plus - minus) / 2e-6
        assert np.allclose(grads[key], numeric, atol=1e-6), key
