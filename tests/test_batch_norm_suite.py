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
from tests.mutant_tools import functions_that_lost_points, grade_mutant, load_mutants
from tests.nbtools import failed_checks, grade_sources, load_public_tests, run_public

A = "batch_norm"
public_tests = load_public_tests(A)
reference = catalogue.reference(A)

ALTERNATIVES = {
    "batchnorm_forward": '''
import numpy as np

def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    bn_param.setdefault("running_mean", np.zeros(D))
    bn_param.setdefault("running_var", np.zeros(D))
    if mode == "train":
        sample_mean = x.sum(axis=0) / N
        centered = x - sample_mean
        sample_var = (centered ** 2).sum(axis=0) / N
        std = (sample_var + eps) ** 0.5
        x_norm = centered / std
        bn_param["running_mean"] *= momentum
        bn_param["running_mean"] += (1 - momentum) * sample_mean
        bn_param["running_var"] = momentum * bn_param["running_var"] + (1.0 - momentum) * sample_var
        return x_norm * gamma + beta, (x, x_norm, sample_mean, sample_var, gamma, beta, eps)
    out = gamma * ((x - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + eps)) + beta
    return out, None
''',
    # CS231n's staged backward: every node of the graph, recomputed from the cache.
    "batchnorm_backward": '''
import numpy as np

def batchnorm_backward(dout, cache):
    x, xhat, mu, var, gamma, beta, eps = cache
    N, D = dout.shape
    xmu = x - mu
    sqrtvar = np.sqrt(var + eps)
    ivar = 1. / sqrtvar
    dbeta = np.sum(dout, axis=0)
    dgammax = dout
    dgamma = np.sum(dgammax * xhat, axis=0)
    dxhat = dgammax * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1. / (sqrtvar ** 2) * divar
    dvar = 0.5 * 1. / np.sqrt(var + eps) * dsqrtvar
    dsq = 1. / N * np.ones((N, D)) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dxmu1 + dxmu2, axis=0)
    dx2 = 1. / N * np.ones((N, D)) * dmu
    dx = dx1 + dx2
    return dx, dgamma, dbeta
''',
    # The closed form written with x - mu instead of x_hat.
    "batchnorm_backward_alt": '''
import numpy as np

def batchnorm_backward_alt(dout, cache):
    x, _, mu, var, gamma, _, eps = cache
    N = x.shape[0]
    inv = (var + eps) ** -0.5
    dbeta = dout.sum(0)
    dgamma = (dout * (x - mu) * inv).sum(0)
    dx = (1. / N) * gamma * inv * (N * dout - dout.sum(0) - (x - mu) * inv ** 2 * np.sum(dout * (x - mu), axis=0))
    return dx, dgamma, dbeta
''',
    "affine_bn_relu_forward": '''
import numpy as np

def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    z = np.dot(x, w) + b
    z_bn, bn_cache = batchnorm_forward(z, gamma, beta, bn_param)
    return np.maximum(z_bn, 0), ((x, w, b), bn_cache, z_bn)
''',
    "affine_bn_relu_backward": '''
import numpy as np

def affine_bn_relu_backward(dout, cache):
    (x, w, b), bn_cache, z_bn = cache
    dz, dgamma, dbeta = batchnorm_backward(np.where(z_bn > 0, dout, 0.0), bn_cache)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0), dgamma, dbeta
''',
}


def test_correct_answers_written_differently_get_full_marks(tmp_path):
    result = grade_sources(A, tmp_path, ALTERNATIVES)
    failures = [t["name"] + ": " + t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert result["score"] == result["max_score"], failures


MUTANTS = load_mutants(A)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_planted_bug_costs_only_its_own_function(mutant, tmp_path):
    result = grade_mutant(A, mutant, tmp_path)
    assert functions_that_lost_points(result) == set(mutant.costs)
    for function in mutant.costs:
        for failure in failed_checks(result, function):
            assert "Hint:" in failure or " raised " in failure, failure  # a crash shows its traceback


def test_the_listed_bugs_of_the_issue_are_planted():
    names = {m.name for m in MUTANTS}
    assert {"forward_unbiased_variance", "forward_momentum_swapped", "backward_missing_variance_path",
            "backward_missing_mean_path", "alt_dgamma_wrong_axis"} <= names


def test_feedback_names_the_variance_slip(tmp_path):
    mutant = next(m for m in MUTANTS if m.name == "forward_unbiased_variance")
    text = " ".join(failed_checks(grade_mutant(A, mutant, tmp_path), "batchnorm_forward"))
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
