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

import sys

import numpy as np
import pytest
import tensorflow as tf

from autograder.grading import catalogue
from tests.nbtools import ROOT, load_public_tests, grade_sources, run_public, graded_cell

A = "tensorflow_intro"
FUNCTIONS = ["linear_function", "sigmoid", "one_hot_matrix", "initialize_parameters",
             "forward_propagation", "compute_total_loss", "model"]

sys.path.insert(0, str(ROOT / "assignments" / A))
public_tests = load_public_tests(A)
import tensorflow_intro_utils as utils  # noqa: E402


def solution_source(function):
    import nbformat

    nb = nbformat.read(ROOT / "solutions" / f"{A}.ipynb", as_version=4)
    return graded_cell(nb, function).source


def replace(function, old, new):
    """The solution's graded cell of ``function`` with ``old`` replaced by ``new`` (exactly once)."""
    source = solution_source(function)
    assert source.count(old) == 1, (function, old)
    return source.replace(old, new)


# bug name -> (function, source, checks expected to fail (substrings of the check names), feedback keyword)
BUGS = {
    "linear_draws_W_first": (
        "linear_function",
        replace("linear_function", '''    X = tf.constant(np.random.randn(3, 1), name="X")
    W = tf.constant(np.random.randn(4, 3), name="W")''', '''    W = tf.constant(np.random.randn(4, 3), name="W")
    X = tf.constant(np.random.randn(3, 1), name="X")'''),
        ["equals WX + b"], "differs from the expected values"),
    "sigmoid_no_cast": (
        "sigmoid", replace("sigmoid", "    z = tf.cast(z, tf.float32)\n", ""),
        ["float32 EagerTensor"], "float32"),
    "one_hot_wrong_axis": (
        "one_hot_matrix", replace("one_hot_matrix", "tf.one_hot(label, C, axis=0)", "tf.one_hot(label, C)"),
        ["(C, m) matrix"], "axis=0"),
    "init_returns_tensors": (
        "initialize_parameters",
        replace("initialize_parameters", "    ### END SOLUTION", '''    W1, b1, W2, b2, W3, b3 = (tf.convert_to_tensor(v) for v in (W1, b1, W2, b2, W3, b3))
    ### END SOLUTION'''),
        ["six float32 tf.Variable"], "got a EagerTensor"),
    "forward_missing_relu": (
        "forward_propagation",
        replace("forward_propagation", "A2 = tf.keras.activations.relu(Z2)", "A2 = Z2"),
        ["logits match", "GradientTape over forward_propagation"], "a ReLU is missing"),
    "forward_through_numpy": (
        "forward_propagation",
        replace("forward_propagation", "    ### END SOLUTION", '''    Z3 = tf.constant(Z3.numpy())
    ### END SOLUTION'''),
        ["GradientTape over forward_propagation"], "is None"),
    "loss_mean": (
        "compute_total_loss", replace("compute_total_loss", "tf.reduce_sum(losses)", "tf.reduce_mean(losses)"),
        ["total cross-entropy", "softmax(logits) - labels"], "the mean of the per-example losses"),
    "loss_rows_as_examples": (
        "compute_total_loss",
        replace("compute_total_loss", "tf.transpose(labels), tf.transpose(logits)", "labels, logits"),
        ["total cross-entropy", "softmax(logits) - labels"], "treats the rows as examples"),
    "model_never_applies_gradients": (
        "model",
        replace("model", "        optimizer.apply_gradients(zip(grads, trainable_variables))\n", ""),
        ["one Adam step", "lower the cost"], "the optimizer never updated them"),
    "model_adds_gradients": (
        "model",
        replace("model", "optimizer.apply_gradients(zip(grads, trainable_variables))",
                "optimizer.apply_gradients(zip([-g for g in grads], trainable_variables))"),
        ["one Adam step", "lower the cost"], "wrong sign"),
}

# Three notebooks, each with at most one bug per function.
GROUPS = {
    "group1": ["linear_draws_W_first", "one_hot_wrong_axis", "forward_missing_relu", "model_never_applies_gradients"],
    "group2": ["sigmoid_no_cast", "init_returns_tensors", "loss_mean", "model_adds_gradients"],
    "group3": ["forward_through_numpy", "loss_rows_as_examples"],
}

