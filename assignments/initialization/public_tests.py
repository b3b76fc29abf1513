"""Public tests for the Initialization assignment.

Friendly first checks, run inside the notebook. Each prints "All tests passed."
or raises AssertionError with a message saying what to look at.

The fixed values below come from np.random.seed(3) followed by the draws of
W1, then W2, with np.random.randn, as in the provided code. If your values
differ only because you draw in another order or use another random
generator, the test says so and checks the statistics instead: the grader
checks shapes and statistics, never one sequence of random numbers.
"""
import numpy as np

# With np.random.seed(3): W1 = randn(2, 3) * 10, W2 = randn(1, 2) * 10.
RANDOM_EXPECTED = {
    "W1": np.array([[17.88628473, 4.36509851, 0.96497468],
                    [-18.63492703, -2.77388203, -3.54758979]]),
    "W2": np.array([[-0.82741481, -6.27000677]]),
}

# With np.random.seed(3): W1 = randn(4, 2) * sqrt(2 / 2), W2 = randn(1, 4) * sqrt(2 / 4).
HE_EXPECTED = {
    "W1": np.array([[1.78862847, 0.43650985],
                    [0.09649747, -1.8634927],
                    [-0.2773882, -0.35475898],
                    [-0.08274148, -0.62700068]]),
    "W2": np.array([[-0.03098412, -0.33744411, -0.92904268, 0.62552248]]),
}


def _check_structure(parameters, layers_dims, fn_name):
    """Keys W1, b1, ..., WL, bL; W of shape (n_l, n_{l-1}); b zeros of shape (n_l, 1)."""
    assert isinstance(parameters, dict), f"{fn_name} should return a dict, got {type(parameters).__name__}"
    L = len(layers_dims) - 1
    expected_keys = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    missing = sorted(expected_keys - set(parameters))
    extra = sorted(set(parameters) - expected_keys)
    assert not missing and not extra, (
        f"{fn_name}({layers_dims}): missing keys {missing}, unexpected keys {extra}. "
        f"A network with layers_dims of length {len(layers_dims)} has {L} layers: W1, b1, ..., W{L}, b{L}."
    )
    for l in range(1, L + 1):
        W, b = parameters[f"W{l}"], parameters[f"b{l}"]
        assert isinstance(W, np.ndarray) and isinstance(b, np.ndarray), f"W{l} and b{l} should be numpy arrays"
        assert W.shape == (layers_dims[l], layers_dims[l - 1]), (
            f"W{l} has shape {W.shape}, expected (layers_dims[{l}], layers_dims[{l - 1}]) = "
            f"{(layers_dims[l], layers_dims[l - 1])}"
        )
        assert b.shape == (layers_dims[l], 1), (
            f"b{l} has shape {b.shape}, expected (layers_dims[{l}], 1) = {(layers_dims[l], 1)}: "
            f"a column vector, not a 1-D array"
        )
        assert W.dtype.kind == "f" and b.dtype.kind == "f", f"W{l} and b{l} should hold floats"
        assert np.all(b == 0), f"b{l} should be all zeros: biases do not need random values"


def _check_fixed_values(parameters, expected, fn_name, scale_hint):
    """Compare with the seed-3 values; return True when they match.

    A match up to one constant factor means the scale is wrong (an error);
    any other difference is only a different order of random draws (a note).
    """
    if all(np.allclose(parameters[k], v, atol=1e-7) for k, v in expected.items()):
        return True
    for k, v in expected.items():
        got = parameters[k]
        ratio = got.ravel() / v.ravel()
        if np.allclose(ratio, ratio[0], rtol=1e-6) and not np.isclose(ratio[0], 1.0):
            raise AssertionError(
                f"{fn_name}: {k} is the expected {k} multiplied by {ratio[0]:.4g}. "
                f"The random numbers are right but the scale is not: {scale_hint}"
            )
    print(f"Note: {fn_name} does not reproduce the values of np.random.seed(3) with W1 drawn "
          f"before W2. That is fine for the grader, which checks statistics; "
          f"the statistical checks below still apply.")
    return False


def _check_std(W, expected_std, what, hint):
    """Mean near 0 and standard deviation within 3% of expected_std on a large matrix."""
    std = float(W.std())
    mean = float(W.mean())
    assert abs(mean) < 0.05 * expected_std, (
        f"{what} has mean {mean:.4g}; random weights should be centred on 0. {hint}"
    )
    assert abs(std / expected_std - 1) < 0.03, (
        f"{what} has standard deviation {std:.4g}, expected {expected_std:.4g}. {hint}"
    )


def initialize_parameters_zeros_test(target):
    for layers_dims in ([3, 2, 1], [5, 4, 3, 2, 1], [2, 1]):
        parameters = target(layers_dims)
        _check_structure(parameters, layers_dims, "initialize_parameters_zeros")
        for key, value in parameters.items():
            assert np.all(value == 0), f"{key} should be all zeros (np.zeros)"
    print("All tests passed.")


def initialize_parameters_random_test(target):
    hint = "use np.random.randn(layers_dims[l], layers_dims[l-1]) * 10"
    parameters = target([3, 2, 1])
    _check_structure(parameters, [3, 2, 1], "initialize_parameters_random")
    _check_fixed_values(parameters, RANDOM_EXPECTED, "initialize_parameters_random", hint)
    for layers_dims in ([4, 1], [5, 4, 3, 2, 1]):
        _check_structure(target(layers_dims), layers_dims, "initialize_parameters_random")
    big = target([1000, 500, 1])
    _check_std(big["W1"], 10.0, "W1 of initialize_parameters_random([1000, 500, 1])", hint)
    print("All tests passed.")


def initialize_parameters_he_test(target):
    hint = "use np.random.randn(layers_dims[l], layers_dims[l-1]) * np.sqrt(2 / layers_dims[l-1])"
    parameters = target([2, 4, 1])
    _check_structure(parameters, [2, 4, 1], "initialize_parameters_he")
    _check_fixed_values(parameters, HE_EXPECTED, "initialize_parameters_he", hint)
    for layers_dims in ([4, 1], [5, 4, 3, 2, 1]):
        _check_structure(target(layers_dims), layers_dims, "initialize_parameters_he")
    big = target([1000, 400, 800, 1])
    _check_std(big["W1"], np.sqrt(2 / 1000), "W1 of initialize_parameters_he([1000, 400, 800, 1])", hint)
    _check_std(big["W2"], np.sqrt(2 / 400), "W2 of initialize_parameters_he([1000, 400, 800, 1])",
               hint + " (n_prev is the size of the previous layer)")
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
