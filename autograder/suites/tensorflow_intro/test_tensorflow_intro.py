"""Hidden suite for assignment 5, Introduction to TensorFlow.

Learner values come back as ``autograder.sandbox.codec.TFValue(kind, dtype, value)``:
the suite checks the kind (``EagerTensor`` or ``Variable``) and the dtype as
well as the values. The reference runs here and returns real TensorFlow
objects. Values are compared on several random inputs with float32
tolerances.

Gradients are taken in the learner's process by trusted probes (snippets run
with the learner's namespace): a tape over the learner's forward pass with a
fixed linear functional of the logits, and a tape over the learner's loss with
respect to the logits. Both are compared with the gradients of the reference.

``model`` is trained in the learner's process with trusted stand-ins for
``initialize_parameters`` (the reference's initial values, as tf.Variable),
``forward_propagation`` and ``compute_total_loss`` put into the learner's
namespace for the duration of the call, so a mistake in one of those costs
only its own points. Two runs: one epoch of one full mini-batch, which must be
exactly one Adam step against the gradient (compared with an Adam step taken
here), and ten epochs on 200 digits, which must lower the cost and reach 80%
test accuracy within a bounded time.

Every clause of the notebook's spec, and the check that tests it (the planted
bugs of mutants.py that it catches). The seeding, the initializer, the tf.data
pipeline and the epoch loop of model are given code.

linear_function
- an EagerTensor of shape (4, 1), float: test_linear_function_type
- WX + b of X, W, b drawn in that order after np.random.seed(1): test_linear_function_values
  (linear_draws_W_first)
sigmoid
- cast to float32 (integer inputs too), an EagerTensor of the shape of z:
  test_sigmoid_dtype (sigmoid_no_cast)
- 1 / (1 + exp(-z)): test_sigmoid_values
one_hot_matrix
- m labels: a float32 (C, m) matrix, column i the one-hot vector of label i:
  test_one_hot_columns (one_hot_wrong_axis, one_hot_reshaped_to_a_vector)
- a scalar label: a float32 vector (C,), also mapped over a tf.data.Dataset:
  test_one_hot_scalar (one_hot_with_numpy)
initialize_parameters
- six trainable float32 tf.Variable of the stated shapes: test_initialize_parameters_variables
  (init_returns_tensors, init_not_trainable)
- every parameter, biases included, the seeded Glorot-normal values of its shape:
  test_initialize_parameters_values (init_zero_biases)
forward_propagation
- LINEAR -> RELU -> LINEAR -> RELU -> LINEAR, the logits without softmax:
  test_forward_values (forward_missing_relu, forward_applies_softmax)
- TensorFlow operations only, so the tape sees every parameter: test_forward_gradients
  (forward_through_numpy)
compute_total_loss
- the sum (not the mean) over the examples in columns of the softmax cross-entropy, a scalar:
  test_total_loss_values (loss_mean, loss_rows_as_examples, loss_of_shape_1)
- its gradient softmax(logits) - labels: test_total_loss_gradient
model (train_step)
- the returned Variables, one cost and two accuracies per epoch, train_acc from the logits
  computed before the update: test_model_returns_histories (model_accuracy_after_the_update)
- one Adam step of the given learning rate against the gradient of the mini-batch's total loss,
  on every parameter: test_model_one_adam_step (model_never_applies_gradients,
  model_adds_gradients, model_ignores_the_learning_rate, model_never_trains_b3)
- one step at every mini-batch: the cost falls and the test accuracy reaches 80%:
  test_model_learns (model_applies_gradients_once_per_epoch)
"""

import functools
import math

import numpy as np
import pytest
import tensorflow as tf

from autograder.grading.checks import (
    CheckFailed,
    check,
    check_close,
    check_dict_close,
    check_keys,
    diagnose,
    helper_module,
    number_list,
    same_values,
    tf_value,
    unpack,
)
from autograder.grading.learner_errors import ErrorKind, LearnerError
from autograder.grading.probes import (
    call_with_stand_ins,
    probe_function,
    tape_gradients,
    tape_gradients_here,
)
from autograder.sandbox.codec import TFValue

utils = helper_module("tensorflow_intro")
N_CLASSES, N_FEATURES, load_digits_split = utils.N_CLASSES, utils.N_FEATURES, utils.load_digits_split

