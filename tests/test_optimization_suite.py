"""Assignment 4, Optimization: planted bugs, the reference math and the helper module.

Planted bugs: each is the solution notebook with one graded cell edited (the
edit is a string replacement on the solution's own source, so the bug follows
the notebook). The hidden suite must take points off that function only, and
only through the checks named for the bug; every other function keeps full
marks. To keep the file fast, the bugs are grouped into a few notebooks that
carry at most one bug per function (the first one is the issue's five
examples), and each notebook is graded once.

The reference math is checked directly (the solution's graded functions, as
the grader loads them), and so is the helper module: data set, He
initialization, and backpropagation against finite differences.
"""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest

from autograder.course import mutants
from autograder.grading import catalogue
from autograder.grading.grade import grade_notebook
from tests.nbtools import (
    ROOT,
    assert_costs_only_its_function,
    failed_names,
    load_public_tests,
    load_utils,
    mutant_functions,
    mutant_names,
    mutant_rounds,
    numerical_gradient,
    solution_path,
)

A = "optimization"
U = load_utils(A)
public_tests = load_public_tests(A)


# ---------------------------------------------------------------- planted bugs (suites/optimization/mutants.py)

ROUNDS = mutant_rounds(A)
FUNCTION_OF = mutant_functions(A)
# One bug in each of five functions for the quick combined check (the examples).
COMBINED = mutant_names(A)[:5]


def test_rounds_cover_every_bug_once():
    assert sorted(label for r in ROUNDS for label in r) == sorted(FUNCTION_OF)
    assert ROUNDS[0][: len(COMBINED)] == COMBINED
    for r in ROUNDS:
        functions = [FUNCTION_OF[label] for label in r]
        assert len(functions) == len(set(functions)), r


@pytest.mark.parametrize("label", mutant_names(A))
def test_planted_bug(grades, label):
    """The buggy function loses exactly the named checks, with a hint; functions without
    a bug in the same notebook keep full marks."""
    report = grades(label)
    assert_costs_only_its_function(A, report)
    result, function, must_fail = report.result, report.mutant.function, report.mutant.fails
    failed = failed_names(result, function)
    for fragment in must_fail:
        assert any(fragment in name for name in failed), (fragment, failed)
    assert len(failed) == len(must_fail), failed
    # A shape check repeating its values check's failure is not one more (mutants.failed_tests).
    for t in mutants.failed_tests(result, function):
        # A function that could not be defined gets the error that stopped its cell instead of a hint.
        assert "Hint:" in t["output"] or "its cell stopped with an error" in t["output"], t


def test_combined_hints_name_the_mistake(grades):
    """The hints of the issue reach the learner for the matching bugs."""
    combined_result = grades(COMBINED[0]).result
    assert set(COMBINED[1:]) <= set(grades(COMBINED[0]).shared_with)
    outputs = {t["function"]: "" for t in combined_result["tests"]}
    for t in combined_result["tests"]:
        outputs[t["function"]] += t["output"] + "\n"
    assert "v_corrected divides by 1 - beta1**t: check t" in outputs["update_parameters_with_adam"]
    assert "momentum uses v = beta*v + (1-beta)*dW" in outputs["update_parameters_with_momentum"]
    assert "take the floor" in outputs["schedule_lr_decay"]
    assert "SAME permutation" in outputs["random_mini_batches"]
    assert "s = v" in outputs["initialize_adam"]


def test_solution_full_marks():
    result = grade_notebook(solution_path(A), A)
    assert result["score"] == result["max_score"] == 22, [t for t in result["tests"] if t["status"] != "passed"]


# ---------------------------------------------------------------- reference math


def random_network(seed, dims):
    rng = np.random.RandomState(seed)
    parameters, grads = {}, {}
    for l in range(1, len(dims)):
        parameters[f"W{l}"] = rng.randn(dims[l], dims[l - 1])
        parameters[f"b{l}"] = rng.randn(dims[l], 1)
        grads[f"dW{l}"] = rng.randn(dims[l], dims[l - 1])
        grads[f"db{l}"] = rng.randn(dims[l], 1)
    return parameters, grads


