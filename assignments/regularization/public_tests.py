"""Public tests for the Regularization assignment, run inside the notebook.

Each `<function>_test(target)` runs a few friendly checks on small fixed
inputs, prints "All tests passed." or raises an AssertionError that says what
is wrong. The hidden grader runs more checks on other inputs.

The dropout tests never compare against one particular random draw: any
correct way of drawing the masks passes.
"""
import numpy as np

from regularization_utils import backward_propagation, compute_cost, forward_propagation

GRAD_KEYS = ["dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1"]


def _problem(seed, n_x=3, n1=2, n2=3, m=5):
    """Small fixed inputs: X (n_x, m), Y (1, m) and parameters of [n_x, n1, n2, 1]."""
    rng = np.random.RandomState(seed)
    parameters = {
        "W1": rng.randn(n1, n_x), "b1": rng.randn(n1, 1),
        "W2": rng.randn(n2, n1), "b2": rng.randn(n2, 1),
        "W3": rng.randn(1, n2), "b3": rng.randn(1, 1),
    }
    X = rng.randn(n_x, m)
    Y = (rng.rand(1, m) > 0.5).astype(int)
    return X, Y, parameters


def _close(a, b, atol=1e-9):
    return np.allclose(np.asarray(a, dtype=float), b, rtol=1e-6, atol=atol)


def _check_grads(grads, what):
    assert isinstance(grads, dict), f"{what} should return a dict, got {type(grads).__name__}"
    missing = [k for k in GRAD_KEYS if k not in grads]
    assert not missing, f"{what}: the returned dict lacks the keys {missing}"


def compute_cost_with_regularization_test(target):
    X, Y, parameters = _problem(1)
    A3 = np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]])
    cross_entropy = compute_cost(A3, Y)

    cost = target(A3, Y, parameters, 0)
    assert np.size(cost) == 1, f"the cost should be a single number, got shape {np.shape(cost)}"
    assert np.isclose(float(np.squeeze(cost)), cross_entropy), \
        "with lambd = 0 the cost should be compute_cost(A3, Y), the cross-entropy cost"

    cost = float(np.squeeze(target(A3, Y, parameters, 0.1)))
    expected = 1.2874443859199534
    assert np.isclose(cost, expected), \
        f"with lambd = 0.1 the cost is {cost}, expected {expected}. " \
        "Add lambd / (2 * m) times the sum of the squares of all entries of W1, W2 and W3"
    print("All tests passed.")


def backward_propagation_with_regularization_test(target):
    X, Y, parameters = _problem(2)
    _, cache = forward_propagation(X, parameters)
    m = X.shape[1]
    plain = backward_propagation(X, Y, cache)

    grads = target(X, Y, cache, 0)
    _check_grads(grads, "backward_propagation_with_regularization")
    for key in GRAD_KEYS:
        assert np.shape(grads[key]) == np.shape(plain[key]), \
            f"{key} has shape {np.shape(grads[key])}, expected {np.shape(plain[key])}"
        assert _close(grads[key], plain[key]), \
            f"with lambd = 0, {key} should equal the one of backward_propagation (no regularization)"

    lambd = 0.7
    grads = target(X, Y, cache, lambd)
    _check_grads(grads, "backward_propagation_with_regularization")
    for l in (1, 2, 3):
        key = "dW" + str(l)
        assert _close(grads[key] - plain[key], lambd / m * parameters["W" + str(l)]), \
            f"{key} should be the unregularized gradient plus lambd/m * W{l}"
    for key in GRAD_KEYS:
        if not key.startswith("dW"):
            assert _close(grads[key], plain[key]), \
                f"{key} should not change with lambd: only the dW's get a regularization term"
    print("All tests passed.")


