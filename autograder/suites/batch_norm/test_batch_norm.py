"""Hidden suite for the Batch normalization assignment.

batchnorm_forward updates ``bn_param`` in place (CS231n's interface), and a
change to an argument in the sandboxed child never reaches the grader: the
forward checks therefore run through a probe that calls the learner's
function in the child and returns ``(out, cache, bn_param)`` as plain data.

The backward passes are checked against numerical gradients of the forward
pass (computed here, on the reference forward, never on learner code) on
several shapes and eps values, with the cache built by the reference forward
in the layout the notebook fixes: any correct way of writing the backward
pass gets full marks, and a wrong forward pass costs only the forward's points.

The affine-batchnorm-ReLU layer is graded on its composition: its child is
given the reference batchnorm functions before the layer's cell runs
(grading/stand_ins.py), so a wrong batchnorm_backward costs only its own
points, however the layer reaches it (by name, an alias, a default argument,
a closure or a class attribute).

Every clause of the notebook's spec, and the check that tests it (the planted
bugs of mutants.py that it catches). Reading mode, eps and momentum with their
defaults and starting the running averages at zeros is given code.

batchnorm_forward
- train: mu and the 1/N var of each feature (axis 0), x_hat with eps (bn_param's eps),
  out = gamma x_hat + beta: test_forward_train_output_and_cache
  (forward_unbiased_variance, forward_ignores_eps, forward_keepdims_statistics)
- the cache is (x, x_hat, mu, var, gamma, beta, eps): test_forward_train_output_and_cache
- running = m running + (1 - m) statistic, m weighing the old value, for a given and
  the default momentum, the variance without eps (at eps 0.5):
  test_forward_running_averages_follow_the_recurrence (forward_momentum_swapped,
  forward_eps_in_running_variance)
- the running averages stored back into bn_param:
  test_forward_running_averages_follow_the_recurrence (forward_running_averages_not_stored)
- test mode normalizes with the running averages and eps, leaves them unchanged, and
  its cache is None: test_forward_test_mode_uses_and_keeps_running_statistics
  (forward_test_mode_uses_batch_statistics, forward_test_mode_cache)
batchnorm_backward, batchnorm_backward_alt
- dx, dgamma (D,), dbeta (D,) of the cache's forward pass, with the cache's eps:
  test_backward_matches_numerical_gradients, test_backward_alt_matches_numerical_gradients
  (backward_missing_variance_path, backward_missing_mean_path, backward_constant_eps,
  alt_dgamma_wrong_axis, alt_dbeta_wrong_axis, *_keepdims_sums); the closed form itself is
  not required: any correct gradient is accepted
affine_bn_relu_forward
- relu(batchnorm(x w + b)) with bn_param passed on (mode, running averages):
  test_layer_forward_composes_affine_batchnorm_relu (layer_relu_before_batchnorm)
- cache = (fc_cache, bn_cache, relu_cache), each what its step returns:
  test_layer_forward_composes_affine_batchnorm_relu (layer_caches_the_affine_output)
affine_bn_relu_backward
- relu_backward, a batchnorm backward, affine_backward; (dx, dw, db, dgamma, dbeta):
  test_layer_backward_composes_the_backward_passes (layer_backward_skips_relu)
"""

import numpy as np
import pytest

from autograder.grading.checks import CheckFailed, check, check_close, check_shape, check_type, seeded_rng

# (N, D, eps): a few shapes, a large eps so that forgetting it shows
CASES = [(4, 5, 1e-5), (10, 3, 1e-5), (2, 6, 0.5), (30, 1, 0.1)]

# Calls a learner function in the child and returns its result and the dict
# argument it may have updated in place (param None: no such argument). A
# missing function raises a NameError naming it (name=), which the grader
# reports as "not defined".
CALL_WITH_PARAM = """
def probe(ns, function, args, param):
    if not callable(ns.get(function)):
        raise NameError(function + " is not defined", name=function)
    out = ns[function](*args) if param is None else ns[function](*args, param)
    return out, param
"""


def inputs(seed, N, D):
    rng = seeded_rng(seed)
    x = 3 * rng.randn(N, D) + rng.randn(D)
    gamma = rng.rand(D) + 0.5
    beta = rng.randn(D)
    dout = rng.randn(N, D)
    return x, gamma, beta, dout


def forward_call(learner, x, gamma, beta, bn_param):
    """(out, cache, bn_param after the call) of the learner's batchnorm_forward."""
    result = learner.probe(
        CALL_WITH_PARAM, function="batchnorm_forward", args=[x, gamma, beta], param=bn_param, what="batchnorm_forward"
    )
    (out_cache, param) = result
    if not (isinstance(out_cache, (tuple, list)) and len(out_cache) == 2):
        raise CheckFailed("batchnorm_forward should return the pair (out, cache)", hint="return out, cache")
    check_type(param, dict, "bn_param after the call")
    return out_cache[0], out_cache[1], param


