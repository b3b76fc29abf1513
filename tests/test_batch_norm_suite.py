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

import nbformat
import numpy as np
import pytest

from autograder.course.mutants import failed_checks, grade_alternatives, lost_points
from autograder.grading import catalogue
from tests.nbtools import (
    alternative_names,
    assert_full_marks,
    grade_with_function,
    graded_cell,
    load_public_tests,
    load_utils,
    mutant_names,
    numerical_gradient,
    run_public,
    solution_source,
    with_function,
)

A = "batch_norm"
public_tests = load_public_tests(A)


@pytest.mark.parametrize("variant", alternative_names(A))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    assert_full_marks(grade_alternatives(A, tmp_path, only=[variant])[variant])


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_function(grades, bug):
    report = grades(bug)
    assert report.problems == [], report.problems  # it costs points of its own function(s), and only of them
    assert set(report.mutant.costs) & set(lost_points(report.result))
    for function in report.mutant.costs:
        for failure in failed_checks(report.result, function):
            assert "Hint:" in failure or " raised " in failure, failure  # a crash shows its traceback


def test_the_listed_bugs_of_the_issue_are_planted():
    names = set(mutant_names(A))
    assert {
        "forward_unbiased_variance",
        "forward_momentum_swapped",
        "backward_missing_variance_path",
        "backward_missing_mean_path",
        "alt_dgamma_wrong_axis",
    } <= names


def test_feedback_names_the_variance_slip(grades):
    text = " ".join(failed_checks(grades("forward_unbiased_variance").result, "batchnorm_forward"))
    assert "not by N - 1" in text


def test_public_tests_pass_on_the_reference(reference):
    for function in catalogue.load(A).graded_functions:
        assert "All tests passed." in run_public(
            getattr(public_tests, function + "_test"), getattr(reference, function)
        )
    out = run_public(public_tests.batchnorm_backward_test, reference.batchnorm_backward)
    assert "All tests passed." in out
    assert "All tests passed." in run_public(
        lambda target: public_tests.batchnorm_backward_test(target, reference.batchnorm_forward),
        reference.batchnorm_backward,
    )


def test_public_backward_test_rejects_a_missing_path():
    def no_mean_path(dout, cache):
        x, x_hat, mu, var, gamma, beta, eps = cache
        dx_hat = dout * gamma
        inv_std = 1 / np.sqrt(var + eps)
        dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * inv_std**3
        return dx_hat * inv_std + dvar * 2 * (x - mu) / x.shape[0], np.sum(dout * x_hat, 0), np.sum(dout, 0)

    with pytest.raises(AssertionError, match="three paths"):
        run_public(public_tests.batchnorm_backward_test, no_mean_path)


def test_public_forward_test_rejects_test_mode_that_updates_the_running_averages(reference):
    def updates_in_test_mode(x, gamma, beta, bn_param):
        bn_param["mode"] = "train"
        return reference.batchnorm_forward(x, gamma, beta, bn_param)

    with pytest.raises(AssertionError):
        run_public(public_tests.batchnorm_forward_test, updates_in_test_mode)


def test_demo_network_trains_with_the_reference_layer(reference):
    """The helper network's gradients (batchnorm layers included) agree with numerical ones."""
    utils = load_utils(A)

    def loss():
        return utils.network_loss(
            params, bn_params, X, y, reference.affine_bn_relu_forward, reference.affine_bn_relu_backward
        )

    rng = np.random.RandomState(0)
    X, y = rng.randn(6, 5), rng.randint(0, 3, 6)
    params, bn_params = utils.init_network([5, 4, 3], 0.5, True, seed=1)
    _, grads = loss()
    for key in ("W1", "gamma1", "beta1", "W2"):
        numeric = numerical_gradient(lambda: loss()[0], params[key])
        assert np.allclose(grads[key], numeric, atol=1e-6), key


# ------------------------------------------------------------------ bn_param changed in the child


def test_running_averages_updated_in_place_reach_the_grader(tmp_path, grades):
    """A forward pass that only changes the arrays of bn_param in place (no assignment to the
    dict) gets full marks: the suite reads bn_param back from the child. One that never stores
    the new averages loses the forward's points, and only those."""
    result = grade_with_function(
        A,
        "batchnorm_forward",
        """
import numpy as np

def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean = bn_param.setdefault("running_mean", np.zeros(x.shape[1]))
    running_var = bn_param.setdefault("running_var", np.zeros(x.shape[1]))
    if bn_param["mode"] == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
        np.multiply(running_mean, momentum, out=running_mean)
        running_mean += (1 - momentum) * mu
        running_var[:] = momentum * running_var + (1 - momentum) * var
        x_hat = (x - mu) / np.sqrt(var + eps)
        return gamma * x_hat + beta, (x, x_hat, mu, var, gamma, beta, eps)
    return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta, None
""",
        tmp_path / "in_place.ipynb",
    )
    assert_full_marks(result)
    not_stored = grades("forward_running_averages_not_stored")
    assert "batchnorm_forward" in lost_points(not_stored.result) and not_stored.problems == []


# ------------------------------------------------------------------ a public test with two arguments


def test_check_all_gives_the_backward_test_the_notebooks_forward(reference, capsys):
    produced, received = set(), []

    def forward(x, gamma, beta, bn_param):
        out, cache = reference.batchnorm_forward(x, gamma, beta, bn_param)
        produced.add(id(cache))
        return out, cache

    def backward(dout, cache):
        received.append(id(cache) in produced)
        return reference.batchnorm_backward(dout, cache)

    namespace = dict(vars(reference), batchnorm_forward=forward, batchnorm_backward=backward)
    public_tests.check_all(namespace)
    assert "5 of 5 public tests passed." in capsys.readouterr().out
    assert received == [True, True], "the backward test ran on caches of the notebook's forward, as its test cell"

    def not_done(x, gamma, beta, bn_param):
        raise NotImplementedError()

    public_tests.check_all(dict(vars(reference), batchnorm_forward=not_done))
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("batchnorm")}
    assert "not done" in rows["batchnorm_forward"]
    assert "passed" in rows["batchnorm_backward"], "a forward not done yet: the backward test uses the formulas"


def test_dlgrade_check_gives_the_backward_test_the_notebooks_forward():
    """In the sandbox too (dlgrade check, validate): a forward whose cache drops eps makes the
    backward test fail (eps = 0.1 there), which it could not if the forward were not passed."""
    from autograder.course.public import public_results

    solution_forward = solution_source(A, "batchnorm_forward")
    wrong_cache = solution_forward.replace(
        "cache = (x, x_hat, mu, var, gamma, beta, eps)", "cache = (x, x_hat, mu, var, gamma, beta, 0.0)"
    )
    assert wrong_cache != solution_forward
    results, _ = public_results(with_function(A, "batchnorm_forward", wrong_cache), A)
    assert results["batchnorm_backward"][0] == "failed" and results["batchnorm_backward_alt"][0] == "passed"
    stub = graded_cell(
        nbformat.read(str(catalogue.load(A).released_notebook), as_version=4), "batchnorm_forward"
    ).source
    results, _ = public_results(with_function(A, "batchnorm_forward", stub), A)
    assert results["batchnorm_forward"][0] == "failed" and results["batchnorm_backward"][0] == "passed"