SHAPES = {"W1": (25, 64), "b1": (25, 1), "W2": (12, 25), "b2": (12, 1), "W3": (10, 12), "b3": (10, 1)}
KEYS = list(SHAPES)

# float32 arithmetic in another order: relative errors of a few 1e-7 per op.
RTOL, ATOL = 1e-4, 1e-5

STEP_LR = 0.01  # learning rate of the one-step run
ONE_STEP_RUN = dict(m_train=64, m_test=20, learning_rate=STEP_LR, num_epochs=1, minibatch_size=64)
TRAIN_RUN = dict(m_train=200, m_test=150, learning_rate=0.01, num_epochs=10, minibatch_size=32)
MIN_TEST_ACCURACY = 0.8  # the reference reaches about 0.9 on this run


# --------------------------------------------------------------------- helpers


def random_parameters(rng, scale=0.5):
    """Parameters with random (also negative) biases, so that every ReLU matters."""
    return {k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in SHAPES.items()}


def reference_logits(reference, X, params):
    variables = {k: tf.Variable(v) for k, v in params.items()}
    return reference.forward_propagation(tf.constant(X), variables).numpy()


def one_hot_columns(labels, C):
    return np.eye(C, dtype=np.float32)[labels].T


def history_values(history, name, length=None, length_hint=""):
    """The numbers of a history that model returns (one per epoch) as a float array."""
    return number_list(
        history, name, "epoch", "append Python floats, e.g. float(...)", length=length, length_hint=length_hint
    )


# --------------------------------------------------------------------- linear_function


@pytest.mark.graded("linear_function", points=1, shape_points=0.25)
def test_linear_function_type(learner):
    """linear_function returns an EagerTensor of shape (4, 1) with a float dtype."""
    Y = tf_value(
        learner.linear_function(),
        "linear_function()",
        shape=(4, 1),
        shape_hint="W has shape (4, 3) and X has shape (3, 1), so WX + b has shape (4, 1)",
    )
    check(Y.dtype.kind == "f", f"linear_function() has dtype {Y.dtype}, expected a float dtype")


@pytest.mark.graded("linear_function", points=1, shape_points=0.25)
def test_linear_function_values(learner, reference):
    """linear_function equals WX + b for the seeded X, W, b."""
    expected = reference.linear_function().numpy()
    for attempt in range(2):  # the function seeds itself: the same result every call
        learner.seed(100 + attempt)
        Y = tf_value(learner.linear_function(), "linear_function()")
        check_close(
            Y,
            expected,
            "linear_function()",
            "after np.random.seed(1) draw X (3, 1), then W (4, 3), then b (4, 1) with np.random.randn, "
            "and compute tf.add(tf.matmul(W, X), b)",
            rtol=1e-5,
            atol=1e-6,
        )


# --------------------------------------------------------------------- sigmoid

SIGMOID_DTYPE_INPUTS = [
    ("the Python int -3", -3),
    ("an int64 numpy array", np.array([[1, -2, 0]], dtype=np.int64)),
    ("a float64 numpy array", np.array([0.5, -1.5, 4.0])),
    ("a float64 tensor", TFValue.constant(np.array([[0.25, -0.75]]), "float64")),
    ("an int32 tensor", TFValue.constant(np.array([3, -1], dtype=np.int32), "int32")),
]


@pytest.mark.graded("sigmoid", points=1, shape_points=0.25)
def test_sigmoid_dtype(learner):
    """sigmoid returns a float32 EagerTensor for integer and float64 inputs."""
    for what, z in SIGMOID_DTYPE_INPUTS:
        try:
            a = learner.sigmoid(z)
        except LearnerError as exc:
            if exc.kind is not ErrorKind.ERROR or "NotImplementedError" in str(exc) or "not implemented" in str(exc):
                raise
            raise CheckFailed(
                f"sigmoid of {what} failed: {str(exc)[:300]}",
                "TensorFlow's sigmoid refuses integer tensors: cast z with tf.cast(z, tf.float32) first",
            )
        shape = np.shape(z.value if isinstance(z, TFValue) else z)
        tf_value(
            a,
            f"sigmoid of {what}",
            dtype="float32",
            shape=shape,
            hint="cast z with tf.cast(z, tf.float32) before applying the sigmoid",
        )


