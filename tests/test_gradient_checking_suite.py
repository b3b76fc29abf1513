"""The Gradient Checking suite: planted bugs, other correct answers, helper math.

A planted bug is the solution notebook with one graded cell replaced; it must
lose points on that function only and keep full marks everywhere else. In
particular the 1-D gradient_check is graded with known forward/backward
functions swapped in (learner.probe), so a broken forward_propagation or
backward_propagation must not cost gradient_check anything. Other correct
implementations must get full marks. To keep the file fast, variants of
different functions share a notebook, and each notebook is graded once.

The helper tests check the provided network (vector conversions, cost, the
two planted bugs of backward_propagation_n, the dropout variant) and the
properties the hidden suite relies on: test cases free of ReLU kinks at the
epsilons used, and closed forms of the 1-D probe values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from autograder.course import mutants
from tests.nbtools import (
    alternative_names,
    assert_costs_only_its_function,
    assert_full_marks,
    failed_names,
    load_hidden_suite,
    load_utils,
    mutant_functions,
    mutant_names,
    mutant_rounds,
    numerical_gradient,
)

A = "gradient_checking"

utils = load_utils(A)
suite = load_hidden_suite(A)


# ------------------------------------------------------------------ planted bugs (suites/gradient_checking/mutants.py)

BUG_ROUNDS = mutant_rounds(A)
FUNCTION_OF = mutant_functions(A)


def test_rounds_replace_each_function_at_most_once():
    assert sorted(n for r in BUG_ROUNDS for n in r) == sorted(FUNCTION_OF)
    for r in BUG_ROUNDS:
        functions = [FUNCTION_OF[n] for n in r]
        assert len(functions) == len(set(functions)), r
        assert not (
            "gradient_check" in functions and {"forward_propagation", "backward_propagation"} & set(functions)
        ), r
    # The forward/backward bugs are graded with the solution's gradient_check.
    assert any({FUNCTION_OF[n] for n in r} >= {"forward_propagation", "backward_propagation"} for r in BUG_ROUNDS)


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_function(grades, bug):
    assert_costs_only_its_function(A, grades(bug))


def test_one_sided_difference_fails_the_curvature_checks(grades):
    """The one-sided checker is caught by the checks meant for it, not only by accident."""
    failed = failed_names(grades("gcn_one_sided").result, "gradient_check_n")
    assert any("O(eps**2)" in name for name in failed), failed
    assert any(name.startswith("gradient_check_n: On correct gradients") for name in failed), failed
    failed = failed_names(grades("gc_one_sided").result, "gradient_check")
    assert any("two-sided value" in name for name in failed), failed


@pytest.mark.parametrize("variant", alternative_names(A))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    assert_full_marks(mutants.grade_alternatives(A, tmp_path, only=[variant])[variant])


def test_feedback_does_not_show_expected_values(grades, reference):
    """A wrong checker's feedback names the check and gives a hint, without the hidden value."""
    result = grades("gcn_hard_coded_epsilon").result
    outputs = [t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert outputs and all("Hint:" in text for text in outputs)
    X, Y, parameters, gradients = suite.network_case(7, 7)
    hidden = float(reference.gradient_check_n(parameters, gradients, X, Y, epsilon=1e-2))
    assert not any(f"{hidden:.3g}" in text or f"{hidden:.6g}" in text for text in outputs)


def test_feedback_does_not_name_the_hidden_test_networks(grades):
    """A test network is built by the learner-visible gradient_check_n_test_case(seed, m): feedback that
    named its seed (as "test case seed=1, m=3" did) would let a learner rebuild the hidden inputs."""
    outputs = [
        t["output"]
        for name in mutant_names(A)
        if FUNCTION_OF[name] == "gradient_check_n"
        for t in mutants.failed_tests(grades(name).result, "gradient_check_n")
    ]
    assert outputs
    for text in outputs:
        assert "seed" not in text.split("Hint:")[0], text
    assert not any(
        f"seed={seed}" in text or f"seed = {seed}" in text for text in outputs for seed, _ in suite.NETWORK_CASES
    )


# ------------------------------------------------------------------ helper module


def test_vectors_round_trip():
    X, Y, parameters = utils.gradient_check_n_test_case(2, 5)
    theta, keys = utils.dictionary_to_vector(parameters)
    assert theta.shape == (47, 1) and len(keys) == 47
    assert keys[:20] == ["W1"] * 20 and keys[-1] == "b3"
    back = utils.vector_to_dictionary(theta)
    assert sorted(back) == sorted(parameters)
    for name, value in parameters.items():
        assert back[name].shape == value.shape
        assert np.array_equal(back[name], value)
    # gradients_to_vector uses the same order as dictionary_to_vector.
    as_gradients = {"d" + name: value for name, value in parameters.items()}
    assert np.array_equal(utils.gradients_to_vector(as_gradients), theta)
    # vector_to_dictionary returns copies.
    back["W1"][0, 0] += 1.0
    assert theta[0, 0] == parameters["W1"][0, 0]


def test_test_case_shapes_and_course_labels():
    X, Y, parameters = utils.gradient_check_n_test_case()
    assert X.shape == (4, 3) and Y.tolist() == [[1, 1, 0]]
    X, Y, parameters = utils.gradient_check_n_test_case(4, 10)
    assert X.shape == (4, 10) and Y.shape == (1, 10) and set(np.unique(Y)) <= {0, 1}
    again = utils.gradient_check_n_test_case(4, 10)
    assert np.array_equal(again[0], X) and np.array_equal(again[2]["W2"], parameters["W2"])


def test_forward_cost_is_the_cross_entropy():
    X, Y, parameters = utils.gradient_check_n_test_case(5, 4)
    cost, cache = utils.forward_propagation_n(X, Y, parameters)
    A = X
    for l in (1, 2, 3):
        Z = parameters[f"W{l}"] @ A + parameters[f"b{l}"]
        A = 1 / (1 + np.exp(-Z)) if l == 3 else np.maximum(Z, 0)
    p = A.ravel()
    y = Y.ravel()
    expected = -np.mean(np.where(y == 1, np.log(p), np.log(1 - p)))
    assert math.isclose(cost, expected, rel_tol=1e-12)
    assert np.array_equal(cache[9], A)


@pytest.mark.parametrize("seed,m", suite.NETWORK_CASES)
def test_fixed_backward_matches_numerical_gradient(seed, m):
    X, Y, parameters = utils.gradient_check_n_test_case(seed, m)
    theta, _ = utils.dictionary_to_vector(parameters)
    _, cache = utils.forward_propagation_n(X, Y, parameters)
    grad = utils.gradients_to_vector(utils.backward_propagation_n_fixed(X, Y, cache))
    approx = numerical_gradient(
        lambda: utils.forward_propagation_n(X, Y, utils.vector_to_dictionary(theta))[0], theta, epsilon=1e-5
    )
    assert np.linalg.norm(grad - approx) / (np.linalg.norm(grad) + np.linalg.norm(approx)) < 1e-8


def test_buggy_backward_has_exactly_the_two_planted_bugs():
    X, Y, parameters = utils.gradient_check_n_test_case()
    _, cache = utils.forward_propagation_n(X, Y, parameters)
    buggy = utils.backward_propagation_n(X, Y, cache)
    fixed = utils.backward_propagation_n_fixed(X, Y, cache)
    assert np.allclose(buggy["dW2"], 2 * fixed["dW2"], rtol=1e-12, atol=0)
    assert np.allclose(buggy["db1"], 4 * fixed["db1"], rtol=1e-12, atol=0)
    assert np.abs(fixed["dW2"]).max() > 0.1 and np.abs(fixed["db1"]).max() > 0.1
    for name in ["dW1", "db2", "dW3", "db3"]:
        assert np.array_equal(buggy[name], fixed[name])


def test_dropout_network():
    X, Y, parameters = utils.gradient_check_n_test_case()
    plain_cost, plain_cache = utils.forward_propagation_n(X, Y, parameters)
    cost, cache = utils.forward_propagation_n_dropout(X, Y, parameters, keep_prob=1.0)
    assert math.isclose(cost, plain_cost, rel_tol=1e-15)
    assert np.allclose(
        utils.gradients_to_vector(utils.backward_propagation_n_dropout(X, Y, cache, 1.0)),
        utils.gradients_to_vector(utils.backward_propagation_n_fixed(X, Y, plain_cache)),
        rtol=1e-12,
        atol=0,
    )
    # With fixed masks the dropout cost is a function of theta, and its backward pass is right.
    theta, _ = utils.dictionary_to_vector(parameters)
    _, cache = utils.forward_propagation_n_dropout(X, Y, parameters, keep_prob=0.8, seed=3)
    assert cache[1].min() == 0  # some hidden units are dropped (in layer 1 with this seed)
    grad = utils.gradients_to_vector(utils.backward_propagation_n_dropout(X, Y, cache, keep_prob=0.8))
    approx = numerical_gradient(
        lambda: utils.forward_propagation_n_dropout(X, Y, utils.vector_to_dictionary(theta), 0.8, seed=3)[0],
        theta,
        epsilon=1e-5,
    )
    assert np.linalg.norm(grad - approx) / (np.linalg.norm(grad) + np.linalg.norm(approx)) < 1e-7


def relu_patterns(X, Y, theta):
    _, cache = utils.forward_propagation_n(X, Y, utils.vector_to_dictionary(theta))
    return np.concatenate([(cache[0] > 0).ravel(), (cache[4] > 0).ravel()])


@pytest.mark.parametrize(
    "seed,m,epsilon", [(s, m, 1e-3) for s, m in suite.NETWORK_CASES] + [(7, 7, 1e-2), (1, 3, 1e-2)]
)
def test_suite_cases_are_free_of_relu_kinks(seed, m, epsilon):
    """Moving any one parameter by +-epsilon changes no ReLU's side, so the cost is smooth there."""
    X, Y, parameters = utils.gradient_check_n_test_case(seed, m)
    theta, _ = utils.dictionary_to_vector(parameters)
    base = relu_patterns(X, Y, theta)
    for i in range(theta.shape[0]):
        for sign in (1, -1):
            moved = theta.copy()
            moved[i] += sign * epsilon
            assert np.array_equal(relu_patterns(X, Y, moved), base), (i, sign)


def test_probe_values_have_the_closed_forms(reference):
    """The reference checker, run through the suite's probe, gives the exact two-sided values."""
    cubic_cases = [(1e-3, case) for case in suite.SCALAR_CASES] + suite.CUBIC_EPSILON_CASES
    for epsilon, (x, theta) in cubic_cases:
        got = suite.reference_check_1d(reference, x, theta, epsilon, "cubic")
        # ((t + e)**3 - (t - e)**3) / (2 e) = 3 t**2 + e**2
        assert math.isclose(got, epsilon**2 / (6 * theta**2 + epsilon**2), rel_tol=1e-5)
        # A one-sided difference, or a hard-coded epsilon of 1e-7, is far off.
        one_sided = abs(3 * theta * epsilon + epsilon**2) / (6 * theta**2 + 3 * theta * epsilon + epsilon**2)
        assert one_sided > 100 * got
        assert suite.reference_check_1d(reference, x, theta, 1e-7, "cubic") < got / 10
    for (x, theta), delta, epsilon in suite.LINEAR_BUG_CASES:
        got = suite.reference_check_1d(reference, x, theta, epsilon, "linear", delta)
        # gradapprox = x up to rounding, grad = x (1 + delta).
        assert math.isclose(got, abs(delta) / (abs(1 + delta) + 1), rel_tol=1e-5)
    # The probe puts the reference's own functions back.
    assert reference.forward_propagation(2.0, 3.0) == 6.0 and reference.backward_propagation(2.0, 3.0) == 2.0
