"""Public tests for the Batch normalization assignment, run inside the notebook.

Each `<function>_test(target, ...)` runs a few friendly checks on small fixed
inputs, prints "All tests passed." or raises an AssertionError that says what
is wrong. The backward tests compare your gradients with numerical gradients
(two-sided differences) of the forward pass, so they accept any correct way
of writing the backward pass. `batchnorm_backward_test` also takes your
forward pass as a second argument (the notebook's test cell, `check_all()` and
`dlgrade check` pass it, by its parameter name `batchnorm_forward`): then the
cache comes from your `batchnorm_forward`, or from the notebook's formulas
while your forward pass still raises NotImplementedError. The hidden grader
runs more checks on other inputs.
"""
import numpy as np

from batch_norm_utils import affine_forward, relu_forward

CACHE_LAYOUT = "(x, x_hat, mu, var, gamma, beta, eps)"


def _inputs(seed, N, D):
    rng = np.random.RandomState(seed)
    x = 4 * rng.randn(N, D) + 3
    gamma = rng.rand(D) + 0.5
    beta = rng.randn(D)
    return x, gamma, beta


def _bn(x, gamma, beta, eps):
    """The train-mode forward pass of the notebook's formulas, and its cache."""
    mu, var = x.mean(axis=0), x.var(axis=0)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, (x, x_hat, mu, var, gamma, beta, eps)


def _numerical_gradient(f, x, df, h=1e-5):
    """sum(df * d f(x) / d x) by two-sided differences; f reads x, which is restored."""
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        old = x[index]
        x[index] = old + h
        plus = f().copy()
        x[index] = old - h
        minus = f().copy()
        x[index] = old
        grad[index] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def _relative_error(a, b):
    """Largest |a - b| / (|a| + |b|), absolute where both are below 1 (db of the layer is 0)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a) + np.abs(b))))


def _check_gradients(got, x, gamma, beta, dout, eps, what):
    assert isinstance(got, tuple) and len(got) == 3, f"{what} should return the tuple (dx, dgamma, dbeta)"
    dx, dgamma, dbeta = got
    for name, value, shape in (("dx", dx, x.shape), ("dgamma", dgamma, gamma.shape), ("dbeta", dbeta, beta.shape)):
        assert np.shape(value) == shape, f"{name} has shape {np.shape(value)}, expected {shape}"
    numerical = {
        "dx": _numerical_gradient(lambda: _bn(x, gamma, beta, eps)[0], x, dout),
        "dgamma": _numerical_gradient(lambda: _bn(x, gamma, beta, eps)[0], gamma, dout),
        "dbeta": _numerical_gradient(lambda: _bn(x, gamma, beta, eps)[0], beta, dout),
    }
    for name, value in (("dbeta", dbeta), ("dgamma", dgamma), ("dx", dx)):
        error = _relative_error(value, numerical[name])
        assert error < 1e-5, (
            f"{name} differs from the numerical gradient (relative error {error:.2g}). "
            + {"dbeta": "dbeta sums dout over the examples (axis 0)",
               "dgamma": "dgamma sums dout * x_hat over the examples (axis 0)",
               "dx": "x reaches out through x - mu, through mu and through var: add the three paths"}[name])


def batchnorm_forward_test(target):
    x, gamma, beta = _inputs(0, 200, 3)
    bn_param = {"mode": "train", "momentum": 0.8}
    out, cache = target(x, gamma, beta, bn_param)
    assert np.shape(out) == x.shape, f"out has shape {np.shape(out)}, expected {x.shape}"
    assert np.allclose(out.mean(axis=0), beta, atol=1e-7), "in train mode each column of out should have mean beta"
    assert np.allclose(out.std(axis=0), gamma, rtol=1e-4), \
        "in train mode each column of out should have standard deviation gamma (use the variance over axis 0)"
    expected_out, expected_cache = _bn(x, gamma, beta, 1e-5)
    assert np.allclose(out, expected_out), "out should be gamma * (x - mu) / sqrt(var + eps) + beta"
    assert isinstance(cache, tuple) and len(cache) == 7, f"the train-mode cache should be the tuple {CACHE_LAYOUT}"
    for name, got, want in zip(("x", "x_hat", "mu", "var", "gamma", "beta", "eps"), cache, expected_cache):
        assert np.shape(got) == np.shape(want) and np.allclose(got, want), \
            f"cache entry {name} is not what the cache layout {CACHE_LAYOUT} asks for"
    mu, var = x.mean(axis=0), x.var(axis=0)
    assert "running_mean" in bn_param and "running_var" in bn_param, \
        "store the running averages in bn_param['running_mean'] and bn_param['running_var']"
    assert np.allclose(bn_param["running_mean"], 0.2 * mu) and np.allclose(bn_param["running_var"], 0.2 * var), \
        "from zeros, one step gives running_mean = momentum * 0 + (1 - momentum) * mu (and the same for var)"

    running_mean, running_var = bn_param["running_mean"].copy(), bn_param["running_var"].copy()
    bn_param["mode"] = "test"
    x_test = x[:5] + 1
    out, _ = target(x_test, gamma, beta, bn_param)
    assert np.allclose(out, gamma * (x_test - running_mean) / np.sqrt(running_var + 1e-5) + beta), \
        "in test mode normalize with the running averages, not with the statistics of the batch"
    assert np.allclose(bn_param["running_mean"], running_mean) and np.allclose(bn_param["running_var"], running_var), \
        "test mode must not change the running averages"
    print("All tests passed.")


def batchnorm_backward_test(target, batchnorm_forward=None):
    """With ``batchnorm_forward`` (yours) the cache comes from it, else from the notebook's formulas."""
    forward = batchnorm_forward
    for seed, (N, D), eps in ((1, (4, 5), 1e-5), (2, (10, 3), 0.1)):
        x, gamma, beta = _inputs(seed, N, D)
        dout = np.random.RandomState(seed + 10).randn(N, D)
        cache = None
        if forward is not None:
            try:
                _, cache = forward(x.copy(), gamma.copy(), beta.copy(), {"mode": "train", "eps": eps})
            except NotImplementedError:
                print("batchnorm_forward is not done yet: testing with the cache of the notebook's formulas")
                forward = None
        if cache is None:
            _, cache = _bn(x, gamma, beta, eps)
        _check_gradients(target(dout, cache), x, gamma, beta, dout, eps, "batchnorm_backward")
    print("All tests passed.")


