"""Public tests for the Gradient Checking assignment.

Each <function>_test(target) runs a few friendly checks on small fixed inputs
and prints "All tests passed." or raises AssertionError with a readable
message. The hidden tests check more inputs (and other cost functions).
"""
import numpy as np

from gradient_checking_utils import (
    backward_propagation_n,
    backward_propagation_n_fixed,
    forward_propagation_n,
    gradient_check_n_test_case,
)


def _is_number(value):
    return isinstance(value, (int, float, np.number)) or (isinstance(value, np.ndarray) and value.size == 1)


def forward_propagation_test(target):
    for x, theta, expected in [(2, 4, 8), (-3.0, 1.5, -4.5), (0.5, -2.0, -1.0)]:
        J = target(x, theta)
        assert _is_number(J), f"forward_propagation({x}, {theta}) should return a number, got {type(J).__name__}"
        assert np.isclose(J, expected, rtol=1e-12, atol=0), (
            f"forward_propagation({x}, {theta}) returned {J}, expected {expected} (J = theta * x)"
        )
    print("All tests passed.")


def backward_propagation_test(target):
    for x, theta, expected in [(2, 4, 2), (-3.0, 1.5, -3.0), (0.5, -2.0, 0.5)]:
        dtheta = target(x, theta)
        assert _is_number(dtheta), f"backward_propagation({x}, {theta}) should return a number, got {type(dtheta).__name__}"
        assert np.isclose(dtheta, expected, rtol=1e-12, atol=0), (
            f"backward_propagation({x}, {theta}) returned {dtheta}, expected {expected} "
            "(the derivative of theta * x with respect to theta)"
        )
    print("All tests passed.")


def gradient_check_test(target):
    # With correct forward_propagation and backward_propagation, the check passes.
    for x, theta in [(2, 4), (-3.0, 1.5)]:
        difference = target(x, theta)
        assert _is_number(difference), f"gradient_check should return a number, got {type(difference).__name__}"
        difference = float(np.reshape(difference, ()))
        assert 0 <= difference < 2e-7, (
            f"gradient_check({x}, {theta}) returned {difference:.3g}; with a correct forward_propagation and "
            "backward_propagation it should be below 2e-7 (check your formula, and both of those functions)"
        )
        difference = float(np.reshape(target(x, theta, epsilon=1e-3), ()))
        assert 0 <= difference < 1e-9, (
            f"gradient_check({x}, {theta}, epsilon=1e-3) returned {difference:.3g}; J = theta * x is linear, "
            "so the two-sided difference is exact up to rounding"
        )
    print("All tests passed.")


def gradient_check_n_test(target):
    X, Y, parameters = gradient_check_n_test_case()
    cost, cache = forward_propagation_n(X, Y, parameters)

    # The provided backward_propagation_n has two bugs: the check must expose them.
    gradients = backward_propagation_n(X, Y, cache)
    difference = target(parameters, gradients, X, Y)
    assert _is_number(difference), f"gradient_check_n should return a number, got {type(difference).__name__}"
    difference = float(np.reshape(difference, ()))
    expected = 0.2850931567761624
    assert np.isclose(difference, expected, rtol=1e-4, atol=0), (
        f"with the buggy backward_propagation_n, gradient_check_n returned {difference:.6g}, expected {expected:.6g}"
    )

    # The fixed version passes.
    gradients = backward_propagation_n_fixed(X, Y, cache)
    difference = float(np.reshape(target(parameters, gradients, X, Y), ()))
    assert 0 < difference < 2e-7, (
        f"with the correct backward_propagation_n_fixed, gradient_check_n returned {difference:.3g}; "
        "expected a small positive number below 2e-7"
    )

    # A larger epsilon: the two-sided difference has an error of order epsilon**2.
    difference = float(np.reshape(target(parameters, gradients, X, Y, epsilon=1e-3), ()))
    expected = 1.680e-08
    assert np.isclose(difference, expected, rtol=1e-2, atol=0), (
        f"gradient_check_n(..., epsilon=1e-3) returned {difference:.4g} on correct gradients, expected about "
        f"{expected:.4g}. Use the epsilon argument, and the two-sided difference "
        "(J_plus - J_minus) / (2 * epsilon): a one-sided one has a much larger error."
    )
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
