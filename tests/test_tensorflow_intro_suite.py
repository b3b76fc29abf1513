"""The TensorFlow introduction suite: planted bugs, other correct answers, helpers.

A planted bug is a graded cell of the solution notebook replaced by a buggy
version. Grading a TensorFlow submission takes several seconds, so the bugs are
planted in three notebooks, each with bugs in different functions: every bug
must cost its own function the expected checks, with the feedback naming the
mistake, and every function without a bug in that notebook keeps full marks.
This is stricter than one bug per notebook: a bug must not leak into another
function even when other functions are broken too.

One more notebook replaces every graded cell with another correct
implementation and must get full marks.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from autograder.course import mutants
from autograder.course.mutants import failed_tests
from autograder.grading import catalogue
from autograder.grading.shapes import SHAPE_CHECK_PREFIX
from tests.nbtools import assert_full_marks, load_public_tests, load_utils, mutant_names, mutant_rounds, run_public

A = "tensorflow_intro"
FUNCTIONS = [
    "linear_function",
    "sigmoid",
    "one_hot_matrix",
    "initialize_parameters",
    "forward_propagation",
    "compute_total_loss",
    "model",
]

public_tests = load_public_tests(A)
utils = load_utils(A)


# ------------------------------------------------------------------ planted bugs (suites/tensorflow_intro/mutants.py)

GROUPS = {f"group{i + 1}": names for i, names in enumerate(mutant_rounds(A))}


def test_groups_are_the_declared_notebooks():
    declared = mutants.load(A).rounds
    assert list(GROUPS.values())[: len(declared)] == declared
    assert sorted(n for g in GROUPS.values() for n in g) == sorted(mutant_names(A))


@pytest.mark.parametrize("bug", mutant_names(A))
def test_planted_bug_costs_only_its_checks(grades, bug):
    report = grades(bug)
    assert report.problems == [], report.problems
    result, function = report.result, report.mutant.function
    expected_failures = report.mutant.fails
    assert not result["grader_error"], result["tests"]
    failed = failed_tests(result, function)
    names = [t["name"] for t in failed]
    # Exactly the expected checks of the buggy function fail, no others.
    # A shape check's name holds its values check's: it is expected only when it failed on its own.
    assert sorted(names) == sorted(
        n
        for n in (t["name"] for t in result["tests"] if t["function"] == function)
        if any(e in n for e in expected_failures) and (SHAPE_CHECK_PREFIX not in n or n in names)
    ), (bug, names)
    for keyword in report.mutant.feedback:
        assert any(keyword in t["output"] for t in failed), (bug, keyword, [t["output"] for t in failed])
    assert all("Hint:" in t["output"] or "raised" in t["output"] for t in failed), [t["output"] for t in failed]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_functions_without_a_bug_keep_full_marks(grades, group):
    result = grades(GROUPS[group][0]).result
    buggy = {mutants.mutant(A, bug).function for bug in GROUPS[group]}
    for function in FUNCTIONS:
        entry = result["functions"][function]
        if function in buggy:
            assert entry["score"] < entry["max_score"], (group, function)
        else:
            assert entry["score"] == entry["max_score"], (
                group,
                function,
                [t["output"] for t in failed_tests(result, function)],
            )


def test_other_correct_answers_get_full_marks(tmp_path):
    assert_full_marks(mutants.grade_alternatives(A, tmp_path)["other_correct_answers"])


def test_hidden_points_match_the_notebook():
    spec = catalogue.load(A)
    assert spec.graded_functions == FUNCTIONS
    assert spec.config.uses_tensorflow and spec.config.memory_mb >= 6144


# ------------------------------------------------------------------ public tests


def test_public_tests_pass_on_the_reference(reference):
    for name in FUNCTIONS:
        text = run_public(getattr(public_tests, f"{name}_test"), getattr(reference, name))
        assert "All tests passed." in text, (name, text)


def test_public_tests_catch_orientation_and_mean():
    with pytest.raises(AssertionError, match="axis=0"):
        run_public(public_tests.one_hot_matrix_test, lambda label, C=10: tf.one_hot(label, C))

    def mean_loss(logits, labels):
        return tf.reduce_mean(
            tf.keras.losses.categorical_crossentropy(tf.transpose(labels), tf.transpose(logits), from_logits=True)
        )

    with pytest.raises(AssertionError, match="mean"):
        run_public(public_tests.compute_total_loss_test, mean_loss)

    def rows_loss(logits, labels):
        return tf.reduce_sum(tf.keras.losses.categorical_crossentropy(labels, logits, from_logits=True))

    with pytest.raises(AssertionError, match="rows as examples"):
        run_public(public_tests.compute_total_loss_test, rows_loss)

    with pytest.raises(AssertionError, match="float32"):
        run_public(public_tests.sigmoid_test, lambda z: tf.sigmoid(tf.convert_to_tensor(z, tf.float64)))


# ------------------------------------------------------------------ helper module


def test_digits_split_shapes_and_seed():
    x_train, y_train, x_test, y_test = utils.load_digits_split()
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)
    assert y_train.shape == (1347,) and y_test.shape == (450,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0 and x_train.max() == 16
    # Stratified: every digit in both sets, in about the same share.
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert np.all(np.abs(np.bincount(y_train) / 1347 - np.bincount(y_test) / 450) < 0.01)
    # The same seed gives the same split; another seed another one; train and test partition the data.
    again = utils.load_digits_split()
    assert all(np.array_equal(a, b) for a, b in zip(again, (x_train, y_train, x_test, y_test)))
    other = utils.load_digits_split(seed=2)
    assert not np.array_equal(other[0], x_train)
    assert len(np.unique(np.concatenate([x_train, x_test]), axis=0)) == len(
        np.unique(np.concatenate([other[0], other[2]]), axis=0)
    )


def test_pipeline_normalizes_into_columns():
    x_train, y_train, _, _ = utils.digits_datasets()
    images, labels, _, _ = utils.load_digits_split()
    X = utils.dataset_to_columns(x_train.map(utils.normalize).take(5))
    assert X.shape == (64, 5) and X.dtype == np.float32
    assert np.allclose(X, images[:5].T / 16.0)
    assert np.array_equal(np.array(list(y_train.take(5).as_numpy_iterator())), labels[:5])


def test_accuracy_and_keras_baseline_shapes():
    logits = np.array([[2.0, 0.1, 0.0], [0.5, 3.0, 0.0]])
    Y = np.array([[1, 1, 0], [0, 0, 1]])
    assert utils.accuracy(logits, Y) == pytest.approx(1 / 3)
    model = utils.build_keras_baseline()
    assert [layer.units for layer in model.layers] == [25, 12, 10]
    assert model.count_params() == 64 * 25 + 25 + 25 * 12 + 12 + 12 * 10 + 10


def test_the_report_says_which_device_tensorflow_used(grades):
    """isolation.accelerator, asked in the learner's last child after its checks (no GPU here: CPU)."""
    isolation = grades(GROUPS[sorted(GROUPS)[0]][0]).result["isolation"]
    assert isolation["accelerator"].startswith("CPU (no GPU visible"), isolation
    assert "gpus" not in isolation  # GPUs were not requested