def running(param, key, what):
    check(
        key in param,
        f"{what}: bn_param has no '{key}' after the call",
        hint=f"store the updated running average in bn_param['{key}']",
    )
    return param[key]


# ----------------------------------------------------------------------------
# batchnorm_forward (4 points)
# ----------------------------------------------------------------------------


@pytest.mark.graded("batchnorm_forward", points=2, shape_points=0.5)
def test_forward_train_output_and_cache(learner, reference):
    """Train mode: out = gamma * x_hat + beta with the batch's mean and (1/N) variance, and eps (several shapes)."""
    for i, (N, D, eps) in enumerate(CASES):
        x, gamma, beta, _ = inputs(10 + i, N, D)
        what = f"train-mode out (N = {N}, D = {D}, eps = {eps})"
        out, cache, _ = forward_call(learner, x, gamma, beta, {"mode": "train", "eps": eps})
        expected, expected_cache = reference.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
        arr = check_shape(out, expected.shape, what)
        if not np.allclose(arr, expected, rtol=1e-5, atol=1e-7):
            unbiased = x.var(axis=0, ddof=1) if N > 1 else x.var(axis=0)
            if np.allclose(arr, gamma * (x - x.mean(0)) / np.sqrt(unbiased + eps) + beta):
                hint = "the notebook's variance divides by N (np.var(x, axis=0)), not by N - 1"
            elif np.allclose(arr, gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5) + beta) and eps != 1e-5:
                hint = "use bn_param['eps'] when it is given (default 1e-5)"
            elif np.allclose(arr, gamma * (x - x.mean(0)) / np.sqrt(x.var(0)) + beta, rtol=1e-5):
                hint = "add eps to the variance before the square root"
            else:
                hint = "mu and var are the mean and variance over the batch (axis 0) of each feature"
            check_close(arr, expected, what, hint=hint, atol=1e-7)
        check(
            isinstance(cache, (tuple, list)) and len(cache) == 7,
            f"the train-mode cache (N = {N}, D = {D}) is not a 7-tuple",
            hint="cache = (x, x_hat, mu, var, gamma, beta, eps)",
        )
        for name, got, want in zip(("x", "x_hat", "mu", "var", "gamma", "beta", "eps"), cache, expected_cache):
            check_close(
                got,
                np.asarray(want, dtype=np.float64),
                f"cache entry {name} (N = {N}, D = {D})",
                hint="cache = (x, x_hat, mu, var, gamma, beta, eps), var the 1/N batch variance",
                atol=1e-7,
            )


# (bn_param of the first call, momentum it means): a given momentum with the default eps, and the
# default momentum with a large eps, so that eps folded into the running variance shows (at eps =
# 1e-5 it is within the tolerance).
RUNNING_SETTINGS = [({"momentum": 0.7}, 0.7), ({"eps": 0.5}, 0.9)]


@pytest.mark.graded("batchnorm_forward", points=1, shape_points=0.25)
def test_forward_running_averages_follow_the_recurrence(learner):
    """Train mode: running = momentum * running + (1 - momentum) * batch statistic (1/N variance, no eps), over steps."""
    N, D = 8, 4
    for settings, momentum in RUNNING_SETTINGS:
        check_running_averages(learner, N, D, settings, momentum)


def check_running_averages(learner, N, D, settings, momentum):
    param = {"mode": "train", **settings}
    mean, var = np.zeros(D), np.zeros(D)
    for step in range(3):
        x, gamma, beta, _ = inputs(30 + step, N, D)
        _, _, param = forward_call(learner, x, gamma, beta, param)
        mean = momentum * mean + (1 - momentum) * x.mean(axis=0)
        var = momentum * var + (1 - momentum) * x.var(axis=0)
        what = f"after {step + 1} train-mode call(s) with " + ", ".join(f"{k} {v}" for k, v in settings.items())
        got_mean = running(param, "running_mean", what)
        got_var = running(param, "running_var", what)
        for name, got, want in (("running_mean", got_mean, mean), ("running_var", got_var, var)):
            check_close(
                got,
                want,
                f"{name} {what}",
                atol=1e-8,
                hint="running = momentum * running + (1 - momentum) * batch statistic; "
                "momentum weighs the old value, and the variance is the 1/N one, without eps",
            )
        param = dict(param, **settings)


