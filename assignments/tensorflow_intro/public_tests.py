"""Public tests for the TensorFlow introduction.

Friendly first checks, run inside the notebook. Each prints "All tests passed."
or raises AssertionError with a message saying what to look at. The expected
values are computed here with numpy from the formulas of the notebook, on
small fixed inputs.
"""
import numpy as np
import tensorflow as tf

from tensorflow_intro_utils import N_CLASSES, N_FEATURES

# Layer sizes of the network: 64 -> 25 -> 12 -> 10.
SHAPES = {"W1": (25, 64), "b1": (25, 1), "W2": (12, 25), "b2": (12, 1), "W3": (10, 12), "b3": (10, 1)}


def _kind(value):
    """'Variable', 'EagerTensor' or the type name of anything else."""
    if isinstance(value, tf.Variable):
        return "Variable"
    if tf.is_tensor(value):
        return "EagerTensor"
    return type(value).__name__


def _check_tensor(value, what, shape, dtype=None):
    assert _kind(value) == "EagerTensor", (
        f"{what} should be a TensorFlow tensor (EagerTensor), got {_kind(value)}: "
        "compute it with TensorFlow operations and do not call .numpy() on the result")
    assert tuple(value.shape) == tuple(shape), f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}"
    if dtype is not None:
        assert value.dtype == dtype, f"{what} has dtype {value.dtype.name}, expected {dtype.name}"


def _numpy_forward(X, params):
    A = X
    for l in (1, 2):
        A = np.maximum(0, params[f"W{l}"] @ A + params[f"b{l}"])
    return params["W3"] @ A + params["b3"]


def _numpy_total_loss(logits, labels):
    shifted = logits - logits.max(axis=0, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    return float(-(labels * log_softmax).sum())


def linear_function_test(target):
    Y = target()
    _check_tensor(Y, "linear_function()", (4, 1))
    assert Y.dtype.is_floating, f"linear_function() has dtype {Y.dtype.name}, expected a float dtype"
    np.random.seed(1)
    X = np.random.randn(3, 1)
    W = np.random.randn(4, 3)
    b = np.random.randn(4, 1)
    expected = W @ X + b
    got = Y.numpy()
    if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
        assert not np.allclose(got, X.T @ W.T + b.T), "compute W times X, not X times W"
        raise AssertionError("linear_function() is not WX + b for X, W, b drawn in the order X (3, 1), "
                             "W (4, 3), b (4, 1) after np.random.seed(1)")
    print("All tests passed.")


def sigmoid_test(target):
    for z in (-1, 0, 12.0, np.array([[-2.0, 0.5, 3.0]]), np.array([1, 2]), tf.constant([0.25], tf.float64)):
        a = target(z)
        shape = np.shape(z) if not tf.is_tensor(z) else tuple(z.shape)
        _check_tensor(a, f"sigmoid({z!r})", shape, tf.float32)
        expected = 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))
        assert np.allclose(a.numpy(), expected, rtol=1e-6, atol=1e-7), f"sigmoid({z!r}) has wrong values"
    print("All tests passed.")


def one_hot_matrix_test(target):
    got = target(np.array([1, 0, 3]), 4)
    _check_tensor(got, "one_hot_matrix([1, 0, 3], 4)", tuple(got.shape) if tf.is_tensor(got) else (4, 3), tf.float32)
    assert tuple(got.shape) == (4, 3), (
        f"one_hot_matrix([1, 0, 3], 4) has shape {tuple(got.shape)}, expected (4, 3): one example per column "
        "(tf.one_hot puts the classes on the last axis unless you pass axis=0)")
    expected = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]], dtype=np.float32)
    assert np.array_equal(got.numpy(), expected), (
        "one_hot_matrix([1, 0, 3], 4) is wrong: column i should be the one-hot vector of label i "
        "(tf.one_hot puts the classes on the last axis unless you pass axis=0)")
    got = target(2, 5)
    _check_tensor(got, "one_hot_matrix(2, 5)", (5,), tf.float32)
    assert np.array_equal(got.numpy(), np.eye(5, dtype=np.float32)[2]), "one_hot_matrix(2, 5) is wrong"
    got = target(tf.constant([2, 2, 0, 1, 9, 4, 4, 3, 5, 6], tf.int64), N_CLASSES)
    _check_tensor(got, "one_hot_matrix of 10 labels", (N_CLASSES, 10), tf.float32)
    assert np.array_equal(got.numpy(), np.eye(N_CLASSES, dtype=np.float32)[[2, 2, 0, 1, 9, 4, 4, 3, 5, 6]].T), (
        "one_hot_matrix of 10 labels with C = 10 is wrong: the classes go along axis 0 (rows), "
        "the examples along axis 1 (columns)")
    print("All tests passed.")