def test_public_tests_pass_on_reference(reference, capsys):
    for function in catalogue.load(A).graded_functions:
        getattr(public_tests, function + "_test")(getattr(reference, function))
        assert capsys.readouterr().out.strip() == "All tests passed."


@pytest.mark.parametrize(
    "label",
    [
        "no bias correction",
        "CS231n velocity without (1 - beta)",
        "X and Y shuffled with different permutations",
        "no floor",
    ],
)
def test_public_tests_catch_planted_bugs(label):
    """The public tests already catch the common mistakes (with fixed inputs)."""
    mutant = mutants.mutant(A, label)
    function = mutant.function
    namespace = {"np": np, "math": math}
    exec(mutants.edited_source(A, function, mutant.edit), namespace)
    with pytest.raises(AssertionError):
        getattr(public_tests, function + "_test")(namespace[function])


def test_adam_first_step_is_learning_rate(reference):
    """With bias correction, Adam's first step moves every parameter by learning_rate * |g| / (|g| + eps)."""
    parameters, grads = random_network(0, [4, 3, 2, 1])
    v, s = reference.initialize_adam(parameters)
    new, _, _, v_c, s_c = reference.update_parameters_with_adam(copy.deepcopy(parameters), grads, v, s, 1, 0.05)
    for key in parameters:
        g = grads["d" + key]
        np.testing.assert_allclose(v_c["d" + key], g)
        np.testing.assert_allclose(s_c["d" + key], g**2)
        np.testing.assert_allclose(parameters[key] - new[key], 0.05 * g / (np.abs(g) + 1e-8), rtol=1e-10)


def test_adam_bias_correction_fades(reference):
    """At t = 10000 the correction is negligible: v_corrected equals v."""
    parameters, grads = random_network(1, [3, 2, 1])
    v, s = reference.initialize_adam(parameters)
    _, v, s, v_c, s_c = reference.update_parameters_with_adam(parameters, grads, v, s, 10000)
    for key in v:
        np.testing.assert_allclose(v_c[key], v[key], rtol=1e-12)
        np.testing.assert_allclose(s_c[key], s[key], rtol=1e-4)


def test_momentum_matches_cs231n_up_to_learning_rate(reference):
    """The course's momentum with (alpha, beta) equals CS231n's v = mu v - eta dW with mu = beta,
    eta = alpha (1 - beta), for a constant learning rate (the notebook's claim)."""
    alpha, beta = 0.05, 0.9
    parameters, _ = random_network(2, [3, 4, 1])
    course = copy.deepcopy(parameters)
    v = reference.initialize_velocity(course)
    cs231n = copy.deepcopy(parameters)
    velocity = {k: np.zeros_like(a) for k, a in parameters.items()}
    for step in range(30):
        _, grads = random_network(100 + step, [3, 4, 1])
        course, v = reference.update_parameters_with_momentum(course, grads, v, beta, alpha)
        for key in cs231n:
            velocity[key] = beta * velocity[key] - alpha * (1 - beta) * grads["d" + key]
            cs231n[key] = cs231n[key] + velocity[key]
    for key in parameters:
        np.testing.assert_allclose(course[key], cs231n[key], rtol=1e-10, atol=1e-12)


def test_momentum_beta_zero_is_gradient_descent(reference):
    parameters, grads = random_network(3, [2, 3, 1])
    v = reference.initialize_velocity(parameters)
    momentum, _ = reference.update_parameters_with_momentum(copy.deepcopy(parameters), grads, v, 0.0, 0.1)
    gd = reference.update_parameters_with_gd(copy.deepcopy(parameters), grads, 0.1)
    for key in parameters:
        np.testing.assert_allclose(momentum[key], gd[key])