@pytest.mark.graded("sigmoid", points=1, shape_points=0.25)
def test_sigmoid_values(learner, reference):
    """sigmoid matches 1 / (1 + exp(-z)) on random arrays."""
    rng = np.random.default_rng(11)
    for shape in [(), (6,), (3, 4), (2, 3, 2)]:
        z = rng.standard_normal(shape) * 5
        expected = reference.sigmoid(z).numpy()
        a = tf_value(learner.sigmoid(z), f"sigmoid of an array of shape {shape}")
        check_close(
            a,
            expected,
            f"sigmoid of an array of shape {shape}",
            "use tf.keras.activations.sigmoid (or tf.math.sigmoid) on the float32 z",
            rtol=1e-5,
            atol=1e-6,
        )


# --------------------------------------------------------------------- one_hot_matrix


def one_hot_shape_hint(shape, C, m):
    """What a wrong shape of m one-hot columns says about the code."""
    if shape == (m, C):
        return "one example per column: pass axis=0 to tf.one_hot so that the classes run along the rows"
    if shape == (C * m,):
        return (
            "the matrix was reshaped into a vector: only a scalar label gives shape (C,); "
            "do not reshape the result of tf.one_hot(label, C, axis=0), it already has the right shape"
        )
    return "tf.one_hot(label, C, axis=0) gives (C,) for a scalar label and (C, m) for m labels, without a reshape"


@pytest.mark.graded("one_hot_matrix", points=1, shape_points=0.25)
def test_one_hot_columns(learner, reference):
    """m labels give a float32 (C, m) matrix whose column i is the one-hot vector of label i."""
    rng = np.random.default_rng(5)
    cases = [
        (rng.integers(0, 10, 7), 10),
        (rng.integers(0, 10, 10), 10),
        (rng.integers(0, 3, 12), 3),
        (np.array([4]), 6),
    ]
    for labels, C in cases:
        for arg in (labels.astype(np.int64), TFValue.constant(labels.astype(np.int32), "int32")):
            expected = reference.one_hot_matrix(tf.constant(labels), C).numpy()
            what = f"one_hot_matrix of {labels.size} labels with C = {C}"
            got = tf_value(
                learner.one_hot_matrix(arg, C),
                what,
                dtype="float32",
                shape=expected.shape,
                hint="tf.one_hot returns float32 unless told otherwise",
                shape_hint=lambda shape: one_hot_shape_hint(shape, C, labels.size),
            )
            check(
                bool(np.array_equal(got, expected)),
                f"{what} is not the matrix of one-hot columns",
                "column i must be the one-hot vector of label i: tf.one_hot(label, C, axis=0)",
            )


# The notebook encodes its labels with dataset.map(lambda y: one_hot_matrix(y, N_CLASSES)):
# there label is a symbolic tensor, which numpy cannot index with.
DATASET_MAP_PROBE = """
def probe(ns, labels, C):
    import tensorflow as tf
    try:
        dataset = tf.data.Dataset.from_tensor_slices(labels).map(lambda y: ns["one_hot_matrix"](y, C))
        return {"columns": [tf.convert_to_tensor(v).numpy() for v in dataset]}
    except Exception as exc:
        return {"error": type(exc).__name__ + ": " + (str(exc).strip().splitlines() or [""])[0][:200]}
"""


@pytest.mark.graded("one_hot_matrix", points=1, shape_points=0.25)
def test_one_hot_scalar(learner, reference):
    """a scalar label gives a float32 vector of shape (C,), also when mapped over a tf.data.Dataset as in the notebook."""
    mapped = probe_function(learner, "one_hot_matrix", DATASET_MAP_PROBE, labels=np.array([3, 0, 9, 5]), C=10)
    check(
        "error" not in mapped,
        f"one_hot_matrix fails when mapped over a tf.data.Dataset: {mapped.get('error')}",
        "inside dataset.map the label is a symbolic tensor, which numpy cannot use: build the one-hot vector "
        "with TensorFlow operations only, tf.one_hot(label, C, axis=0)",
    )
    for label, column in zip([3, 0, 9, 5], mapped["columns"]):
        check(
            bool(np.array_equal(column, np.eye(10, dtype=np.float32)[label])),
            f"one_hot_matrix mapped over a tf.data.Dataset of labels gives a wrong vector for label {label}",
            "a scalar label gives the vector of length C with 1.0 at index label",
        )
    for label, C in [(0, 4), (3, 4), (9, 10), (2, 7)]:
        expected = reference.one_hot_matrix(label, C).numpy()
        what = f"one_hot_matrix({label}, {C})"
        got = tf_value(
            learner.one_hot_matrix(label, C),
            what,
            dtype="float32",
            shape=(C,),
            shape_hint="a single label gives a vector of length C",
        )
        check(
            bool(np.array_equal(got, expected)),
            f"{what} is not the one-hot vector of {label}",
            f"1.0 at index {label}, 0.0 elsewhere",
        )