@pytest.mark.graded("batchnorm_forward", points=1, shape_points=0.25)
def test_forward_test_mode_uses_and_keeps_running_statistics(learner, reference):
    """Test mode: x is normalized with the running averages, which stay unchanged; the cache is None (several eps)."""
    for i, (N, D, eps) in enumerate(CASES):
        x, gamma, beta, _ = inputs(40 + i, N, D)
        rng = seeded_rng(50 + i)
        running_mean, running_var = rng.randn(D), rng.rand(D) + 0.2
        param = {
            "mode": "test",
            "eps": eps,
            "momentum": 0.9,
            "running_mean": running_mean.copy(),
            "running_var": running_var.copy(),
        }
        out, cache, after = forward_call(learner, x, gamma, beta, dict(param))
        expected, _ = reference.batchnorm_forward(x, gamma, beta, dict(param))
        what = f"test-mode out (N = {N}, D = {D}, eps = {eps})"
        check_close(
            out,
            expected,
            what,
            atol=1e-7,
            hint="in test mode use bn_param's running_mean and running_var (and eps), not the batch's statistics",
        )
        for key, before in (("running_mean", running_mean), ("running_var", running_var)):
            check_close(
                running(after, key, "test mode"),
                before,
                f"{key} after a test-mode call",
                hint="test mode only reads the running averages; update them in train mode only",
                atol=0,
            )
        check(
            cache is None,
            "the test-mode cache is not None",
            hint="there is no backward pass at test time: leave cache = None in test mode",
        )


# ----------------------------------------------------------------------------
# batchnorm_backward (3 points) and batchnorm_backward_alt (2 points)
# ----------------------------------------------------------------------------


def numerical_gradients(reference, x, gamma, beta, dout, eps, h=1e-5):
    """d sum(dout * out) / d x, gamma, beta of the reference forward, by two-sided differences."""

    def forward():
        return reference.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})[0]

    grads = []
    for array in (x, gamma, beta):
        grad = np.zeros_like(array)
        for index in np.ndindex(*array.shape):
            old = array[index]
            array[index] = old + h
            plus = np.sum(forward() * dout)
            array[index] = old - h
            minus = np.sum(forward() * dout)
            array[index] = old
            grad[index] = (plus - minus) / (2 * h)
        grads.append(grad)
    return grads


BACKWARD_HINTS = {
    "dbeta": "dbeta = np.sum(dout, axis=0): sum over the examples",
    "dgamma": "dgamma = np.sum(dout * x_hat, axis=0): sum over the examples, not over the features",
    "dx": "x reaches the output through x - mu, through mu and through var: add the gradients of all three paths",
}


def check_backward(learner, reference, function, seed0):
    for i, (N, D, eps) in enumerate(CASES):
        x, gamma, beta, dout = inputs(seed0 + i, N, D)
        _, cache = reference.batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
        expected = numerical_gradients(reference, x, gamma, beta, dout, eps)
        got = learner.call(function, dout, cache)
        check(
            isinstance(got, (tuple, list)) and len(got) == 3,
            f"{function} should return (dx, dgamma, dbeta)",
            hint="return dx, dgamma, dbeta",
        )
        for name, value, want in sorted(zip(("dx", "dgamma", "dbeta"), got, expected), key=lambda t: t[0] == "dx"):
            check_close(
                value,
                want,
                f"{name} (N = {N}, D = {D}, eps = {eps}) against the numerical gradient",
                hint=BACKWARD_HINTS[name],
                rtol=1e-4,
                atol=1e-6,
            )


@pytest.mark.graded("batchnorm_backward", points=3, shape_points=0.5)
def test_backward_matches_numerical_gradients(learner, reference):
    """dx, dgamma, dbeta agree with numerical gradients of the forward pass (several shapes and eps)."""
    check_backward(learner, reference, "batchnorm_backward", 60)


@pytest.mark.graded("batchnorm_backward_alt", points=2, shape_points=0.5)
def test_backward_alt_matches_numerical_gradients(learner, reference):
    """The closed-form dx, dgamma, dbeta agree with numerical gradients (several shapes and eps)."""
    check_backward(learner, reference, "batchnorm_backward_alt", 70)


# ----------------------------------------------------------------------------
# affine_bn_relu_forward (2 points) and affine_bn_relu_backward (2 points)
# ----------------------------------------------------------------------------

LAYERS = [(6, 4, 3), (9, 2, 5), (3, 7, 2)]


def layer_inputs(seed, N, D, M):
    rng = seeded_rng(seed)
    return [rng.randn(N, D), rng.randn(D, M), rng.randn(M), rng.rand(M) + 0.5, rng.randn(M)]