def forward_propagation_with_dropout_test(target):
    relu = lambda z: np.maximum(0, z)
    for keep_prob, (n1, n2, m) in [(0.7, (2, 3, 5)), (0.7, (50, 40, 400))]:
        X, _, parameters = _problem(3, n1=n1, n2=n2, m=m)
        out = target(X, parameters, keep_prob)
        assert isinstance(out, tuple) and len(out) == 2, "return A3, cache"
        A3, cache = out
        assert len(cache) == 14, \
            "cache should be (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)"
        Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3c, W3, b3 = cache
        assert np.shape(A3) == (1, m), f"A3 has shape {np.shape(A3)}, expected {(1, m)}"
        assert np.shape(D1) == np.shape(A1) == (n1, m), "D1 must have the shape of A1"
        assert np.shape(D2) == np.shape(A2) == (n2, m), "D2 must have the shape of A2"
        assert np.all((D1 == 0) | (D1 == 1)) and np.all((D2 == 0) | (D2 == 1)), \
            "the masks D1 and D2 should contain only 0s and 1s"
        assert _close(Z1, np.dot(parameters["W1"], X) + parameters["b1"]), "Z1 = np.dot(W1, X) + b1"
        assert _close(A1, relu(Z1) * D1 / keep_prob), \
            "A1 is not relu(Z1) * D1 / keep_prob: did you apply D1 and divide by keep_prob?"
        assert _close(Z2, np.dot(parameters["W2"], A1) + parameters["b2"]), \
            "Z2 should be np.dot(W2, A1) + b2 with the dropped A1"
        assert _close(A2, relu(Z2) * D2 / keep_prob), \
            "A2 is not relu(Z2) * D2 / keep_prob: did you apply D2 and divide by keep_prob?"
        assert _close(A3, A3c), "the returned A3 should be the A3 stored in the cache"
        assert _close(A3, 1 / (1 + np.exp(-(np.dot(parameters["W3"], A2) + parameters["b3"])))), \
            "A3 = sigmoid(np.dot(W3, A2) + b3); the output layer has no dropout"
        if m >= 400:
            # on the large case the masks keep about keep_prob of the units
            assert abs(np.mean(D1) - keep_prob) < 0.02 and abs(np.mean(D2) - keep_prob) < 0.02, \
                f"the masks keep {np.mean(D1):.3f} and {np.mean(D2):.3f} of the units, expected about {keep_prob}"
    print("All tests passed.")


def backward_propagation_with_dropout_test(target):
    # A consistent dropout cache with fixed masks, built without your forward pass.
    X, Y, parameters = _problem(4)
    keep_prob = 0.8
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ["W1", "b1", "W2", "b2", "W3", "b3"])
    D1 = np.array([[1, 0, 1, 1, 1], [1, 1, 0, 1, 1]])
    D2 = np.array([[1, 1, 1, 0, 1], [0, 1, 1, 1, 1], [1, 1, 0, 1, 1]])
    Z1 = np.dot(W1, X) + b1
    A1 = np.maximum(0, Z1) * D1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = np.maximum(0, Z2) * D2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = 1 / (1 + np.exp(-Z3))
    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)

    grads = target(X, Y, cache, keep_prob)
    _check_grads(grads, "backward_propagation_with_dropout")
    # dA_l is the gradient for relu(Z_l) before dropout: masked by D_l and
    # divided by keep_prob. (The gradient for the dropped A_l, before the
    # mask, is accepted too: it leads to the same dZ_l.)
    expected = {
        "dA2": np.array([[-1.40717382, -1.32379192, -0.50028277, 0.0, -1.2772703],
                         [0.0, -0.61898291, -0.23392384, 0.25929076, -0.59723019],
                         [-0.04196615, -0.03947945, 0.0, 0.01653787, -0.03809203]]),
        "dA1": np.array([[0.0, 0.0, -0.18090199, 0.00878724, -0.46186027],
                         [0.0, 0.06807801, 0.0, 0.00686845, 0.06568556]]),
        "dW2": np.array([[0.0, 0.0],
                         [-0.14371038, -0.17004978],
                         [0.0, 0.01844746]]),
        "dW1": np.array([[0.04374023, -0.059182, 0.08531604],
                         [0.00523124, -0.01702115, -0.0008651]]),
        "db1": np.array([[-0.0361804], [0.01498929]]),
    }
    before_mask = {
        "dA2": np.array([[-1.12573906, -1.05903353, -0.40022622, 0.44362712, -1.02181624],
                         [-0.52637672, -0.49518633, -0.18713907, 0.20743261, -0.47778415],
                         [-0.03357292, -0.03158356, -0.01193595, 0.01323029, -0.03047363]]),
        "dA1": np.array([[0.0, -0.38294597, -0.14472159, 0.00702979, -0.36948821],
                         [0.0, 0.05446241, 0.02058224, 0.00549476, 0.05254845]]),
    }
    for key in ["dA2", "dW2", "dA1", "dW1", "db1"]:
        assert np.shape(grads[key]) == expected[key].shape, \
            f"{key} has shape {np.shape(grads[key])}, expected {expected[key].shape}"
        ok = _close(grads[key], expected[key], atol=1e-7)
        if key in before_mask:
            ok = ok or _close(grads[key], before_mask[key], atol=1e-7)
            assert ok, f"{key} is wrong: multiply it by the same mask D{key[2]} and divide by keep_prob"
        assert ok, f"{key} is wrong: check that dA2 and dA1 use the masks D2, D1 and the division by keep_prob"
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