# --------------------------------------------------------------------- initialize_parameters

TRAINABLE_PROBE = """
def probe(ns):
    import tensorflow as tf
    params = ns["initialize_parameters"]()
    if not isinstance(params, dict):
        return {}
    return {str(k): bool(v.trainable) for k, v in params.items() if isinstance(v, tf.Variable)}
"""


@pytest.mark.graded("initialize_parameters", points=1, shape_points=0.25)
def test_initialize_parameters_variables(learner):
    """initialize_parameters returns six trainable float32 tf.Variable of the stated shapes."""
    params = learner.initialize_parameters()
    check_keys(params, KEYS, "initialize_parameters()", "return the dict {'W1': W1, 'b1': b1, ..., 'b3': b3}")
    for key, shape in SHAPES.items():
        tf_value(
            params[key],
            key,
            kinds=("Variable",),
            dtype="float32",
            shape=shape,
            hint="wrap the initializer's values: tf.Variable(initializer(shape=...)); "
            "a tensor is not trainable and the tape does not watch it",
            shape_hint="the sizes are 64 -> 25 -> 12 -> 10: W of shape (n_l, n_prev), b of shape (n_l, 1)",
        )
    trainable = probe_function(learner, "initialize_parameters", TRAINABLE_PROBE)
    frozen = [key for key in KEYS if trainable.get(key) is False]
    check(
        not frozen,
        f"{', '.join(frozen)} {'is' if len(frozen) == 1 else 'are'} not trainable (trainable=False): "
        "a GradientTape does not watch such a variable, so training would never change it",
        "create every parameter with tf.Variable(initializer(shape=...)) and leave trainable at its default, True",
    )


@pytest.mark.graded("initialize_parameters", points=1, shape_points=0.25)
def test_initialize_parameters_values(learner, initial):
    """every parameter holds the seeded Glorot-normal initializer's values for its shape."""
    params = learner.initialize_parameters()
    if isinstance(params, dict):
        params = {k: v.value if isinstance(v, TFValue) else v for k, v in params.items()}
    hint = lambda key, *_: (
        "use the provided initializer for every parameter, biases "  # noqa: E731
        f"included: tf.Variable(initializer(shape={SHAPES[key]}))"
    )
    check_dict_close(
        params,
        initial,
        "initialize_parameters()",
        keys=KEYS,
        key_label="{key}",
        key_hint=hint,
        shape_hint=hint,
        rtol=1e-6,
        atol=1e-7,
    )


# --------------------------------------------------------------------- forward_propagation

FORWARD_HINT = "Z1 = W1 X + b1, A1 = relu(Z1), Z2 = W2 A1 + b2, A2 = relu(Z2), Z3 = W3 A2 + b3"


def forward_mistake(Z3, X, p):
    """The usual wrong network whose logits are Z3, or None."""
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    lin = lambda l, a: p[f"W{l}"] @ a + p[f"b{l}"]  # noqa: E731
    no_relu = "a ReLU is missing after the first or the second LINEAR"
    extra = "there is an activation after the last LINEAR: return Z3 itself (the softmax is in the cost)"
    return diagnose(
        Z3,
        [
            (no_relu, lambda: lin(3, relu(lin(2, lin(1, X))))),
            (no_relu, lambda: lin(3, lin(2, relu(lin(1, X))))),
            (no_relu, lambda: lin(3, lin(2, lin(1, X)))),
            (extra, lambda: relu(lin(3, relu(lin(2, relu(lin(1, X))))))),
            (extra, lambda: 1 / (1 + np.exp(-lin(3, relu(lin(2, relu(lin(1, X)))))))),
        ],
        None,
        matches=functools.partial(same_values, rtol=RTOL, atol=ATOL),
    )