def layer_call(learner, function, args, param):
    """The layer's (result, bn_param after the call); its child has the reference batchnorm functions."""
    return learner.probe(CALL_WITH_PARAM, function=function, args=args, param=param, what=function)


@pytest.mark.graded("affine_bn_relu_forward", points=2, shape_points=0.5)
def test_layer_forward_composes_affine_batchnorm_relu(learner, reference):
    """out = relu(batchnorm(x w + b)) in train and test mode; cache = (fc_cache, bn_cache, relu_cache) of its steps."""
    for i, (N, D, M) in enumerate(LAYERS):
        args = layer_inputs(80 + i, N, D, M)
        param = {"mode": "train", "momentum": 0.5}
        got, after = layer_call(learner, "affine_bn_relu_forward", args, dict(param))
        expected_param = dict(param)
        expected, expected_cache = reference.affine_bn_relu_forward(*args, expected_param)
        check(
            isinstance(got, (tuple, list)) and len(got) == 2,
            "affine_bn_relu_forward should return (out, cache)",
            hint="return out, cache",
        )
        out, cache = got
        what = f"train-mode out (N = {N}, D = {D}, M = {M})"
        check_close(
            out,
            expected,
            what,
            atol=1e-7,
            hint="affine_forward(x, w, b), then batchnorm_forward on its output with bn_param, then relu_forward",
        )
        check(
            isinstance(cache, (tuple, list)) and len(cache) == 3,
            "the cache should be (fc_cache, bn_cache, relu_cache)",
            hint="keep the three caches the layers return, in that order",
        )
        check_close(
            cache[2],
            expected_cache[2],
            f"relu_cache (N = {N}, M = {M})",
            atol=1e-7,
            hint="relu_cache is what relu_forward returns: its input, the batchnorm output",
        )
        for index, name, hint in (
            (0, "fc_cache", "fc_cache is what affine_forward returns: (x, w, b)"),
            (1, "bn_cache", "bn_cache is what batchnorm_forward returns: (x, x_hat, mu, var, gamma, beta, eps)"),
        ):
            part, expected_part = cache[index], expected_cache[index]
            check(
                isinstance(part, (tuple, list)) and len(part) == len(expected_part),
                f"{name} should be a {len(expected_part)}-tuple",
                hint=hint,
            )
            for k, (got_entry, want_entry) in enumerate(zip(part, expected_part)):
                check_close(
                    got_entry,
                    np.asarray(want_entry, dtype=np.float64),
                    f"entry {k} of {name} (N = {N}, D = {D}, M = {M})",
                    atol=1e-7,
                    hint=hint,
                )
        check_close(
            running(after, "running_mean", "the layer in train mode"),
            expected_param["running_mean"],
            "running_mean after the layer's train-mode call",
            atol=1e-8,
            hint="pass bn_param itself to batchnorm_forward, so its running averages are updated",
        )
        test_param = dict(expected_param, mode="test")
        got, _ = layer_call(learner, "affine_bn_relu_forward", args, dict(test_param))
        expected, _ = reference.affine_bn_relu_forward(*args, dict(test_param))
        check_close(
            got[0] if isinstance(got, (tuple, list)) else got,
            expected,
            f"test-mode out (N = {N}, D = {D}, M = {M})",
            atol=1e-7,
            hint="pass bn_param (with its mode) on to batchnorm_forward",
        )


@pytest.mark.graded("affine_bn_relu_backward", points=2, shape_points=0.5)
def test_layer_backward_composes_the_backward_passes(learner, reference):
    """(dx, dw, db, dgamma, dbeta) of the layer match the chain rule through ReLU, batchnorm and affine."""
    for i, (N, D, M) in enumerate(LAYERS):
        args = layer_inputs(90 + i, N, D, M)
        _, cache = reference.affine_bn_relu_forward(*args, {"mode": "train"})
        dout = seeded_rng(95 + i).randn(N, M)
        expected = reference.affine_bn_relu_backward(dout, cache)
        got, _ = layer_call(learner, "affine_bn_relu_backward", [dout, cache], None)
        check(
            isinstance(got, (tuple, list)) and len(got) == 5,
            "affine_bn_relu_backward should return (dx, dw, db, dgamma, dbeta)",
            hint="return dx, dw, db, dgamma, dbeta",
        )
        for name, value, want in zip(("dx", "dw", "db", "dgamma", "dbeta"), got, expected):
            check_close(
                value,
                want,
                f"{name} of the layer (N = {N}, D = {D}, M = {M})",
                rtol=1e-5,
                atol=1e-7,
                hint="relu_backward with relu_cache first, then a batchnorm backward with bn_cache, "
                "then affine_backward with fc_cache",
            )
