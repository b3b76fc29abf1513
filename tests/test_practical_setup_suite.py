"""The Practical setup suite: planted bugs, other correct answers, public tests.

Each planted bug of autograder/suites/practical_setup/mutants.py must lose
points on its own function only. Correct answers written differently from the
reference (np.random.default_rng(seed) or a shuffled index array, np.array_split,
np.var / np.std for the statistics, other sampling calls such as
10 ** (a + (b - a) * np.random.rand(n)), a search loop that tracks the best
as it goes and calls np.random directly, zoom_in with np.clip) must get full
marks: the suite tests partitions, distributions and recorded calls, never
one RNG call order.
"""
from __future__ import annotations

import numpy as np
import pytest

from autograder.grading import catalogue
from tests.mutant_tools import functions_that_lost_points, grade_mutant, load_mutants
from tests.nbtools import failed_checks, grade_sources, load_hidden_suite, load_public_tests, run_public

A = "practical_setup"
public_tests = load_public_tests(A)
reference = catalogue.reference(A)

ALTERNATIVES = {
    "split_data": '''
import numpy as np

def split_data(X, Y, fractions=(0.8, 0.1, 0.1), seed=0):
    m = X.shape[1]
    rng = np.random.default_rng(seed)
    index = np.arange(m)
    rng.shuffle(index)
    cuts = [round(fractions[0] * m), round(fractions[0] * m) + round(fractions[1] * m)]
    train, dev, test = np.split(index, cuts)
    return X[:, train], Y[:, train], X[:, dev], Y[:, dev], X[:, test], Y[:, test]
''',
    "normalize_inputs": '''
import numpy as np

def normalize_inputs(X_train, X_dev, X_test, eps=1e-8):
    mu = X_train.mean(axis=1).reshape(-1, 1)
    sigma2 = X_train.var(axis=1).reshape(-1, 1)
    normalized = [(X - mu) / np.sqrt(sigma2 + eps) for X in (X_train, X_dev, X_test)]
    return (*normalized, mu, sigma2)
''',
    "diagnose_bias_variance": '''
def diagnose_bias_variance(train_error, dev_error, bayes_error=0.0, tolerance=0.015):
    problems = []
    if train_error - bayes_error > tolerance:
        problems.append("high bias")
    if dev_error - train_error > tolerance:
        problems.append("high variance")
    return " and ".join(problems) if problems else "ok"
''',
    "sample_learning_rates": '''
import numpy as np

def sample_learning_rates(n, low_exp=-4, high_exp=0):
    return 10 ** (low_exp + (high_exp - low_exp) * np.random.rand(n))
''',
    "sample_betas": '''
import numpy as np

def sample_betas(n, low=0.9, high=0.999):
    a, b = np.log10(1 - high), np.log10(1 - low)
    return np.array([1 - 10 ** np.random.uniform(a, b) for _ in range(n)])
''',
    # Samples with np.random directly and keeps the best as it goes.
    "random_search": '''
import numpy as np

def random_search(train_and_evaluate, n_trials, lr_exp_range=(-4, 0), beta_range=(0.9, 0.999)):
    best, history = None, []
    low_r, high_r = np.log10(1 - beta_range[1]), np.log10(1 - beta_range[0])
    for trial in range(n_trials):
        lr = 10 ** np.random.uniform(*lr_exp_range)
        beta = 1 - 10 ** np.random.uniform(low_r, high_r)
        train_error, dev_error = train_and_evaluate(lr, beta)
        record = dict(learning_rate=lr, beta=beta, train_error=train_error, dev_error=dev_error)
        history.append(record)
        if best is None or dev_error < best["dev_error"]:
            best = record
    return best, history
''',
    "zoom_in": '''
import math
import numpy as np

def zoom_in(best_learning_rate, lr_exp_range, factor=0.25):
    low, high = lr_exp_range
    half = factor * (high - low) / 2
    center = np.clip(math.log10(best_learning_rate), low + half, high - half)
    return center - half, center + half
''',
}


def test_correct_answers_written_differently_get_full_marks(tmp_path):
    result = grade_sources(A, tmp_path, ALTERNATIVES)
    failures = [t["name"] + ": " + t["output"] for t in result["tests"] if t["status"] != "passed"]
    assert result["score"] == result["max_score"], failures


MUTANTS = load_mutants(A)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_planted_bug_costs_only_its_own_function(mutant, tmp_path):
    result = grade_mutant(A, mutant, tmp_path)
    assert functions_that_lost_points(result) == set(mutant.costs)
    for function in mutant.costs:
        for failure in failed_checks(result, function):
            assert "Hint:" in failure or " raised " in failure, failure


def test_the_classic_normalization_mistake_is_named(tmp_path):
    mutant = next(m for m in MUTANTS if m.name == "normalize_each_set_with_its_own_statistics")
    text = " ".join(failed_checks(grade_mutant(A, mutant, tmp_path), "normalize_inputs"))
    assert "its own statistics" in text


def test_a_search_whose_samplers_are_wrong_keeps_its_points(tmp_path):
    """random_search is graded with the reference samplers in place of the learner's."""
    result = grade_sources(A, tmp_path, {"sample_learning_rates": '''
import numpy as np

def sample_learning_rates(n, low_exp=-4, high_exp=0):
    return np.full(n, 0.01)
'''})
    assert functions_that_lost_points(result) == {"sample_learning_rates"}


def test_public_tests_pass_on_the_reference_and_the_alternatives():
    for function in catalogue.load(A).graded_functions:
        assert "All tests passed." in run_public(getattr(public_tests, function + "_test"), getattr(reference, function))
    for function, source in ALTERNATIVES.items():
        namespace = {"sample_learning_rates": reference.sample_learning_rates, "sample_betas": reference.sample_betas}
        exec(source, namespace)
        assert "All tests passed." in run_public(getattr(public_tests, function + "_test"), namespace[function])


def test_public_sampler_test_rejects_a_linear_scale_and_a_reseed():
    def linear(n, low_exp=-4, high_exp=0):
        return np.random.uniform(10.0 ** low_exp, 10.0 ** high_exp, size=n)

    def reseeding(n, low_exp=-4, high_exp=0):
        np.random.seed(1)
        return reference.sample_learning_rates(n, low_exp, high_exp)

    with pytest.raises(AssertionError, match="sample the exponent"):
        run_public(public_tests.sample_learning_rates_test, linear)
    with pytest.raises(AssertionError, match="do not seed"):
        run_public(public_tests.sample_learning_rates_test, reseeding)


def test_ks_distance_separates_uniform_from_not():
    suite_ks = load_hidden_suite(A)
    rng = np.random.RandomState(0)
    n = 20000
    limit = suite_ks.KS_FACTOR / np.sqrt(n)
    assert suite_ks.ks_distance(rng.uniform(-4, 0, n), -4, 0) < limit
    assert suite_ks.ks_distance(np.log10(rng.uniform(1e-4, 1, n)), -4, 0) > 10 * limit