@pytest.mark.graded("forward_propagation", points=2, shape_points=0.5)
def test_forward_values(learner, reference):
    """logits match LINEAR -> RELU -> LINEAR -> RELU -> LINEAR on random inputs."""
    rng = np.random.default_rng(21)
    for m in (1, 7, 40):
        params = random_parameters(rng)
        X = rng.random((N_FEATURES, m)).astype(np.float32)
        expected = reference_logits(reference, X, params)
        what = f"forward_propagation(X, parameters) with X of shape (64, {m})"
        variables = {k: TFValue.variable(v) for k, v in params.items()}
        Z3 = tf_value(
            learner.forward_propagation(TFValue.constant(X), variables),
            what,
            dtype="float32",
            shape=expected.shape,
            shape_hint="Z3 = W3 A2 + b3 has one column per example",
        )
        if not np.allclose(Z3, expected, rtol=RTOL, atol=ATOL):
            mistake = forward_mistake(Z3, X.astype(np.float64), params)
            check(mistake is None, f"{what} returns wrong logits: {mistake}", FORWARD_HINT)
            check_close(Z3, expected, what, FORWARD_HINT, rtol=RTOL, atol=ATOL)


@pytest.mark.graded("forward_propagation", points=1, shape_points=0.25)
def test_forward_gradients(learner, reference):
    """a GradientTape over forward_propagation gives the right gradient for every parameter."""
    rng = np.random.default_rng(22)
    params = random_parameters(rng)
    X = rng.random((N_FEATURES, 9)).astype(np.float32)
    R = rng.standard_normal((N_CLASSES, 9)).astype(np.float32)  # a fixed linear functional of the logits
    grads = tape_gradients(learner, "forward_propagation", [X, params], wrt=1, weights=R)
    expected = tape_gradients_here(vars(reference), "forward_propagation", [X, params], wrt=1, weights=R)
    check(isinstance(grads, dict) and set(grads) == set(KEYS), "the gradients could not be read back")
    for key in KEYS:
        check(
            grads[key] is not None,
            f"the gradient with respect to {key} is None: the tape lost track of {key}",
            "use TensorFlow operations only in forward_propagation (no .numpy(), no np. functions, "
            "no new tf.Variable or tf.constant made from the parameters)",
        )
        check_close(
            grads[key],
            expected[key],
            f"the gradient with respect to {key}",
            "the gradients follow from the forward pass: check it against the formulas",
            rtol=RTOL,
            atol=ATOL,
        )


# --------------------------------------------------------------------- compute_total_loss


def random_logits_labels(rng, C, m):
    logits = (rng.standard_normal((C, m)) * 3).astype(np.float32)
    labels = one_hot_columns(rng.integers(0, C, m), C)
    return logits, labels


def reference_total(reference, logits, labels):
    return float(reference.compute_total_loss(tf.constant(logits), tf.constant(labels)).numpy())


@pytest.mark.graded("compute_total_loss", points=2, shape_points=0.5)
def test_total_loss_values(learner, reference):
    """the total cross-entropy of examples in columns matches on random inputs."""
    rng = np.random.default_rng(31)
    for C, m in [(10, 5), (10, 10), (4, 9), (10, 1), (10, 64)]:
        logits, labels = random_logits_labels(rng, C, m)
        expected = reference_total(reference, logits, labels)
        what = f"compute_total_loss for {m} examples of {C} classes"
        value = tf_value(
            learner.compute_total_loss(TFValue.constant(logits), TFValue.constant(labels)),
            what,
            dtype="float32",
            hint="return tf.reduce_sum(...) of the per-example losses",
            shape=(),
            shape_hint="sum the per-example losses with tf.reduce_sum, which returns a scalar; do not reshape it "
            "or keep a dimension (keepdims)",
        )
        got = float(value.reshape(()))
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-4):
            continue
        if m > 1 and math.isclose(got, expected / m, rel_tol=1e-4, abs_tol=1e-5):
            raise CheckFailed(
                f"{what} is the mean of the per-example losses, not their sum",
                "use tf.reduce_sum, not tf.reduce_mean: model divides by m itself",
            )
        transposed = reference_total(reference, logits.T, labels.T)
        if math.isclose(got, transposed, rel_tol=1e-4, abs_tol=1e-4) or math.isclose(got, transposed / C, rel_tol=1e-4):
            raise CheckFailed(
                f"{what} treats the rows as examples",
                "logits and labels have one example per column; Keras's losses want one per row: "
                "pass tf.transpose(labels) and tf.transpose(logits)",
            )
        raise CheckFailed(
            f"{what} is {got:.6g}, which is not the total cross-entropy",
            "categorical_crossentropy(y_true=labels, y_pred=logits, from_logits=True) on the "
            "transposed tensors, then tf.reduce_sum",
        )


