"""The Regularization suite: planted bugs, other correct answers, helper math.

A planted bug is the solution notebook with one graded cell edited; it must
lose points on that function only and keep full marks everywhere else, and its
feedback must say what was checked and give a hint. Other correct
implementations (masks drawn as ``rand > 1 - keep_prob``, boolean or float
masks, another generator, the mask applied to Z with Z kept raw, the mask
applied to dZ instead of dA, other ways to write the L2 term) must get full
marks: the hidden suite tests consistency with the returned masks and mask
statistics, never one sequence of random draws.

The helper tests check the data generator, the provided model code and the
reference against numerical gradients, and the public tests.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from autograder.grading import catalogue
from autograder.grading.checks import CheckFailed
from tests.nbtools import (
    ROOT,
    load_public_tests,
    grade_sources,
    failed_checks,
    run_public,
    graded_cell,
    solution_path,
    numerical_gradient,
    load_hidden_suite,
)

A = "regularization"
COST = "compute_cost_with_regularization"
L2_BACKWARD = "backward_propagation_with_regularization"
FORWARD = "forward_propagation_with_dropout"
BACKWARD = "backward_propagation_with_dropout"
FUNCTIONS = [COST, L2_BACKWARD, FORWARD, BACKWARD]

sys.path.insert(0, str(ROOT / "assignments" / A))
import regularization_utils as utils  # noqa: E402
public_tests = load_public_tests(A)

import nbformat  # noqa: E402


# ------------------------------------------------------------------ sources

def solution_source(function):
    nb = nbformat.read(solution_path(A), as_version=4)
    return graded_cell(nb, function).source


def edited(function, *replacements):
    """The solution's graded cell for ``function`` with each (old, new) replaced once."""
    # Without the nbgrader markers, as a learner's cell would be.
    src = "\n".join(line for line in solution_source(function).splitlines()
                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    for old, new in replacements:
        assert src.count(old) == 1, (function, old)
        src = src.replace(old, new)
    return src


def mask_lines(l, draw):
    """The four inverted-dropout lines of layer ``l`` with mask expression ``draw``."""
    return f"""
    D{l} = {draw}
    A{l} = A{l} * D{l}
    A{l} = A{l} / keep_prob
"""


SOLUTION_FORWARD_LAYER1 = """    D1 = np.random.rand(A1.shape[0], A1.shape[1])  # step 1: uniform numbers in [0, 1)
    D1 = (D1 < keep_prob).astype(int)               # step 2: 1 with probability keep_prob
    A1 = A1 * D1                                    # step 3: shut down the dropped units
    A1 = A1 / keep_prob                             # step 4: keep the expected value of A1
"""
SOLUTION_FORWARD_LAYER2 = """    D2 = np.random.rand(A2.shape[0], A2.shape[1])
    D2 = (D2 < keep_prob).astype(int)
    A2 = A2 * D2
    A2 = A2 / keep_prob
"""


def planted_bugs():
    return {
        # L2 backward: dW2 without its weight-decay term (dW1, dW3 right).
        "l2_dW2_missing_term": (L2_BACKWARD, edited(
            L2_BACKWARD, ("dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2", "dW2 = 1. / m * np.dot(dZ2, A1.T)")),
            "dW2 lacks the lambd/m * W2 term"),
        # L2 cost: lambd / m instead of lambd / (2 m).
        "cost_lambd_over_m": (COST, edited(COST, ("lambd / (2 * m)", "lambd / m")), "uses lambd / m"),
        # Dropout forward: masks applied but no division by keep_prob.
        "dropout_forgets_keep_prob": (FORWARD, edited(
            FORWARD, ("    A1 = A1 / keep_prob ", "    A1 = A1 "), ("    A2 = A2 / keep_prob\n", "    A2 = A2\n")),
            "did you divide by keep_prob?"),
        # Dropout forward: the mask applied to Z (and the dropped Z stored in the cache).
        "dropout_mask_on_Z": (FORWARD, edited(
            FORWARD,
            ("    A1 = relu(Z1)\n", ""),
            (SOLUTION_FORWARD_LAYER1,
             "    D1 = (np.random.rand(*Z1.shape) < keep_prob).astype(int)\n"
             "    Z1 = Z1 * D1 / keep_prob\n    A1 = relu(Z1)\n"),
            ("    A2 = relu(Z2)\n", ""),
            (SOLUTION_FORWARD_LAYER2,
             "    D2 = (np.random.rand(*Z2.shape) < keep_prob).astype(int)\n"
             "    Z2 = Z2 * D2 / keep_prob\n    A2 = relu(Z2)\n")),
            "apply the mask D1 to A1 = relu(Z1), not to Z1"),
        # L2 cost without W3.
        "cost_forgets_W3": (COST, edited(COST, ("\n                                                + np.sum(np.square(W3))", "")),
                            "leaves out W3"),
        # L2 backward: the biases penalized too.
        "l2_db_regularized": (L2_BACKWARD, edited(
            L2_BACKWARD, ("db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)",
                          "db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True) + lambd / m * b2")),
            "biases are not penalized"),
        # Dropout forward: one mask column shared by every example.
        "dropout_same_mask_for_every_example": (FORWARD, edited(
            FORWARD, ("D1 = np.random.rand(A1.shape[0], A1.shape[1])", "D1 = np.random.rand(A1.shape[0], 1)"),
            ("D2 = np.random.rand(A2.shape[0], A2.shape[1])", "D2 = np.random.rand(A2.shape[0], 1)")),
            "masks have the shape of the activations"),
        # Dropout backward: new masks drawn instead of the cached ones.
        "dropout_backward_draws_new_masks": (BACKWARD, edited(
            BACKWARD, ("    dA2 = dA2 * D2 ", "    dA2 = dA2 * (np.random.rand(*dA2.shape) < keep_prob) "),
            ("    dA1 = dA1 * D1\n", "    dA1 = dA1 * (np.random.rand(*dA1.shape) < keep_prob)\n")),
            "from the cache (do not draw a new one)"),
        # Dropout backward: masks applied, no division by keep_prob.
        "dropout_backward_forgets_keep_prob": (BACKWARD, edited(
            BACKWARD, ("    dA2 = dA2 / keep_prob   # the same scaling as in the forward pass\n", ""),
            ("    dA1 = dA1 / keep_prob\n", "")),
            "masked by D2 but not divided by keep_prob"),
    }


def alternatives():
    return {
        # The brief's alternative: rand > 1 - keep_prob, boolean masks; L2 written other ways.
        "rand_gt_1_minus_keep_prob": {
            FORWARD: edited(
                FORWARD,
                (SOLUTION_FORWARD_LAYER1,
                 mask_lines(1, "np.random.rand(*A1.shape) > 1 - keep_prob")[1:]),
                (SOLUTION_FORWARD_LAYER2,
                 mask_lines(2, "np.random.rand(*A2.shape) > 1 - keep_prob")[1:])),
            COST: '''
def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    squares = sum(np.linalg.norm(parameters["W%d" % l]) ** 2 for l in (1, 2, 3))
    return np.array([[compute_cost(A3, Y) + lambd * squares / (2 * m)]])
''',
            L2_BACKWARD: '''
def backward_propagation_with_regularization(X, Y, cache, lambd):
    # the provided gradients, plus weight decay on the weights only
    grads = backward_propagation(X, Y, cache)
    W = {1: cache[2], 2: cache[6], 3: cache[10]}
    for l in (1, 2, 3):
        grads["dW%d" % l] = grads["dW%d" % l] + lambd * W[l] / X.shape[1]
    return grads
''',
        },
        # Float masks from another generator, the mask applied to relu's input
        # with the raw Z kept in the cache, and the mask applied to dZ in the
        # backward pass (dA returned unmasked): all the same math.
        "float_masks_mask_before_relu_mask_on_dZ": {
            FORWARD: '''
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    rng = np.random.default_rng()
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = W1 @ X + b1
    D1 = rng.binomial(1, keep_prob, size=Z1.shape).astype(np.float32)
    A1 = relu(Z1 * D1) / keep_prob
    Z2 = W2 @ A1 + b2
    D2 = rng.binomial(1, keep_prob, size=Z2.shape).astype(np.float32)
    A2 = relu(Z2 * D2) / keep_prob
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, [Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3]
''',
            BACKWARD: '''
def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dA2 = W3.T @ dZ3
    dZ2 = dA2 * (Z2 > 0) * D2 / keep_prob
    dA1 = W2.T @ dZ2
    dZ1 = dA1 * (Z1 > 0) * D1 / keep_prob
    return {"dZ3": dZ3, "dW3": dZ3 @ A2.T / m, "db3": dZ3.sum(axis=1, keepdims=True) / m,
            "dA2": dA2, "dZ2": dZ2, "dW2": dZ2 @ A1.T / m, "db2": dZ2.sum(axis=1, keepdims=True) / m,
            "dA1": dA1, "dZ1": dZ1, "dW1": dZ1 @ X.T / m, "db1": dZ1.sum(axis=1, keepdims=True) / m}
''',
        },
    }






@pytest.mark.parametrize("bug", sorted(planted_bugs()))
def test_planted_bug_costs_only_its_function(tmp_path, bug):
    function, src, hint = planted_bugs()[bug]
    result = grade_sources(A, tmp_path, {function: src})
    assert not result["grader_error"], result["tests"]
    functions = result["functions"]
    assert functions[function]["score"] < functions[function]["max_score"], f"{bug} was not detected"
    for other in FUNCTIONS:
        if other != function:
            assert functions[other]["score"] == functions[other]["max_score"], (other, failed_checks(result, other))
    # The feedback names the check and gives the targeted hint, without the hidden arrays.
    failures = failed_checks(result, function)
    assert failures and any(hint in text for text in failures), failures
    assert all("Hint:" in text for text in failures), failures
    assert not any("array(" in text or "[[" in text for text in failures), failures


@pytest.mark.parametrize("variant", sorted(alternatives()))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    result = grade_sources(A, tmp_path, alternatives()[variant])
    assert result["score"] == result["max_score"], [failed_checks(result, f) for f in FUNCTIONS]


# ------------------------------------------------------------------ the hidden suite's checks, without grading

suite = load_hidden_suite(A)


def test_l2_hints_name_the_usual_slips():
    X, Y, parameters = suite.random_problem(1, 2, 20, 3, 13)
    _, cache = utils.forward_propagation(X, parameters)
    plain = utils.backward_propagation(X, Y, cache)
    m, lambd, W2 = X.shape[1], 0.7, parameters["W2"]
    expected = plain["dW2"] + lambd / m * W2
    hint = lambda got: suite.l2_hint("dW2", got, expected, plain, parameters, lambd, m)  # noqa: E731
    assert hint(plain["dW2"]) == "dW2 lacks the lambd/m * W2 term"
    assert "not lambd/(2m)" in hint(plain["dW2"] + lambd / (2 * m) * W2)
    assert "divide the regularization term by m" in hint(plain["dW2"] + lambd * W2)
    A3, Y, parameters = suite.cost_inputs(3, 2, 20, 3, 13)
    ce = utils.compute_cost(A3, Y)
    m = Y.shape[1]
    W = [parameters[f"W{l}"] for l in (1, 2, 3)]
    assert "missing" in suite.cost_hint(ce, A3, Y, parameters, 0.7)
    assert "leaves out W3" in suite.cost_hint(ce + 0.7 / (2 * m) * sum(np.sum(w ** 2) for w in W[:2]),
                                              A3, Y, parameters, 0.7)


def reference_forward_arrays(keep_prob, seed=0, shape=(2, 20, 3, 13)):
    X, _, parameters = suite.random_problem(seed, *shape)
    reference = catalogue.reference(A)
    np.random.seed(seed)
    _, cache = reference.forward_propagation_with_dropout(X, parameters, keep_prob)
    return X, parameters, list(cache)


def test_forward_consistency_accepts_other_masks_and_rejects_inconsistent_caches():
    """The forward checks run on plain data, so they can be exercised with a fake learner."""

    class Fake:
        def __init__(self, out):
            self.out = out

        def forward_propagation_with_dropout(self, X, parameters, keep_prob):
            return self.out

    keep_prob = 0.7
    X, parameters, cache = reference_forward_arrays(keep_prob)
    suite.dropout_forward_case(Fake((cache[11], tuple(cache))), X, parameters, keep_prob, "ok")
    # Boolean masks are as good as integer ones.
    as_bool = list(cache)
    as_bool[1], as_bool[6] = cache[1].astype(bool), cache[6].astype(bool)
    suite.dropout_forward_case(Fake((cache[11], tuple(as_bool))), X, parameters, keep_prob, "bool")
    # A1 that does not follow from the returned D1 (another mask than the one returned).
    wrong = list(cache)
    wrong[1] = 1 - cache[1]
    with pytest.raises(CheckFailed, match="A1, compared with relu"):
        suite.dropout_forward_case(Fake((cache[11], tuple(wrong))), X, parameters, keep_prob, "wrong")
    # Masks that are not 0/1.
    scaled = list(cache)
    scaled[1] = cache[1] / keep_prob
    with pytest.raises(CheckFailed, match="only 0s and 1s"):
        suite.dropout_forward_case(Fake((cache[11], tuple(scaled))), X, parameters, keep_prob, "scaled")


def test_mask_statistics_tolerance_accepts_fresh_draws_and_rejects_wrong_rates():
    """The statistics test's window (|mean - keep_prob| < 0.015 on >= 80000 draws) is > 7 sigma wide
    and narrower than the distance to the usual wrong rate 1 - keep_prob (for keep_prob = 0.8)."""
    rng = np.random.default_rng(11)
    for keep_prob in (0.8, 0.5):
        for _ in range(20):
            D = rng.random((200, 400)) < keep_prob
            assert abs(D.mean() - keep_prob) < 0.015
    assert abs((1 - 0.8) - 0.8) > 0.015


# ------------------------------------------------------------------ reference and provided code vs numerical gradients



@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_reference_l2_backward_is_the_gradient_of_the_reference_cost(lambd):
    reference = catalogue.reference(A)
    X, Y, parameters = suite.random_problem(5, 3, 5, 4, 7)

    def cost():
        A3, _ = utils.forward_propagation(X, parameters)
        return reference.compute_cost_with_regularization(A3, Y, parameters, lambd)

    _, cache = utils.forward_propagation(X, parameters)
    grads = reference.backward_propagation_with_regularization(X, Y, cache, lambd)
    for key in parameters:
        assert np.allclose(grads["d" + key], numerical_gradient(cost, parameters[key]), rtol=1e-5, atol=1e-7), key


def test_reference_dropout_backward_is_the_gradient_with_fixed_masks():
    reference = catalogue.reference(A)
    keep_prob = 0.6
    X, Y, parameters = suite.random_problem(6, 3, 5, 4, 7)
    np.random.seed(6)
    _, cache = reference.forward_propagation_with_dropout(X, parameters, keep_prob)
    D1, D2 = cache[1], cache[6]

    def cost():
        # the same network with the masks frozen
        A1 = utils.relu(parameters["W1"] @ X + parameters["b1"]) * D1 / keep_prob
        A2 = utils.relu(parameters["W2"] @ A1 + parameters["b2"]) * D2 / keep_prob
        return utils.compute_cost(utils.sigmoid(parameters["W3"] @ A2 + parameters["b3"]), Y)

    grads = reference.backward_propagation_with_dropout(X, Y, cache, keep_prob)
    for key in parameters:
        assert np.allclose(grads["d" + key], numerical_gradient(cost, parameters[key]), rtol=1e-5, atol=1e-7), key


# ------------------------------------------------------------------ public tests



def test_public_tests_pass_on_the_reference():
    reference = catalogue.reference(A)
    for name in FUNCTIONS:
        assert "All tests passed." in run_public(getattr(public_tests, f"{name}_test"), getattr(reference, name)), name


def test_public_tests_accept_rand_gt_and_reject_a_missing_division():
    reference = catalogue.reference(A)
    relu = utils.relu

    def forward(X, parameters, keep_prob, divide=True):
        rng = np.random.default_rng()
        W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
        scale = keep_prob if divide else 1.0
        Z1 = W1 @ X + b1
        D1 = rng.random(Z1.shape) > 1 - keep_prob
        A1 = relu(Z1) * D1 / scale
        Z2 = W2 @ A1 + b2
        D2 = rng.random(Z2.shape) > 1 - keep_prob
        A2 = relu(Z2) * D2 / scale
        Z3 = W3 @ A2 + b3
        A3 = utils.sigmoid(Z3)
        return A3, (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)

    assert "All tests passed." in run_public(public_tests.forward_propagation_with_dropout_test, forward)
    with pytest.raises(AssertionError, match="divide by keep_prob"):
        run_public(public_tests.forward_propagation_with_dropout_test,
                   lambda X, p, k: forward(X, p, k, divide=False))

    def l2_missing_dW2(X, Y, cache, lambd):
        grads = reference.backward_propagation_with_regularization(X, Y, cache, lambd)
        grads["dW2"] = grads["dW2"] - lambd / X.shape[1] * cache[6]
        return grads

    with pytest.raises(AssertionError, match="dW2 should be"):
        run_public(public_tests.backward_propagation_with_regularization_test, l2_missing_dW2)


# ------------------------------------------------------------------ helper module

def test_dataset_shapes_labels_and_seeded_determinism():
    state = np.random.get_state()
    train_X, train_Y, test_X, test_Y = utils.load_2D_dataset()
    # The generator uses a private RandomState: numpy's global RNG is untouched.
    after = np.random.get_state()
    assert np.array_equal(after[1], state[1]) and after[2] == state[2]
    assert train_X.shape == (2, 211) and train_Y.shape == (1, 211)
    assert test_X.shape == (2, 200) and test_Y.shape == (1, 200)
    assert set(np.unique(train_Y)) <= {0, 1} and set(np.unique(test_Y)) <= {0, 1}
    again = utils.load_2D_dataset()
    assert all(np.array_equal(a, b) for a, b in zip(again, (train_X, train_Y, test_X, test_Y)))
    # Train and test are different samples of the same distribution.
    assert not np.array_equal(train_X[:, :200], test_X)
    X, Y = utils.make_football_field(211, flip_prob=0.05, seed=1)
    assert np.array_equal(X, train_X) and np.array_equal(Y, train_Y)
    X3, _ = utils.make_football_field(211, flip_prob=0.05, seed=3)
    assert not np.array_equal(X3, train_X)


def test_dataset_labels_follow_the_boundary_up_to_the_noise():
    # Without jitter and flips, the label is exactly "above the boundary".
    X, Y = utils.make_football_field(2000, flip_prob=0.0, seed=4, jitter=0.0)
    assert np.array_equal(Y[0], (X[1] > utils.field_boundary(X[0])).astype(np.int64))
    assert 0.3 < Y.mean() < 0.7
    # With the assignment's noise, most labels still agree with the boundary, not all:
    # the disagreements are what an unregularized network overfits.
    X, Y = utils.make_football_field(5000, flip_prob=0.05, seed=4)
    agree = np.mean(Y[0] == (X[1] > utils.field_boundary(X[0])))
    assert 0.85 < agree < 0.97


def test_provided_backward_matches_numerical_gradient():
    X, Y, parameters = suite.random_problem(8, 2, 6, 3, 9)
    _, cache = utils.forward_propagation(X, parameters)
    grads = utils.backward_propagation(X, Y, cache)

    def cost():
        return utils.compute_cost(utils.forward_propagation(X, parameters)[0], Y)

    for key in parameters:
        assert np.allclose(grads["d" + key], numerical_gradient(cost, parameters[key]), rtol=1e-5, atol=1e-7), key


def test_model_keeps_the_global_rng_reproducible_and_refuses_both_regularizations():
    reference = catalogue.reference(A)
    X, Y, _, _ = utils.load_2D_dataset()
    kwargs = dict(num_iterations=50, print_cost=False, keep_prob=0.86,
                  forward_propagation_with_dropout=reference.forward_propagation_with_dropout,
                  backward_propagation_with_dropout=reference.backward_propagation_with_dropout)
    p1, c1 = utils.model(X, Y, **kwargs)
    p2, c2 = utils.model(X, Y, **kwargs)
    assert c1 == c2 and all(np.array_equal(p1[k], p2[k]) for k in p1)
    with pytest.raises(AssertionError, match="not both"):
        utils.model(X, Y, lambd=0.7, keep_prob=0.86)
    assert math.isclose(utils.compute_cost(np.full((1, 4), 0.5), np.array([[1, 0, 1, 0]])), math.log(2))
