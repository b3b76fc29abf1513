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

from autograder.course import mutants
from autograder.course.mutants import failed_checks, grade_alternatives, lost_points
from autograder.grading import catalogue
from tests.nbtools import (
    alternative_names,
    assert_full_marks,
    grade_with_function,
    load_hidden_suite,
    load_public_tests,
    mutant_names,
    run_public,
)

A = "practical_setup"
public_tests = load_public_tests(A)


@pytest.mark.parametrize("variant", alternative_names(A))
def test_other_correct_answers_get_full_marks(tmp_path, variant):
    assert_full_marks(grade_alternatives(A, tmp_path, only=[variant])[variant])


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_function(grades, bug):
    report = grades(bug)
    assert report.problems == [], report.problems  # it costs points of its own function(s), and only of them
    assert set(report.mutant.costs) & set(lost_points(report.result))
    for function in report.mutant.costs:
        for failure in failed_checks(report.result, function):
            assert "Hint:" in failure or " raised " in failure, failure  # a crash shows its traceback


def test_the_classic_normalization_mistake_is_named(grades):
    text = " ".join(failed_checks(grades("normalize_each_set_with_its_own_statistics").result, "normalize_inputs"))
    assert "its own statistics" in text


def test_a_search_whose_samplers_are_wrong_keeps_its_points(tmp_path):
    """random_search is graded with the reference samplers in place of the learner's."""
    result = grade_with_function(
        A,
        "sample_learning_rates",
        """
import numpy as np

def sample_learning_rates(n, low_exp=-4, high_exp=0):
    return np.full(n, 0.01)
""",
        tmp_path / "constant_sampler.ipynb",
    )
    assert set(lost_points(result)) == {"sample_learning_rates"}


def test_public_tests_pass_on_the_reference_and_the_alternatives(reference):
    for function in catalogue.load(A).graded_functions:
        assert "All tests passed." in run_public(
            getattr(public_tests, function + "_test"), getattr(reference, function)
        )
    for function, source in mutants.load(A).alternatives[0].edits.items():
        namespace = {"sample_learning_rates": reference.sample_learning_rates, "sample_betas": reference.sample_betas}
        exec(source, namespace)
        assert "All tests passed." in run_public(getattr(public_tests, function + "_test"), namespace[function])


def test_public_sampler_test_rejects_a_linear_scale_and_a_reseed(reference):
    def linear(n, low_exp=-4, high_exp=0):
        return np.random.uniform(10.0**low_exp, 10.0**high_exp, size=n)

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


class InProcessLearner:
    """The hidden suite's ``learner`` fixture without a sandbox: probes run here on ``namespace``."""

    def __init__(self, namespace):
        self.namespace = dict(namespace)

    def seed(self, seed):
        np.random.seed(seed)

    def probe(self, source, timeout=None, what="a check", **inputs):
        scope = {}
        exec(source, scope)
        return scope["probe"](self.namespace, **inputs)


def test_the_search_is_graded_with_cheap_deterministic_training_functions(reference):
    """No real training while grading: the suite never touches the helper's network, and its
    training functions give the same errors for the same settings, so a search is graded in
    microseconds per trial and the same notebook always gets the same grade."""
    import ast

    suite = load_hidden_suite(A)
    tree = ast.parse(open(suite.__file__).read())
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }
    assert not used & {"train_network", "make_train_and_evaluate", "load_moons", "error_rate"}
    for formula in suite.TRAINING.values():
        assert suite.errors_of(3, 0.01, 0.99, formula) == suite.errors_of(3, 0.01, 0.99, formula)
        assert len({suite.errors_of(i, 0.01, 0.99, formula)[0] for i in range(1, 6)}) > 1  # train error varies per call
    learner = InProcessLearner(vars(reference))
    first = suite.search(learner, "bowl", 30)
    again = suite.search(learner, "bowl", 30)
    assert first == again and len(first[2]) == 30
    best, history, calls = first
    assert best == min(history, key=lambda t: t["dev_error"])
    # The recorded dev errors are the formula's, recomputed here from the recorded settings.
    assert [t["dev_error"] for t in history] == [
        suite.errors_of(i, lr, b, suite.TRAINING["bowl"])[1] for i, (lr, b) in enumerate(calls, start=1)
    ]
