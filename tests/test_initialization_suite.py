"""The Initialization suite: planted bugs, other correct answers, helper math.

A planted bug is the solution notebook with one graded cell replaced; it must
lose points on that function only and keep full marks everywhere else. Other
correct implementations (no seed, another generator, float32, another loop
order) must get full marks: the hidden suite tests statistics, never one
sequence of random draws.

The helper tests check the provided model code (dataset, gradients against a
numerical gradient, the course's unclipped cost), the public tests, and the
properties the hidden suite relies on: its layer sizes keep every usual wrong
scale well away from the right one, and its tolerances accept fresh correct
draws.
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

A = "initialization"
MUTANTS_ISOLATED = True  # every planted bug graded in a notebook of its own (the `grades` fixture)
ZEROS = "initialize_parameters_zeros"
RANDOM = "initialize_parameters_random"
HE = "initialize_parameters_he"
FUNCTIONS = [ZEROS, RANDOM, HE]

utils = load_utils(A)
public_tests = load_public_tests(A)
suite = load_hidden_suite(A)


# ------------------------------------------------------------------ planted bugs (suites/initialization/mutants.py)


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_function(grades, bug):
    assert_costs_only_its_function(A, grades(bug))


def test_wrong_scale_feedback_names_the_scale_seen(grades):
    """A wrong scale is reported with the scale the learner used and a hint, not only "wrong"."""
    he = failed_checks(grades("he_sqrt_1_over_n_prev").result, HE)
    assert he and all("which is the scale sqrt(1 / n_prev)" in text and "Hint:" in text for text in he), he
    result = grades("random_forgets_times_10").result
    random = failed_checks(result, RANDOM)
    assert random and all("which is the scale 1 (randn without scaling)" in text for text in random), random
    # The zeros function is untouched.
    assert result["functions"][ZEROS]["score"] == result["functions"][ZEROS]["max_score"]


@pytest.mark.parametrize("variant", alternative_names(A))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    assert_full_marks(grade_alternatives(A, tmp_path, only=[variant])[variant])


# ------------------------------------------------------------------ the hidden suite's statistics


def he_layer(rng, n_l, n_prev, scale=None):
    return rng.standard_normal((n_l, n_prev)) * (math.sqrt(2 / n_prev) if scale is None else scale)


@pytest.mark.parametrize("dims,layers", [(suite.LARGE_DIMS, [1]), (suite.DEEP_DIMS, [1, 2, 3, 4])])
def test_usual_wrong_scales_are_far_from_the_right_one(dims, layers):
    """In every layer whose scale the suite checks, each wrong scale is >= 8% away from
    sqrt(2 / n_prev): beyond the tolerance, so it fails, and beyond the 4% diagnosis window."""
    for l in layers:
        n_prev, n_l = dims[l - 1], dims[l]
        right = math.sqrt(2 / n_prev)
        N = n_prev * n_l
        tol = max(10 / math.sqrt(2 * N), 0.02)
        for name, value in suite.scale_candidates(n_prev, n_l).items():
            if name == "sqrt(2 / n_prev)":
                continue
            assert abs(math.log(value / right)) > max(math.log(1.08), 1.5 * tol), (dims, l, name)


def test_fresh_correct_draws_pass_the_statistics():
    """Correct float64 and float32 draws from another generator pass every statistical check."""
    rng = np.random.default_rng(2024)
    for dtype in (np.float64, np.float32):
        for dims in (suite.DEEP_DIMS, suite.INDEPENDENCE_DIMS, suite.LARGE_DIMS):
            params = {}
            for l in range(1, len(dims)):
                params[f"W{l}"] = he_layer(rng, dims[l], dims[l - 1]).astype(dtype)
                params[f"b{l}"] = np.zeros((dims[l], 1))
            for l in range(1, len(dims)):
                suite.check_layer_statistics(params[f"W{l}"], math.sqrt(2 / dims[l - 1]), f"W{l}", "", gaussian=True)
            suite.check_independent(params, dims, HE, "")
        W = (rng.standard_normal((500, 1200)) * 10).astype(dtype)
        suite.check_layer_statistics(W, 10.0, "W1", "", gaussian=True)


def test_statistics_reject_wrong_draws():
    rng = np.random.default_rng(7)
    n_l, n_prev = 500, 1200
    right = math.sqrt(2 / n_prev)
    wrong = {
        "sqrt(1 / n_prev)": he_layer(rng, n_l, n_prev, math.sqrt(1 / n_prev)),
        "uniform": (rng.random((n_l, n_prev)) - 0.5) * math.sqrt(12) * right,
        "not centred": np.abs(he_layer(rng, n_l, n_prev)),
    }
    for _name, W in wrong.items():
        with pytest.raises(CheckFailed):
            suite.check_layer_statistics(W, right, "W1", "", gaussian=True)
    # W2 starts with the draws of W1, scaled, as after reseeding inside the loop.
    first = he_layer(rng, 200, 300)
    second = 2.0 * np.concatenate([first.ravel(), rng.standard_normal(400 * 200 - first.size)]).reshape(400, 200)
    reused = {"W1": first, "b1": np.zeros((200, 1)), "W2": second, "b2": np.zeros((400, 1))}
    with pytest.raises(CheckFailed, match="repeats the random numbers of W1"):
        suite.check_independent(reused, [300, 200, 400], HE, "")
    tiled = {"W1": np.tile(rng.standard_normal((1, 300)), (200, 1)), "b1": np.zeros((200, 1))}
    with pytest.raises(CheckFailed, match="distinct values"):
        suite.check_independent(tiled, [300, 200], HE, "")


# ------------------------------------------------------------------ reference and public tests


def test_public_tests_pass_on_the_reference_with_the_course_values(reference):
    for name in FUNCTIONS:
        text = run_public(getattr(public_tests, f"{name}_test"), getattr(reference, name))
        assert "All tests passed." in text and "Note:" not in text, (name, text)
    # The fixed values of the public tests are the seed-3 draws of the reference.
    params = reference.initialize_parameters_random([3, 2, 1])
    for key, value in public_tests.RANDOM_EXPECTED.items():
        assert np.allclose(params[key], value, atol=1e-8)
    params = reference.initialize_parameters_he([2, 4, 1])
    for key, value in public_tests.HE_EXPECTED.items():
        assert np.allclose(params[key], value, atol=1e-8)


def test_public_tests_accept_another_draw_order_and_reject_a_wrong_scale():
    def he_unseeded(layers_dims):
        rng = np.random.default_rng()
        return {
            key: value
            for l in range(1, len(layers_dims))
            for key, value in (
                (f"W{l}", rng.standard_normal((layers_dims[l], layers_dims[l - 1])) * np.sqrt(2 / layers_dims[l - 1])),
                (f"b{l}", np.zeros((layers_dims[l], 1))),
            )
        }

    text = run_public(public_tests.initialize_parameters_he_test, he_unseeded)
    assert "Note:" in text and "All tests passed." in text

    def he_sqrt_1(layers_dims):
        np.random.seed(3)
        return {
            key: value
            for l in range(1, len(layers_dims))
            for key, value in (
                (f"W{l}", np.random.randn(layers_dims[l], layers_dims[l - 1]) * np.sqrt(1 / layers_dims[l - 1])),
                (f"b{l}", np.zeros((layers_dims[l], 1))),
            )
        }

    with pytest.raises(AssertionError, match="multiplied by 0.7071"):
        run_public(public_tests.initialize_parameters_he_test, he_sqrt_1)

    def zeros_1d_bias(layers_dims):
        return {
            key: value
            for l in range(1, len(layers_dims))
            for key, value in (
                (f"W{l}", np.zeros((layers_dims[l], layers_dims[l - 1]))),
                (f"b{l}", np.zeros(layers_dims[l])),
            )
        }

    with pytest.raises(AssertionError, match="column vector"):
        run_public(public_tests.initialize_parameters_zeros_test, zeros_1d_bias)


# ------------------------------------------------------------------ helper module


def test_dataset_shapes_balance_and_determinism():
    train_X, train_Y, test_X, test_Y = utils.load_dataset()
    assert train_X.shape == (2, 300) and train_Y.shape == (1, 300)
    assert test_X.shape == (2, 100) and test_Y.shape == (1, 100)
    assert train_Y.mean() == 0.5 and test_Y.mean() == 0.5
    again = utils.load_dataset()
    assert all(np.array_equal(a, b) for a, b in zip(again, (train_X, train_Y, test_X, test_Y)))
    # Label 1 is the inner circle (radius 0.8), label 0 the outer one (radius 1).
    radius = np.linalg.norm(train_X, axis=0)
    assert radius[train_Y[0] == 1].mean() < 0.85 < radius[train_Y[0] == 0].mean()


@pytest.mark.parametrize("layers_dims", [[2, 10, 5, 1], [3, 4, 1], [2, 3, 4, 3, 1]])
def test_backward_matches_numerical_gradient(layers_dims):
    rng = np.random.default_rng(sum(layers_dims))
    X = rng.standard_normal((layers_dims[0], 7))
    Y = (rng.random((1, 7)) > 0.5).astype(float)
    parameters = {}
    for l in range(1, len(layers_dims)):
        parameters[f"W{l}"] = rng.standard_normal((layers_dims[l], layers_dims[l - 1]))
        parameters[f"b{l}"] = rng.standard_normal((layers_dims[l], 1)) * 0.1
    _, cache = utils.forward_propagation(X, parameters)
    grads = utils.backward_propagation(X, Y, cache)

    def cost():
        return utils.compute_loss(utils.forward_propagation(X, parameters)[0], Y)

    for key in parameters:
        approx = numerical_gradient(cost, parameters[key])
        assert np.allclose(grads["d" + key], approx, rtol=1e-5, atol=1e-7), key


def test_cost_is_ln2_at_one_half_and_inf_when_confidently_wrong():
    Y = np.array([[1, 0, 1, 0]])
    assert math.isclose(utils.compute_loss(np.full((1, 4), 0.5), Y), math.log(2), rel_tol=1e-12)
    # Exactly right saturated outputs: 0 * log(0) terms are dropped by nansum.
    assert utils.compute_loss(np.array([[1.0, 0.0, 1.0, 0.0]]), Y) == 0.0
    # One exactly wrong saturated output: the cost is inf, as in the course.
    assert utils.compute_loss(np.array([[1.0, 1.0, 1.0, 0.0]]), Y) == math.inf
    assert utils.sigmoid(np.array([40.0]))[0] == 1.0 and utils.sigmoid(np.array([-800.0]))[0] == 0.0


def test_zeros_network_is_stuck_at_ln2(reference):
    train_X, train_Y, _, _ = utils.load_dataset()
    parameters, costs = utils.model(
        train_X, train_Y, reference.initialize_parameters_zeros, num_iterations=2001, print_cost=False
    )
    assert costs == pytest.approx([math.log(2)] * 3, rel=1e-12)
    assert all(np.all(parameters[f"W{l}"] == 0) for l in (1, 2, 3))
    assert utils.accuracy(utils.predict(train_X, parameters), train_Y) == 0.5


def test_large_random_start_is_saturated_and_he_is_not(reference):
    train_X, train_Y, _, _ = utils.load_dataset()
    a3, _ = utils.forward_propagation(train_X, reference.initialize_parameters_random([2, 10, 5, 1]))
    assert utils.compute_loss(a3, train_Y) == math.inf
    a3, _ = utils.forward_propagation(train_X, reference.initialize_parameters_he([2, 10, 5, 1]))
    assert 0.5 < utils.compute_loss(a3, train_Y) < 1.5