def batchnorm_backward_alt_test(target):
    for seed, (N, D), eps in ((3, (4, 5), 1e-5), (4, (7, 2), 0.1)):
        x, gamma, beta = _inputs(seed, N, D)
        dout = np.random.RandomState(seed + 10).randn(N, D)
        _check_gradients(target(dout, _bn(x, gamma, beta, eps)[1]), x, gamma, beta, dout, eps,
                         "batchnorm_backward_alt")
    print("All tests passed.")


def _layer_inputs(seed, N=6, D=4, M=3):
    rng = np.random.RandomState(seed)
    return rng.randn(N, D), rng.randn(D, M), rng.randn(M), rng.rand(M) + 0.5, rng.randn(M)


def _layer(x, w, b, gamma, beta):
    a, fc_cache = affine_forward(x, w, b)
    a_bn, bn_cache = _bn(a, gamma, beta, 1e-5)
    out, relu_cache = relu_forward(a_bn)
    return out, (fc_cache, bn_cache, relu_cache)


def affine_bn_relu_forward_test(target):
    x, w, b, gamma, beta = _layer_inputs(5)
    out, cache = target(x, w, b, gamma, beta, {"mode": "train"})
    expected, expected_cache = _layer(x, w, b, gamma, beta)
    assert np.shape(out) == expected.shape, f"out has shape {np.shape(out)}, expected {expected.shape}"
    assert np.allclose(out, expected), "out should be relu(batchnorm(x w + b)): affine, then batchnorm, then ReLU"
    assert isinstance(cache, tuple) and len(cache) == 3, "cache should be (fc_cache, bn_cache, relu_cache)"
    assert len(cache[0]) == 3 and np.allclose(cache[0][0], x), "fc_cache is the cache of affine_forward(x, w, b)"
    assert np.allclose(cache[2], expected_cache[2]), "relu_cache is the cache of relu_forward: the batchnorm output"
    print("All tests passed.")


def affine_bn_relu_backward_test(target):
    x, w, b, gamma, beta = _layer_inputs(6)
    _, cache = _layer(x, w, b, gamma, beta)
    dout = np.random.RandomState(16).randn(x.shape[0], w.shape[1])
    got = target(dout, cache)
    assert isinstance(got, tuple) and len(got) == 5, "return the tuple (dx, dw, db, dgamma, dbeta)"
    for name, value, array in zip(("dx", "dw", "db", "dgamma", "dbeta"), got, (x, w, b, gamma, beta)):
        assert np.shape(value) == array.shape, f"{name} has shape {np.shape(value)}, expected {array.shape}"
        numerical = _numerical_gradient(lambda: _layer(x, w, b, gamma, beta)[0], array, dout)
        error = _relative_error(value, numerical)
        assert error < 1e-5, (f"{name} differs from the numerical gradient (relative error {error:.2g}): "
                              "go back through the ReLU, then batchnorm, then the affine layer")
    print("All tests passed.")


def check_all(namespace=None):
    """Run every public test of the notebook and print a table of what passed, then how to submit.

    The notebook's last cell calls ``check_all()``; ``namespace`` defaults to the
    variables of the notebook that calls it.
    """
    import inspect
    import sys

    from notebook_check import check_all as print_check_table  # copied here by `dlgrade release`

    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    print_check_table(sys.modules[__name__], namespace)