@pytest.mark.graded("compute_total_loss", points=1, shape_points=0.25)
def test_total_loss_gradient(learner):
    """the gradient of the total loss with respect to the logits is softmax(logits) - labels."""
    rng = np.random.default_rng(32)
    logits, labels = random_logits_labels(rng, N_CLASSES, 12)
    grad = tape_gradients(learner, "compute_total_loss", [logits, labels])
    check(
        grad is not None,
        "the gradient of compute_total_loss with respect to the logits is None",
        "compute the loss with TensorFlow operations on the logits (no .numpy(), no np. functions)",
    )
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    expected = shifted / shifted.sum(axis=0, keepdims=True) - labels
    check_close(
        grad,
        expected,
        "the gradient of compute_total_loss with respect to the logits",
        "with from_logits=True and a sum over the examples, the gradient is softmax(logits) - labels, column by column",
        rtol=RTOL,
        atol=ATOL,
    )


# --------------------------------------------------------------------- model

# Trusted stand-ins, so that model is graded on its own code
# (probes.call_with_stand_ins). AutoGraph cannot read their source (and they
# need no conversion).
TRUSTED_PARTS = """
def stand_ins(initial):
    import tensorflow as tf

    def initialize_parameters():
        return {k: tf.Variable(v) for k, v in initial.items()}

    @tf.autograph.experimental.do_not_convert
    def forward_propagation(X, parameters):
        A = X
        for l in (1, 2, 3):
            A = tf.matmul(parameters["W%d" % l], A) + parameters["b%d" % l]
            if l < 3:
                A = tf.nn.relu(A)
        return A

    @tf.autograph.experimental.do_not_convert
    def compute_total_loss(logits, labels):
        return tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=0))

    return {"initialize_parameters": initialize_parameters, "forward_propagation": forward_propagation,
            "compute_total_loss": compute_total_loss}
"""


# Loaded once per process, when the suite is collected (scikit-learn reads and splits its CSV: about
# 30 ms, which every submission paid twice); suite_state.py gives each submission a fresh copy.
DIGITS = load_digits_split()


def digits_slice(m_train, m_test):
    """The first m_train training and m_test test digits, columns, pixels in [0, 1]."""
    x_train, y_train, x_test, y_test = DIGITS
    X_train = (x_train[:m_train] / 16.0).T.astype(np.float32)
    X_test = (x_test[:m_test] / 16.0).T.astype(np.float32)
    return X_train, one_hot_columns(y_train[:m_train], N_CLASSES), X_test, one_hot_columns(y_test[:m_test], N_CLASSES)


class ModelRun:
    """One training run of the learner's model; the error, if any, is raised in the test that reads it."""

    def __init__(self, learner, initial, m_train, m_test, **kwargs):
        self.data, self.error, self.result = digits_slice(m_train, m_test), None, None
        kwargs = dict(kwargs, print_cost=False)
        try:
            self.result = call_with_stand_ins(
                learner,
                "model",
                TRUSTED_PARTS,
                {"initial": initial},
                self.data,
                kwargs,
                # a training run (measured 1-6 s): assignment.toml's long_call_timeout
                timeout=learner.time_policy.long_call,
            )
        except LearnerError as exc:
            self.error = exc

    def unpack(self):
        if self.error is not None:
            raise self.error
        parameters, costs, train_acc, test_acc = unpack(
            self.result, "parameters, costs, train_acc, test_acc", "model", "keep the provided return statement"
        )
        check_keys(parameters, KEYS, "the parameters returned by model")
        values = {
            k: tf_value(
                parameters[k],
                f"{k} returned by model",
                kinds=("Variable",),
                dtype="float32",
                hint="return the dict of tf.Variable that the optimizer updated",
            )
            for k in KEYS
        }
        return values, costs, train_acc, test_acc