def test_reference_mini_batches_follow_the_course(reference):
    """The reference shuffles with np.random.seed(seed) + permutation (the course's order)."""
    X = np.arange(2 * 148, dtype=float).reshape(2, 148)
    Y = np.arange(148, dtype=float).reshape(1, 148)
    batches = reference.random_mini_batches(X, Y, 64, seed=3)
    np.random.seed(3)
    permutation = np.random.permutation(148)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches], axis=1), X[:, permutation])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches], axis=1), Y[:, permutation])
    assert [b[0].shape[1] for b in batches] == [64, 64, 20]


def test_reference_learning_rate_schedules(reference):
    assert reference.update_lr(0.1, 0, 1) == 0.1
    assert math.isclose(reference.update_lr(0.1, 9, 1), 0.01)
    assert [reference.schedule_lr_decay(0.1, e, 1) for e in (0, 999, 1000, 1999, 2000)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.1 / 3]
    )
    assert math.isclose(reference.schedule_lr_decay(0.3, 250, 0.5, time_interval=100), 0.15)


# ---------------------------------------------------------------- helper module


def test_dataset_is_seeded_moons():
    X, Y = U.load_dataset()
    assert X.shape == (2, 300) and Y.shape == (1, 300)
    assert set(np.unique(Y)) == {0, 1} and Y.sum() == 150
    X2, Y2 = U.load_dataset()
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    X3, _ = U.load_dataset(seed=4)
    assert not np.array_equal(X, X3)


def test_initialize_parameters_is_seeded_he():
    p = U.initialize_parameters([2, 5, 2, 1])
    assert {k: a.shape for k, a in p.items()} == {
        "W1": (5, 2),
        "b1": (5, 1),
        "W2": (2, 5),
        "b2": (2, 1),
        "W3": (1, 2),
        "b3": (1, 1),
    }
    assert all(np.all(p[f"b{l}"] == 0) for l in (1, 2, 3))
    np.testing.assert_array_equal(p["W1"], U.initialize_parameters([2, 5, 2, 1])["W1"])
    big = U.initialize_parameters([400, 300, 1], seed=0)["W1"]
    assert abs(big.std() - math.sqrt(2 / 400)) < 0.003


def test_backward_propagation_matches_finite_differences():
    rng = np.random.RandomState(0)
    dims = [2, 5, 2, 1]
    parameters = U.initialize_parameters(dims, seed=1)
    for key in parameters:
        if key.startswith("b"):
            parameters[key] = 0.1 * rng.randn(*parameters[key].shape)
    X = rng.randn(2, 20)
    Y = (rng.rand(1, 20) > 0.5).astype(float)

    def cost(params):
        AL, _ = U.forward_propagation(X, params)
        return U.compute_cost(AL, Y) / X.shape[1]

    AL, caches = U.forward_propagation(X, parameters)
    assert AL.shape == (1, 20)
    grads = U.backward_propagation(Y, caches, parameters)
    for key, value in parameters.items():
        numeric = numerical_gradient(lambda: cost(parameters), value, epsilon=1e-6)
        np.testing.assert_allclose(grads["d" + key], numeric, rtol=1e-5, atol=1e-8)


def test_cost_predict_accuracy():
    AL = np.array([[0.9, 0.2, 0.6]])
    Y = np.array([[1, 0, 0]])
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4))
    assert math.isclose(U.compute_cost(AL, Y), expected)
    assert math.isfinite(U.compute_cost(np.array([[1.0, 0.0]]), np.array([[0, 1]])))
    parameters = {"W1": np.array([[1.0, 0.0]]), "b1": np.zeros((1, 1))}
    X = np.array([[2.0, -1.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(U.predict(X, parameters), [[1, 0, 1]])
    assert U.accuracy(X, np.array([[1, 0, 0]]), parameters) == pytest.approx(2 / 3)


def test_helper_module_imports_no_heavy_packages():
    """The imports cell must be fast: the helper imports sklearn/matplotlib lazily."""
    import subprocess

    code = (
        "import sys; sys.path.insert(0, 'assignments/optimization'); import optimization_utils; "
        "print(any(m.split('.')[0] in ('sklearn', 'matplotlib') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