def initialize_parameters_test(target):
    params = target()
    assert isinstance(params, dict), f"initialize_parameters() should return a dict, got {type(params).__name__}"
    assert set(params) == set(SHAPES), f"keys {sorted(params)}, expected {sorted(SHAPES)}"
    initializer = tf.keras.initializers.GlorotNormal(seed=1)
    for key, shape in SHAPES.items():
        value = params[key]
        assert isinstance(value, tf.Variable), (
            f"{key} should be a tf.Variable, got {_kind(value)}: wrap the initializer's values in tf.Variable(...)")
        assert tuple(value.shape) == shape, f"{key} has shape {tuple(value.shape)}, expected {shape}"
        assert value.dtype == tf.float32, f"{key} has dtype {value.dtype.name}, expected float32"
        assert np.allclose(value.numpy(), initializer(shape=shape).numpy()), (
            f"{key} does not hold the values of the provided initializer: use tf.Variable(initializer(shape={shape}))")
    print("All tests passed.")


def forward_propagation_test(target):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in SHAPES.items()}
    X = rng.random((N_FEATURES, 7)).astype(np.float32)
    variables = {k: tf.Variable(v) for k, v in params.items()}
    with tf.GradientTape() as tape:
        Z3 = target(tf.constant(X), variables)
        total = tf.reduce_sum(Z3) if tf.is_tensor(Z3) else None
    _check_tensor(Z3, "forward_propagation(X, parameters) with X of shape (64, 7)", (N_CLASSES, 7), tf.float32)
    assert np.allclose(Z3.numpy(), _numpy_forward(X, params), rtol=1e-4, atol=1e-4), (
        "forward_propagation returns wrong logits: LINEAR -> RELU -> LINEAR -> RELU -> LINEAR, "
        "with no activation after the last LINEAR")
    grads = tape.gradient(total, list(variables.values()))
    for key, g in zip(variables, grads):
        assert g is not None, (f"the gradient with respect to {key} is None: use TensorFlow operations only "
                               "(no .numpy() or np. functions inside forward_propagation)")
    print("All tests passed.")


def compute_total_loss_test(target):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((N_CLASSES, 4)).astype(np.float32) * 2
    labels = np.eye(N_CLASSES, dtype=np.float32)[[3, 0, 9, 3]].T
    total = target(tf.constant(logits), tf.constant(labels))
    _check_tensor(total, "compute_total_loss(logits, labels)", (), tf.float32)
    expected = _numpy_total_loss(logits, labels)
    got = float(total)
    if not np.isclose(got, expected, rtol=1e-5):
        assert not np.isclose(got, expected / 4, rtol=1e-5), (
            "compute_total_loss returns the mean over the examples; the total loss is their sum (tf.reduce_sum)")
        assert not np.isclose(got, _numpy_total_loss(logits.T, labels.T), rtol=1e-5), (
            "compute_total_loss treats the rows as examples: transpose logits and labels, "
            "Keras's losses want one example per row")
        raise AssertionError(f"compute_total_loss returns {got:.5f}, expected {expected:.5f}")
    print("All tests passed.")


def model_test(target):
    rng = np.random.default_rng(2)
    m = 64
    X = rng.random((N_FEATURES, m)).astype(np.float32)
    Y = np.eye(N_CLASSES, dtype=np.float32)[rng.integers(0, N_CLASSES, m)].T
    result = target(X, Y, X[:, :16], Y[:, :16], learning_rate=0.01, num_epochs=3,
                    minibatch_size=16, print_cost=False)
    assert isinstance(result, tuple) and len(result) == 4, "model should return (parameters, costs, train_acc, test_acc)"
    parameters, costs, train_acc, test_acc = result
    assert set(parameters) == set(SHAPES), f"parameters has keys {sorted(parameters)}, expected {sorted(SHAPES)}"
    for history, name in ((costs, "costs"), (train_acc, "train_acc"), (test_acc, "test_acc")):
        assert len(history) == 3, f"{name} should have one value per epoch (3), got {len(history)}"
    initial = tf.keras.initializers.GlorotNormal(seed=1)(shape=SHAPES["W1"]).numpy()
    assert not np.allclose(parameters["W1"].numpy(), initial), (
        "W1 did not change during training: the optimizer never updated the parameters "
        "(call optimizer.apply_gradients(zip(grads, trainable_variables)))")
    assert costs[-1] < costs[0], (
        "the cost went up during training: the parameters must move against the gradient "
        "(pass the gradients to optimizer.apply_gradients as they are)")
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