@pytest.fixture(scope="module")
def initial(reference):
    return {k: v.numpy() for k, v in reference.initialize_parameters().items()}


@pytest.fixture(scope="module")
def one_step_run(learner, initial):
    return ModelRun(learner, initial, **ONE_STEP_RUN)


@pytest.fixture(scope="module")
def train_run(learner, initial):
    return ModelRun(learner, initial, **TRAIN_RUN)


def expected_adam_step(reference, initial, X, Y, learning_rate):
    """One Adam step on (X, Y), taken here: the change of every parameter, flattened in the order of KEYS."""
    variables = [tf.Variable(initial[k]) for k in KEYS]
    with tf.GradientTape() as tape:
        logits = reference.forward_propagation(tf.constant(X), dict(zip(KEYS, variables)))
        loss = reference.compute_total_loss(logits, tf.constant(Y))
    grads = tape.gradient(loss, variables)
    tf.keras.optimizers.Adam(learning_rate).apply_gradients(zip(grads, variables))
    return np.concatenate([(v.numpy() - initial[k]).ravel() for k, v in zip(KEYS, variables)])


@pytest.mark.graded("model", points=1)
def test_model_returns_histories(train_run, one_step_run, reference, initial):
    """model returns the trained Variables and one cost and two accuracies per epoch, train_acc from the logits before each update."""
    _, costs, train_acc, test_acc = train_run.unpack()
    epochs = TRAIN_RUN["num_epochs"]
    for name, history in (("costs", costs), ("train_acc", train_acc), ("test_acc", test_acc)):
        hint = f"append to {name} once per epoch, after the loop over the mini-batches"
        values = history_values(history, name, length=epochs, length_hint=hint)
        check(bool(np.all(np.isfinite(values))), f"{name} contains NaN or inf")
        if name != "costs":
            check(bool(np.all((values >= 0) & (values <= 1))), f"{name} should hold fractions between 0 and 1")
    # One epoch of one mini-batch: train_acc[0] is the accuracy of the initial parameters.
    params, _, train_acc, _ = one_step_run.unpack()
    X, Y, _, _ = one_step_run.data
    accuracy = lambda p: float(np.mean(np.argmax(reference_logits(reference, X, p), axis=0) == np.argmax(Y, axis=0)))  # noqa: E731
    got = history_values(train_acc, "train_acc")
    check(
        len(got) == 1 and math.isclose(got[0], accuracy(initial), abs_tol=1e-6),
        "after one epoch of one mini-batch, train_acc is not the accuracy of the logits computed before the "
        "update"
        + (
            " (it is the accuracy after the update)"
            if len(got) == 1
            and not math.isclose(accuracy(params), accuracy(initial))
            and math.isclose(got[0], accuracy(params), abs_tol=1e-6)
            else ""
        ),
        "train_step returns the Z3 computed inside the tape, before optimizer.apply_gradients: "
        "do not compute Z3 again after the update",
    )