ALTERNATIVES = {
    "linear_function": '''
# GRADED FUNCTION: linear_function

def linear_function():
    np.random.seed(1)
    X = tf.cast(tf.constant(np.random.randn(3, 1)), tf.float32)
    W = tf.cast(tf.constant(np.random.randn(4, 3)), tf.float32)
    b = tf.cast(tf.constant(np.random.randn(4, 1)), tf.float32)
    return W @ X + b
''',
    "sigmoid": '''
# GRADED FUNCTION: sigmoid

def sigmoid(z):
    z = tf.convert_to_tensor(z)
    return 1.0 / (1.0 + tf.exp(-tf.cast(z, tf.float32)))
''',
    "one_hot_matrix": '''
# GRADED FUNCTION: one_hot_matrix

def one_hot_matrix(label, C=10):
    return tf.transpose(tf.one_hot(label, depth=C, dtype=tf.float32))
''',
    "initialize_parameters": '''
# GRADED FUNCTION: initialize_parameters

def initialize_parameters():
    initializer = tf.keras.initializers.GlorotNormal(seed=1)
    sizes = [64, 25, 12, 10]
    parameters = {}
    for l in range(1, 4):
        parameters["W" + str(l)] = tf.Variable(initializer(shape=(sizes[l], sizes[l - 1])), name="W" + str(l))
        parameters["b" + str(l)] = tf.Variable(initializer(shape=(sizes[l], 1)), name="b" + str(l))
    return parameters
''',
    "forward_propagation": '''
# GRADED FUNCTION: forward_propagation

def forward_propagation(X, parameters):
    A = X
    for l in range(1, 4):
        Z = parameters["W" + str(l)] @ A + parameters["b" + str(l)]
        A = tf.nn.relu(Z) if l < 3 else Z
    return A
''',
    "compute_total_loss": '''
# GRADED FUNCTION: compute_total_loss

def compute_total_loss(logits, labels):
    per_example = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=0)
    return tf.reduce_sum(per_example)
''',
    # The course's loop without tf.function and with a plain-Python history; slower but correct.
    "model": replace("model", '''        with tf.GradientTape() as tape:
            Z3 = forward_propagation(tf.transpose(minibatch_X), parameters)
            minibatch_total_loss = compute_total_loss(Z3, tf.transpose(minibatch_Y))
        grads = tape.gradient(minibatch_total_loss, trainable_variables)
        optimizer.apply_gradients(zip(grads, trainable_variables))''', '''        X_columns = tf.transpose(minibatch_X)
        Y_columns = tf.transpose(minibatch_Y)
        with tf.GradientTape() as tape:
            tape.watch(trainable_variables)
            Z3 = forward_propagation(X_columns, parameters)
            minibatch_total_loss = compute_total_loss(Z3, Y_columns)
        gradients = tape.gradient(minibatch_total_loss, [W1, b1, W2, b2, W3, b3])
        optimizer.apply(gradients, [W1, b1, W2, b2, W3, b3])'''),
}




@pytest.fixture(scope="module")
def graded_groups(tmp_path_factory):
    results = {}
    for group, bugs in GROUPS.items():
        sources = {BUGS[bug][0]: BUGS[bug][1] for bug in bugs}
        assert len(sources) == len(bugs), f"{group} has two bugs in one function"
        results[group] = grade_sources(A, tmp_path_factory.mktemp(group), sources, group)
    return results


def failed_tests(result, function):
    return [t for t in result["tests"] if t["function"] == function and t["status"] != "passed"]


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_planted_bug_costs_only_its_checks(graded_groups, bug):
    function, _, expected_failures, keyword = BUGS[bug]
    group = next(g for g, bugs in GROUPS.items() if bug in bugs)
    result = graded_groups[group]
    assert not result["grader_error"], result["tests"]
    failed = failed_tests(result, function)
    names = [t["name"] for t in failed]
    # Exactly the expected checks of the buggy function fail, no others.
    assert sorted(names) == sorted(n for n in (t["name"] for t in result["tests"] if t["function"] == function)
                                   if any(e in n for e in expected_failures)), (bug, names)
    assert any(keyword in t["output"] for t in failed), (bug, [t["output"] for t in failed])
    assert all("Hint:" in t["output"] or "raised" in t["output"] for t in failed), [t["output"] for t in failed]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_functions_without_a_bug_keep_full_marks(graded_groups, group):
    result = graded_groups[group]
    buggy = {BUGS[bug][0] for bug in GROUPS[group]}
    for function in FUNCTIONS:
        entry = result["functions"][function]
        if function in buggy:
            assert entry["score"] < entry["max_score"], (group, function)
        else:
            assert entry["score"] == entry["max_score"], (group, function, [t["output"] for t in failed_tests(result, function)])


def test_other_correct_answers_get_full_marks(tmp_path):
    result = grade_sources(A, tmp_path, ALTERNATIVES, "alternatives")
    assert result["score"] == result["max_score"], [
        (t["name"], t["output"]) for t in result["tests"] if t["status"] != "passed"]


def test_hidden_points_match_the_notebook():
    spec = catalogue.load(A)
    assert spec.graded_functions == FUNCTIONS
    assert spec.config.uses_tensorflow and spec.config.memory_mb >= 6144


# ------------------------------------------------------------------ public tests



def test_public_tests_pass_on_the_reference():
    reference = catalogue.reference(A)
    for name in FUNCTIONS:
        text = run_public(getattr(public_tests, f"{name}_test"), getattr(reference, name))
        assert "All tests passed." in text, (name, text)


def test_public_tests_catch_orientation_and_mean():
    with pytest.raises(AssertionError, match="axis=0"):
        run_public(public_tests.one_hot_matrix_test, lambda label, C=10: tf.one_hot(label, C))

    def mean_loss(logits, labels):
        return tf.reduce_mean(tf.keras.losses.categorical_crossentropy(
            tf.transpose(labels), tf.transpose(logits), from_logits=True))

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
    assert len(np.unique(np.concatenate([x_train, x_test]), axis=0)) == len(np.unique(
        np.concatenate([other[0], other[2]]), axis=0))


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
