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

import numpy as np
import pytest

from autograder.course.mutants import failed_checks, grade_alternatives
from autograder.grading.checks import CheckFailed
from tests.nbtools import (
    alternative_names,
    assert_costs_only_its_function,
    assert_full_marks,
    load_hidden_suite,
    load_public_tests,
    load_utils,
    mutant_names,
    numerical_gradient,
    run_public,
)

A = "regularization"
MUTANTS_ISOLATED = True  # every planted bug graded in a notebook of its own (the `grades` fixture)
COST = "compute_cost_with_regularization"
L2_BACKWARD = "backward_propagation_with_regularization"
FORWARD = "forward_propagation_with_dropout"
BACKWARD = "backward_propagation_with_dropout"
FUNCTIONS = [COST, L2_BACKWARD, FORWARD, BACKWARD]

utils = load_utils(A)
public_tests = load_public_tests(A)

# ------------------------------------------------------------------ planted bugs (suites/regularization/mutants.py)


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_function(grades, bug):
    report = grades(bug)
    assert_costs_only_its_function(A, report)
    # The feedback names the check and gives the targeted hint, without the hidden arrays.
    failures = failed_checks(report.result, report.mutant.function)
    for hint in report.mutant.feedback:
        assert failures and any(hint in text for text in failures), (hint, failures)
    assert all("Hint:" in text for text in failures), failures
    assert not any("array(" in text or "[[" in text for text in failures), failures


@pytest.mark.parametrize("variant", alternative_names(A))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    assert_full_marks(grade_alternatives(A, tmp_path, only=[variant])[variant])


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
    assert "leaves out W3" in suite.cost_hint(
        ce + 0.7 / (2 * m) * sum(np.sum(w**2) for w in W[:2]), A3, Y, parameters, 0.7
    )


def reference_forward_arrays(reference, keep_prob, seed=0, shape=(2, 20, 3, 13)):
    X, _, parameters = suite.random_problem(seed, *shape)
    np.random.seed(seed)
    _, cache = reference.forward_propagation_with_dropout(X, parameters, keep_prob)
    return X, parameters, list(cache)


def test_forward_consistency_accepts_other_masks_and_rejects_inconsistent_caches(reference):
    """The forward checks run on plain data, so they can be exercised with a fake learner."""

    class Fake:
        def __init__(self, out):
            self.out = out

        def forward_propagation_with_dropout(self, X, parameters, keep_prob):
            return self.out

    keep_prob = 0.7
    X, parameters, cache = reference_forward_arrays(reference, keep_prob)
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


def test_mask_randomness_accepts_fresh_draws_and_rejects_patterns():
    """Independent draws of any generator and type pass the call-to-call and neighbour checks (10 standard
    errors wide); the same mask twice, a fixed pattern and a randomly shifted one do not."""
    rng = np.random.default_rng(12)
    legacy = np.random.RandomState(5)
    for keep_prob in (0.8, 0.5):
        for _ in range(10):
            for shape in ((120, 200), (100, 200)):
                suite.check_masks_random(
                    (rng.random(shape) < keep_prob).astype(int), rng.random(shape) < keep_prob, "D1", ""
                )
                suite.check_masks_random(
                    legacy.binomial(1, keep_prob, shape).astype(np.float32),
                    (legacy.rand(*shape) < keep_prob).astype(np.float64),
                    "D2",
                    "",
                )
    D = (rng.random((120, 200)) < 0.8).astype(int)
    with pytest.raises(CheckFailed, match="two calls in a row return the same mask D1"):
        suite.check_masks_random(D, D.copy(), "D1", "")
    pattern = lambda shift: ((np.arange(24000).reshape(120, 200) * 0.618034 + shift) % 1 < 0.8).astype(int)  # noqa: E731
    with pytest.raises(CheckFailed, match="predicts the entry of the next example"):
        suite.check_masks_random(pattern(0.0), pattern(0.3), "D1", "")
    # Masks that change between calls only by a few entries.
    again = D.copy()
    again[:5] = 1 - again[:5]
    with pytest.raises(CheckFailed, match="at the same place in the next call"):
        suite.check_masks_random(D, again, "D1", "")


# ------------------------------------------------------------------ reference and provided code vs numerical gradients


@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_reference_l2_backward_is_the_gradient_of_the_reference_cost(reference, lambd):
    X, Y, parameters = suite.random_problem(5, 3, 5, 4, 7)

    def cost():
        A3, _ = utils.forward_propagation(X, parameters)
        return reference.compute_cost_with_regularization(A3, Y, parameters, lambd)

    _, cache = utils.forward_propagation(X, parameters)
    grads = reference.backward_propagation_with_regularization(X, Y, cache, lambd)
    for key in parameters:
        assert np.allclose(grads["d" + key], numerical_gradient(cost, parameters[key]), rtol=1e-5, atol=1e-7), key


def test_reference_dropout_backward_is_the_gradient_with_fixed_masks(reference):
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


def test_public_tests_pass_on_the_reference(reference):
    for name in FUNCTIONS:
        assert "All tests passed." in run_public(getattr(public_tests, f"{name}_test"), getattr(reference, name)), name


def test_public_tests_accept_rand_gt_and_reject_a_missing_division(reference):
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
        run_public(public_tests.forward_propagation_with_dropout_test, lambda X, p, k: forward(X, p, k, divide=False))

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


def test_model_keeps_the_global_rng_reproducible_and_refuses_both_regularizations(reference):
    X, Y, _, _ = utils.load_2D_dataset()
    kwargs = dict(
        num_iterations=50,
        print_cost=False,
        keep_prob=0.86,
        forward_propagation_with_dropout=reference.forward_propagation_with_dropout,
        backward_propagation_with_dropout=reference.backward_propagation_with_dropout,
    )
    p1, c1 = utils.model(X, Y, **kwargs)
    p2, c2 = utils.model(X, Y, **kwargs)
    assert c1 == c2 and all(np.array_equal(p1[k], p2[k]) for k in p1)
    with pytest.raises(AssertionError, match="not both"):
        utils.model(X, Y, lambd=0.7, keep_prob=0.86)
    assert math.isclose(utils.compute_cost(np.full((1, 4), 0.5), np.array([[1, 0, 1, 0]])), math.log(2))