@pytest.mark.graded("model", points=2)
def test_model_one_adam_step(one_step_run, reference, initial):
    """one epoch of one full mini-batch makes exactly one Adam step against the gradient, on every parameter."""
    params, _, _, _ = one_step_run.unpack()
    X, Y, _, _ = one_step_run.data
    got = np.concatenate([(params[k] - initial[k]).ravel() for k in KEYS])
    want = expected_adam_step(reference, initial, X, Y, STEP_LR)
    check(
        bool(np.any(got != 0)),
        "the parameters returned by model are the initial ones: the optimizer never updated them",
        "after tape.gradient(...), call optimizer.apply_gradients(zip(grads, trainable_variables))",
    )
    tol = 0.1 * STEP_LR
    # Adam's first step is about learning_rate * sign(gradient): the step size tells the learning rate.
    default_lr = 0.001
    check(
        not np.allclose(got, want * default_lr / STEP_LR, rtol=0.05, atol=0.1 * default_lr),
        f"the parameters moved by Adam steps of learning rate {default_lr}, Keras's default, "
        f"while model was called with learning_rate={STEP_LR}",
        "pass the learning_rate argument to the optimizer: tf.keras.optimizers.Adam(learning_rate)",
    )
    clear = np.abs(want) > 0.5 * STEP_LR  # entries where Adam's first step is about +-learning_rate
    opposite = float(np.mean(np.abs(got[clear] + want[clear]) < tol))
    check(
        opposite < 0.9,
        "the parameters moved up the gradient, increasing the loss: the update has the wrong sign",
        "pass the gradients to optimizer.apply_gradients unchanged; the optimizer subtracts them",
    )
    # Every parameter takes its step: a few untrained entries (a bias of 10) hide in the 2% below.
    offset = 0
    for k in KEYS:
        size = initial[k].size
        got_k, want_k = got[offset : offset + size], want[offset : offset + size]
        offset += size
        clear_k = np.abs(want_k) > 0.5 * STEP_LR
        if not np.any(clear_k):
            continue
        agree_k = float(np.mean(np.abs(got_k[clear_k] - want_k[clear_k]) < tol))
        check(
            agree_k > 0.9,
            f"after one epoch with a single mini-batch, {k} "
            + (
                "is its initial value: the optimizer never updated it"
                if not np.any(got_k != 0)
                else f"did not take one Adam step ({100 * (1 - agree_k):.0f}% of its entries differ)"
            ),
            "take the gradients of every parameter and apply them all: "
            "tape.gradient(minibatch_total_loss, trainable_variables) with trainable_variables = "
            "[W1, b1, W2, b2, W3, b3], then optimizer.apply_gradients(zip(grads, trainable_variables))",
        )
    agree = float(np.mean(np.abs(got - want) < tol))
    check(
        agree > 0.98,
        f"after one epoch with a single mini-batch, {100 * (1 - agree):.1f}% of the parameter changes differ "
        "from one Adam step on the mini-batch's total loss",
        "in train_step: compute the logits and the loss inside `with tf.GradientTape() as tape:`, then "
        "grads = tape.gradient(minibatch_total_loss, trainable_variables) and one "
        "optimizer.apply_gradients(zip(grads, trainable_variables))",
    )


@pytest.mark.graded("model", points=2)
def test_model_learns(train_run, reference, initial):
    """ten epochs on 200 digits lower the cost and reach 80% test accuracy."""
    params, costs, _, test_acc = train_run.unpack()
    X_train, Y_train, X_test, Y_test = train_run.data
    costs = list(history_values(costs, "costs"))
    start = reference_total(reference, reference_logits(reference, X_train, initial), Y_train) / X_train.shape[1]
    check(
        0.4 * start < costs[0] < 1.5 * start,
        f"the first epoch's cost is {costs[0]:.4g}, far from the average loss per example of the initial "
        "parameters: costs should hold the average cost per training example",
        "add the mini-batch totals over the epoch and divide by m once (the provided code does this)",
    )
    check(
        costs[-1] < costs[0],
        f"the cost went from {costs[0]:.3g} to {costs[-1]:.3g} in {len(costs)} epochs: training does not reduce it",
        "take the gradients of the mini-batch's total loss and let the optimizer apply them at every step",
    )
    check(
        costs[-1] < 0.5 * costs[0],
        f"the cost went from {costs[0]:.3g} to {costs[-1]:.3g} in {len(costs)} epochs: it decreases, but too "
        f"slowly (ten epochs at learning_rate={TRAIN_RUN['learning_rate']} bring it below half)",
        "use the learning_rate argument (tf.keras.optimizers.Adam(learning_rate)) and apply the gradients "
        "once at every mini-batch step",
    )
    accuracy = float(
        np.mean(np.argmax(reference_logits(reference, X_test, params), axis=0) == np.argmax(Y_test, axis=0))
    )
    check(
        math.isclose(float(test_acc[-1]), accuracy, abs_tol=1e-6),
        "the last test accuracy in test_acc is not the accuracy of the returned parameters on the test set",
        "return the same variables that the optimizer updated",
    )
    check(
        accuracy >= MIN_TEST_ACCURACY,
        f"after training, the test accuracy is {accuracy:.3f}, below {MIN_TEST_ACCURACY}",
        "check train_step: forward pass and loss inside the tape, gradients of the loss, one apply_gradients",
    )
