"""Hidden suite for assignment 4, Optimization methods.

The optimizer updates are deterministic: they are compared with the reference
on several random networks (1 to 4 layers), several step counts t (1, a few
steps, 1000) and several hyperparameter settings, including unusual ones
(beta1 0.8, beta2 0.888, epsilon 1e-2, learning rate 0.3) so that hard-coded
defaults fail. Every check uses the values the learner's function RETURNS: the
arguments cross a process boundary, so updating them in place is invisible
here (the course's functions return the updated dictionaries).

random_mini_batches is random, so it is checked on its mathematics, never on
one permutation: the mini-batches partition the columns of X (each exactly
once), every label stays with its example (Y is a function of X's column, so
pairs can be checked), the sizes are right (partial last batch, exact
multiple with no empty batch), the order is really shuffled, the same seed
gives the same batches whatever the global random state, and different seeds
give different batches.

When a wrong answer matches a known mistake (bias correction with t + 1,
CS231n's momentum without (1 - beta), epsilon inside the square root,
staircase decay without floor, ...) the hint names that mistake.

Every clause of the notebook's spec, and the check that tests it (the planted
bugs of mutants.py that it catches).

update_parameters_with_gd
- W = W - alpha dW, b = b - alpha db for every layer, returned: test_gd_every_layer
  (gradient ascent, updates in place, returns None, the last layer not updated)
- the learning_rate given: test_gd_learning_rate
random_mini_batches
- one permutation for X and Y, each example with its label: test_mini_batches_pairing
  (X and Y shuffled with different permutations)
- every column in exactly one mini-batch, unchanged: test_mini_batches_partition
- floor(m / size) complete mini-batches, then one of m % size only when that is not 0;
  the default size 64: test_mini_batches_sizes (no partial last mini-batch, an empty
  mini-batch when m is a multiple)
- shuffled: test_mini_batches_shuffled (not shuffled)
- np.random.seed(seed): the same seed the same batches whatever the global state (the
  default seed 0 too), another seed others: test_mini_batches_seeded (seed ignored)
initialize_velocity, initialize_rmsprop
- keys dW1, db1, ..., np.zeros of the parameters' shapes: test_velocity_zeros,
  test_rmsprop_zeros (transposed shapes, keys W1/b1 instead of dW1/db1)
initialize_adam
- v and s zeros of the parameters' shapes: test_adam_init_zeros
- s separate arrays from v's: test_adam_init_independent (s shares v's arrays)
update_parameters_with_momentum
- v = beta v + (1 - beta) dW (the course's convention): test_momentum_velocity
  (CS231n velocity without (1 - beta))
- the velocity first, then W - alpha v with the new v: test_momentum_parameters
  (parameters updated with the old velocity)
update_parameters_with_rmsprop
- s = beta2 s + (1 - beta2) dW**2: test_rmsprop_average (RMSprop averages the gradients,
  not their squares)
- W - alpha dW / (sqrt(s) + epsilon), epsilon outside the root: test_rmsprop_parameters
  (epsilon inside the square root)
update_parameters_with_adam
- v and s the averages of dW and dW**2: test_adam_moments
- bias correction by 1 - beta**t, t counting this step: test_adam_bias_correction
  (bias correction with beta1**(t + 1), no bias correction)
- W - alpha v_corrected / (sqrt(s_corrected) + epsilon), every layer: test_adam_parameters
- the arguments learning_rate, beta1, beta2, epsilon and the defaults:
  test_adam_hyperparameters (hard-coded beta1 = 0.9)
update_lr
- learning_rate0 / (1 + decay_rate epoch_num): test_update_lr (exponential decay)
schedule_lr_decay
- learning_rate0 / (1 + decay_rate floor(epoch_num / time_interval)), default 1000:
  test_schedule_staircase (no floor)
- the time_interval argument: test_schedule_time_interval (time_interval ignored)
"""

import copy

import numpy as np
import pytest

from autograder.grading.checks import (
    as_array,
    check,
    check_dict_close,
    check_dict_structure,
    check_scalar_close,
    check_shape,
    diagnose,
    same_values,
    seeded_rng,
    unpack,
)

# Networks of 1 to 4 layers: the number of layers must come from len(parameters) // 2.
LAYER_CASES = [[3, 1], [4, 5, 1], [2, 5, 2, 1], [6, 4, 3, 2, 1]]

LAYERS_HINT = (
    "loop over every layer l = 1, ..., L with L = len(parameters) // 2 and update 'W' + str(l) and 'b' + str(l)"
)
RETURN_HINT = "return the updated dictionaries: the grader only sees what the function returns"


# ---------------------------------------------------------------- helpers


def make_inputs(seed, layer_dims):
    """Random parameters, grads, v (any sign) and s (nonnegative) for a network.

    Gradients have different scales per array so that the RMSprop/Adam
    normalisation matters.
    """
    rng = seeded_rng(seed)
    parameters, grads, v, s = {}, {}, {}, {}
    for l in range(1, len(layer_dims)):
        shapes = {"W": (layer_dims[l], layer_dims[l - 1]), "b": (layer_dims[l], 1)}
        for name in ("W", "b"):
            scale = 10.0 ** rng.uniform(-2, 0.5)
            parameters[name + str(l)] = rng.randn(*shapes[name])
            grads["d" + name + str(l)] = rng.randn(*shapes[name]) * scale
            v["d" + name + str(l)] = rng.randn(*shapes[name]) * scale
            s["d" + name + str(l)] = rng.rand(*shapes[name]) * scale**2
    return parameters, grads, v, s


def zeros_like(d):
    return {k: np.zeros_like(a) for k, a in d.items()}


def ref_call(fn, *args):
    """Call a reference function on deep copies: it updates its dicts in place."""
    return fn(*copy.deepcopy(args))


def check_dict_zeros(got, expected, what, hint):
    """Same keys and shapes as the reference, float dtype, all zeros."""
    arrays = check_dict_structure(got, expected, what, hint, float_hint="np.zeros(shape) gives float64 zeros")
    for k, arr in arrays.items():
        check(bool(np.all(arr == 0)), f"{k} of {what} is not all zeros", hint)


def layer_map(d, f):
    """Apply f(key, array) to every entry of a dict (to build mistaken answers)."""
    return {k: f(k, a) for k, a in d.items()}


# ---------------------------------------------------------------- gradient descent


@pytest.mark.graded("update_parameters_with_gd", points=1, shape_points=0.25)
def test_gd_every_layer(learner, reference):
    """update_parameters_with_gd matches the reference on networks of 1 to 4 layers."""
    for seed, dims in enumerate(LAYER_CASES):
        parameters, grads, _, _ = make_inputs(seed, dims)
        expected = ref_call(reference.update_parameters_with_gd, parameters, grads, 0.01)
        got = learner.update_parameters_with_gd(parameters, grads, 0.01)
        hint = lambda: diagnose(
            got,
            [
                (
                    "the update subtracts the gradient: W = W - learning_rate * dW",
                    layer_map(parameters, lambda k, a: a + 0.01 * grads["d" + k]),
                ),
                (
                    "the returned parameters are unchanged: "
                    + RETURN_HINT
                    + ", and assign parameters['W' + str(l)] = ...",
                    parameters,
                ),
            ],
            LAYERS_HINT + ": W = W - learning_rate * dW, b = b - learning_rate * db",
        )
        check_dict_close(got, expected, f"parameters returned for a network {dims}", hint)


@pytest.mark.graded("update_parameters_with_gd", points=1, shape_points=0.25)
def test_gd_learning_rate(learner, reference):
    """update_parameters_with_gd uses the learning_rate it is given (0.3 and 0)."""
    parameters, grads, _, _ = make_inputs(10, [2, 5, 2, 1])
    for lr in (0.3, 0.0):
        expected = ref_call(reference.update_parameters_with_gd, parameters, grads, lr)
        got = learner.update_parameters_with_gd(parameters, grads, lr)
        check_dict_close(
            got,
            expected,
            f"parameters returned with learning_rate = {lr}",
            "multiply the gradient by the learning_rate argument, not a fixed number",
        )


# ---------------------------------------------------------------- mini-batches


def make_data(n_x, m, seed):
    """X of shape (n_x, m) with distinct random columns and Y (1, m) a function of each column."""
    rng = seeded_rng(100 + seed)
    X = rng.randn(n_x, m)
    w = rng.randn(n_x)
    Y = (w @ X).reshape(1, m)  # Y[0, j] depends only on X[:, j]: pairs can be checked
    return X, Y


def batch_columns(mini_batches, X, Y, what):
    """Validate the structure of the mini-batches and return, per batch, the
    original column index of each of its columns (-1 for a column not in X) and
    its labels as a flat array."""
    n_x, m = X.shape
    check(
        isinstance(mini_batches, (list, tuple)),
        f"{what} should be a list of (mini_batch_X, mini_batch_Y) tuples, got {type(mini_batches).__name__}",
        "append (mini_batch_X, mini_batch_Y) tuples to the list mini_batches and return it",
    )
    lookup = {np.ascontiguousarray(X[:, j]).tobytes(): j for j in range(m)}
    columns, labels = [], []
    for k, pair in enumerate(mini_batches):
        check(
            isinstance(pair, (list, tuple)) and len(pair) == 2,
            f"{what}: mini-batch {k} is not a pair (mini_batch_X, mini_batch_Y)",
            "append the tuple (mini_batch_X, mini_batch_Y) for every mini-batch",
        )
        mb_X = as_array(pair[0], f"{what}: mini_batch_X of mini-batch {k}")
        mb_Y = as_array(pair[1], f"{what}: mini_batch_Y of mini-batch {k}")
        # check_shape: a shape that differs only by size-1 axes ((size,) for (1, size)) costs
        # only the tests' shape points (grading/shapes.py), and the values are still checked.
        size = mb_X.shape[-1] if mb_X.ndim else 0
        mb_X = check_shape(
            mb_X, (n_x, size), f"{what}: mini_batch_X of mini-batch {k}", "slice columns: shuffled_X[:, start:end]"
        )
        mb_Y = check_shape(
            mb_Y,
            (1, size),
            f"{what}: mini_batch_Y of mini-batch {k} (like its mini_batch_X)",
            "slice the same columns of Y as of X: shuffled_Y[:, start:end]",
        )
        mb_X = mb_X.astype(np.float64)
        columns.append(
            np.array([lookup.get(np.ascontiguousarray(mb_X[:, i]).tobytes(), -1) for i in range(size)], dtype=int)
        )
        labels.append(mb_Y.astype(np.float64).ravel())
    return columns, labels


PARTITION_CASES = [(3, 148, 64, 0), (2, 300, 64, 1), (4, 50, 16, 3), (2, 128, 32, 7), (1, 9, 4, 2)]


@pytest.mark.graded("random_mini_batches", points=1, shape_points=0.25)
def test_mini_batches_partition(learner):
    """Every column of X is in exactly one mini-batch, unchanged."""
    for n_x, m, size, seed in PARTITION_CASES:
        X, Y = make_data(n_x, m, seed)
        what = f"random_mini_batches with m = {m}, mini_batch_size = {size}"
        columns, _ = batch_columns(learner.random_mini_batches(X, Y, size, seed), X, Y, what)
        found = np.concatenate(columns) if columns else np.zeros(0, dtype=int)
        check(
            bool(np.all(found >= 0)),
            f"{what}: {int(np.sum(found < 0))} columns of the mini-batches are not columns of X",
            "shuffle whole columns, X[:, permutation], without changing their values",
        )
        counts = np.bincount(found, minlength=m)
        missing, repeated = int(np.sum(counts == 0)), int(np.sum(counts > 1))
        check(
            missing == 0 and repeated == 0,
            f"{what}: {missing} examples are in no mini-batch and {repeated} are in more than one",
            "shuffle with one permutation of range(m), then cut consecutive slices "
            "[k * mini_batch_size:(k + 1) * mini_batch_size] and the remainder",
        )


@pytest.mark.graded("random_mini_batches", points=1, shape_points=0.25)
def test_mini_batches_pairing(learner):
    """Each label in mini_batch_Y stays with its example in mini_batch_X."""
    for n_x, m, size, seed in PARTITION_CASES:
        X, Y = make_data(n_x, m, seed)
        what = f"random_mini_batches with m = {m}, mini_batch_size = {size}"
        columns, labels = batch_columns(learner.random_mini_batches(X, Y, size, seed), X, Y, what)
        for k, (cols, ys) in enumerate(zip(columns, labels)):
            known = cols >= 0
            check(
                bool(np.array_equal(ys[known], Y[0, cols[known]])),
                f"{what}: in mini-batch {k}, labels are not those of their examples",
                "shuffle X and Y with the SAME permutation: X[:, permutation] and Y[:, permutation]",
            )


@pytest.mark.graded("random_mini_batches", points=1, shape_points=0.25)
def test_mini_batches_sizes(learner):
    """Full mini-batches of mini_batch_size, then one smaller batch only when m is not a multiple."""
    cases = [
        (2, 148, 64, [64, 64, 20]),
        (3, 128, 64, [64, 64]),  # exact multiple: no empty or extra batch
        (2, 96, 32, [32, 32, 32]),
        (2, 10, 64, [10]),  # fewer examples than one mini-batch
        (2, 7, 1, [1] * 7),
        (2, 300, None, [64, 64, 64, 64, 44]),  # default mini_batch_size = 64
    ]
    for n_x, m, size, expected in cases:
        X, Y = make_data(n_x, m, 5)
        if size is None:
            what = f"random_mini_batches(X, Y) with m = {m} and the default mini_batch_size"
            result = learner.random_mini_batches(X, Y)
        else:
            what = f"random_mini_batches with m = {m}, mini_batch_size = {size}"
            result = learner.random_mini_batches(X, Y, size, 5)
        columns, _ = batch_columns(result, X, Y, what)
        sizes = [len(c) for c in columns]
        hint = (
            "make math.floor(m / mini_batch_size) complete mini-batches, then one with the remaining "
            "m % mini_batch_size examples only if that is not 0"
        )
        if sizes and sizes[-1] == 0:
            hint = "the last mini-batch is empty: add it only when m % mini_batch_size != 0"
        check(sizes == expected, f"{what}: the mini-batch sizes are {sizes}, expected {expected}", hint)


def order_of(learner_result, X, Y, what):
    columns, _ = batch_columns(learner_result, X, Y, what)
    return np.concatenate(columns) if columns else np.zeros(0, dtype=int)


@pytest.mark.graded("random_mini_batches", points=1, shape_points=0.25)
def test_mini_batches_shuffled(learner):
    """The examples are shuffled, not kept in their original order."""
    X, Y = make_data(2, 148, 0)
    for seed in (0, 1, 42):
        what = f"random_mini_batches with m = 148, seed = {seed}"
        order = order_of(learner.random_mini_batches(X, Y, 64, seed), X, Y, what)
        check(
            order.size == 148,
            f"{what}: the mini-batches hold {order.size} examples, expected 148",
            "every example should be in one mini-batch",
        )
        # Neighbours in the original order rarely stay neighbours after a random
        # permutation (about 2 pairs expected); sorting, reversing or rotating keeps most of them.
        steps = np.diff(order)
        kept = int(np.sum(np.abs(steps) == 1))
        check(
            kept < 30,
            f"{what}: {kept} of 147 consecutive examples are still next to each other, so the data was not shuffled",
            "shuffle the columns with permutation = list(np.random.permutation(m)), then X[:, permutation]",
        )
        first = set(order[:64].tolist())
        check(
            first != set(range(64)),
            f"{what}: the first mini-batch holds exactly the first 64 examples, so the data was not shuffled "
            "across mini-batches",
            "shuffle all m columns before cutting the mini-batches",
        )


@pytest.mark.graded("random_mini_batches", points=1, shape_points=0.25)
def test_mini_batches_seeded(learner):
    """The same seed gives the same mini-batches, different seeds give different ones."""
    X, Y = make_data(3, 148, 4)
    what = "random_mini_batches with m = 148"
    learner.seed(1)
    first = order_of(learner.random_mini_batches(X, Y, 64, 5), X, Y, what + ", seed = 5")
    learner.seed(2)  # another global random state: the function must seed itself
    second = order_of(learner.random_mini_batches(X, Y, 64, 5), X, Y, what + ", seed = 5")
    check(
        bool(np.array_equal(first, second)),
        f"{what}: two calls with seed = 5 gave different mini-batches",
        "call np.random.seed(seed) at the start of the function, before np.random.permutation",
    )
    learner.seed(3)
    default_1 = order_of(learner.random_mini_batches(X, Y, 64), X, Y, what + " and the default seed")
    learner.seed(4)
    default_2 = order_of(learner.random_mini_batches(X, Y, 64), X, Y, what + " and the default seed")
    check(
        bool(np.array_equal(default_1, default_2)),
        f"{what}: two calls with the default seed = 0 gave different mini-batches",
        "call np.random.seed(seed) at the start of the function, before np.random.permutation",
    )
    other = order_of(learner.random_mini_batches(X, Y, 64, 6), X, Y, what + ", seed = 6")
    check(
        not np.array_equal(first, other),
        f"{what}: seeds 5 and 6 gave the same mini-batches",
        "use the seed argument: np.random.seed(seed), not a fixed number",
    )


# ---------------------------------------------------------------- initializers


@pytest.mark.graded("initialize_velocity", points=1, shape_points=0.25)
def test_velocity_zeros(learner, reference):
    """v holds zeros of the shapes of dW1, db1, ..., dWL, dbL for networks of 1 to 4 layers."""
    for seed, dims in enumerate(LAYER_CASES):
        parameters, _, _, _ = make_inputs(seed, dims)
        expected = ref_call(reference.initialize_velocity, parameters)
        got = learner.initialize_velocity(parameters)
        check_dict_zeros(
            got,
            expected,
            f"v for a network {dims}",
            "for every layer l: v['dW' + str(l)] = np.zeros(parameters['W' + str(l)].shape), "
            "and the same for 'db' + str(l)",
        )


@pytest.mark.graded("initialize_rmsprop", points=1, shape_points=0.25)
def test_rmsprop_zeros(learner, reference):
    """s holds zeros of the shapes of dW1, db1, ..., dWL, dbL for networks of 1 to 4 layers."""
    for seed, dims in enumerate(LAYER_CASES):
        parameters, _, _, _ = make_inputs(seed, dims)
        expected = ref_call(reference.initialize_rmsprop, parameters)
        got = learner.initialize_rmsprop(parameters)
        check_dict_zeros(
            got,
            expected,
            f"s for a network {dims}",
            "for every layer l: s['dW' + str(l)] = np.zeros(parameters['W' + str(l)].shape), "
            "and the same for 'db' + str(l)",
        )


@pytest.mark.graded("initialize_adam", points=1, shape_points=0.25)
def test_adam_init_zeros(learner, reference):
    """v and s both hold zeros of the shapes of dW1, db1, ..., dWL, dbL for networks of 1 to 4 layers."""
    for seed, dims in enumerate(LAYER_CASES):
        parameters, _, _, _ = make_inputs(seed, dims)
        expected_v, expected_s = ref_call(reference.initialize_adam, parameters)
        got = unpack(learner.initialize_adam(parameters), "v, s", "initialize_adam")
        hint = (
            "for every layer l: v['dW' + str(l)] = np.zeros(parameters['W' + str(l)].shape), "
            "the same for 'db' + str(l), and the same for s"
        )
        check_dict_zeros(got[0], expected_v, f"v for a network {dims}", hint)
        check_dict_zeros(got[1], expected_s, f"s for a network {dims}", hint)


# Runs in the learner's process: whether two returned arrays are the same memory
# cannot be seen once the values have crossed the boundary.
SHARED_MEMORY_PROBE = """
def probe(ns, parameters):
    import numpy as np
    v, s = ns["initialize_adam"](parameters)
    arrays = [("v['%s']" % k, a) for k, a in v.items()] + [("s['%s']" % k, a) for k, a in s.items()]
    shared = []
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            if np.shares_memory(arrays[i][1], arrays[j][1]):
                shared.append(arrays[i][0] + " and " + arrays[j][0])
        for key, p in parameters.items():
            if np.shares_memory(arrays[i][1], p):
                shared.append(arrays[i][0] + " and parameters['%s']" % key)
    return shared
"""


@pytest.mark.graded("initialize_adam", points=1)
def test_adam_init_independent(learner):
    """The arrays of v and s are separate arrays (updating one cannot change the other)."""
    for seed, dims in enumerate(LAYER_CASES[1:]):
        parameters, _, _, _ = make_inputs(seed, dims)
        # A plain call first, so that a function that fails is reported by name.
        unpack(learner.initialize_adam(parameters), "v, s", "initialize_adam")
        shared = learner.probe(SHARED_MEMORY_PROBE, parameters=parameters)
        check(isinstance(shared, list), "initialize_adam could not be inspected", "return the tuple (v, s)")
        check(
            len(shared) == 0,
            f"initialize_adam for a network {dims}: {len(shared)} pairs of returned arrays are the same memory, "
            f"e.g. {str(shared[0])[:80] if shared else ''}",
            "create new arrays for s with np.zeros(...), do not reuse v's arrays (s = v or s = v.copy() shares them)",
        )


# ---------------------------------------------------------------- momentum

MOMENTUM_CASES = [(0.9, 0.01), (0.8, 0.3), (0.5, 0.05), (0.0, 0.1)]


@pytest.mark.graded("update_parameters_with_momentum", points=1, shape_points=0.25)
def test_momentum_velocity(learner, reference):
    """The returned v is beta * v + (1 - beta) * dW for every layer, several betas."""
    for seed, dims in enumerate(LAYER_CASES):
        for beta, lr in MOMENTUM_CASES:
            parameters, grads, v, _ = make_inputs(10 * seed + int(beta * 10), dims)
            expected = ref_call(reference.update_parameters_with_momentum, parameters, grads, v, beta, lr)[1]
            got = unpack(
                learner.update_parameters_with_momentum(parameters, grads, v, beta, lr),
                "parameters, v",
                "update_parameters_with_momentum",
            )[1]
            hint = lambda: diagnose(
                got,
                [
                    (
                        "momentum uses v = beta*v + (1-beta)*dW: the course averages the gradients, CS231n's "
                        "v = mu*v - lr*dW does not have the (1 - beta) factor",
                        layer_map(v, lambda k, a: beta * a + grads[k]),
                    ),
                    (
                        "beta multiplies the old v and (1 - beta) the gradient, not the other way round",
                        layer_map(v, lambda k, a: (1 - beta) * a + beta * grads[k]),
                    ),
                    ("v is unchanged: " + RETURN_HINT, v),
                ],
                "momentum uses v = beta*v + (1-beta)*dW for every layer (" + LAYERS_HINT + ")",
            )
            check_dict_close(got, expected, f"v for a network {dims}, beta = {beta}", hint)


@pytest.mark.graded("update_parameters_with_momentum", points=1, shape_points=0.25)
def test_momentum_parameters(learner, reference):
    """The returned parameters are W - learning_rate * v (the new v), several betas and learning rates."""
    for seed, dims in enumerate(LAYER_CASES):
        for beta, lr in MOMENTUM_CASES:
            parameters, grads, v, _ = make_inputs(10 * seed + int(beta * 10), dims)
            expected = ref_call(reference.update_parameters_with_momentum, parameters, grads, v, beta, lr)[0]
            got = unpack(
                learner.update_parameters_with_momentum(parameters, grads, v, beta, lr),
                "parameters, v",
                "update_parameters_with_momentum",
            )[0]
            new_v = layer_map(v, lambda k, a: beta * a + (1 - beta) * grads[k])
            hint = lambda: diagnose(
                got,
                [
                    (
                        "update W with the NEW velocity: compute v first, then W = W - learning_rate * v",
                        layer_map(parameters, lambda k, a: a - lr * v["d" + k]),
                    ),
                    (
                        "the step uses the velocity, not the raw gradient: W = W - learning_rate * v['dW' + str(l)]",
                        layer_map(parameters, lambda k, a: a - lr * grads["d" + k]),
                    ),
                    (
                        "the update subtracts: W = W - learning_rate * v",
                        layer_map(parameters, lambda k, a: a + lr * new_v["d" + k]),
                    ),
                ],
                "after updating v, W = W - learning_rate * v['dW' + str(l)] and b = b - learning_rate * v['db' + str(l)]",
            )
            check_dict_close(
                got, expected, f"parameters for a network {dims}, beta = {beta}, learning_rate = {lr}", hint
            )


# ---------------------------------------------------------------- RMSprop

RMSPROP_CASES = [(0.999, 0.01, 1e-8), (0.9, 0.001, 1e-8), (0.888, 0.3, 1e-2)]


@pytest.mark.graded("update_parameters_with_rmsprop", points=1, shape_points=0.25)
def test_rmsprop_average(learner, reference):
    """The returned s is beta2 * s + (1 - beta2) * dW**2 for every layer, several beta2."""
    for seed, dims in enumerate(LAYER_CASES):
        for beta2, lr, eps in RMSPROP_CASES:
            parameters, grads, _, s = make_inputs(20 + seed, dims)
            expected = ref_call(reference.update_parameters_with_rmsprop, parameters, grads, s, beta2, lr, eps)[1]
            got = unpack(
                learner.update_parameters_with_rmsprop(parameters, grads, s, beta2, lr, eps),
                "parameters, s",
                "update_parameters_with_rmsprop",
            )[1]
            hint = lambda: diagnose(
                got,
                [
                    (
                        "s averages the SQUARED gradient: s = beta2*s + (1-beta2)*np.square(dW)",
                        layer_map(s, lambda k, a: beta2 * a + (1 - beta2) * grads[k]),
                    ),
                    (
                        "s = beta2*s + (1-beta2)*dW**2: the (1 - beta2) factor is missing",
                        layer_map(s, lambda k, a: beta2 * a + grads[k] ** 2),
                    ),
                    ("s is unchanged: " + RETURN_HINT, s),
                ],
                "s = beta2*s + (1-beta2)*dW**2 for every layer (" + LAYERS_HINT + ")",
            )
            check_dict_close(got, expected, f"s for a network {dims}, beta2 = {beta2}", hint)


@pytest.mark.graded("update_parameters_with_rmsprop", points=1, shape_points=0.25)
def test_rmsprop_parameters(learner, reference):
    """The returned parameters are W - lr * dW / (sqrt(s) + epsilon), incl. epsilon = 1e-2 and lr = 0.3."""
    for seed, dims in enumerate(LAYER_CASES):
        for beta2, lr, eps in RMSPROP_CASES:
            parameters, grads, _, s = make_inputs(20 + seed, dims)
            expected = ref_call(reference.update_parameters_with_rmsprop, parameters, grads, s, beta2, lr, eps)[0]
            got = unpack(
                learner.update_parameters_with_rmsprop(parameters, grads, s, beta2, lr, eps),
                "parameters, s",
                "update_parameters_with_rmsprop",
            )[0]
            new_s = layer_map(s, lambda k, a: beta2 * a + (1 - beta2) * grads[k] ** 2)
            hint = lambda: diagnose(
                got,
                [
                    (
                        "epsilon goes outside the square root: dW / (np.sqrt(s) + epsilon)",
                        layer_map(parameters, lambda k, a: a - lr * grads["d" + k] / np.sqrt(new_s["d" + k] + eps)),
                    ),
                    (
                        "divide by the square root of s: dW / (np.sqrt(s) + epsilon)",
                        layer_map(parameters, lambda k, a: a - lr * grads["d" + k] / (new_s["d" + k] + eps)),
                    ),
                    (
                        "update W with the NEW s: compute s first, then the step",
                        layer_map(parameters, lambda k, a: a - lr * grads["d" + k] / (np.sqrt(s["d" + k]) + eps)),
                    ),
                ],
                "W = W - learning_rate * dW / (np.sqrt(s['dW' + str(l)]) + epsilon), with the epsilon argument",
            )
            check_dict_close(
                got,
                expected,
                f"parameters for a network {dims}, beta2 = {beta2}, learning_rate = {lr}, epsilon = {eps}",
                hint,
            )


# ---------------------------------------------------------------- Adam

DEFAULTS = dict(learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8)
UNUSUAL = dict(learning_rate=0.3, beta1=0.8, beta2=0.888, epsilon=1e-2)
ADAM_T = [1, 2, 7, 1000]
ADAM_RETURNS = "parameters, v, s, v_corrected, s_corrected"


def adam_case(seed, dims, t, fresh):
    """Inputs for one Adam step; fresh means v = s = 0, as on the real first step."""
    parameters, grads, v, s = make_inputs(40 + seed, dims)
    if fresh:
        v, s = zeros_like(v), zeros_like(s)
    return parameters, grads, v, s, t


def adam_cases():
    """(dims, parameters, grads, v, s, t) over layer counts and step counts, incl. t = 1 from zeros."""
    cases = []
    for seed, dims in enumerate(LAYER_CASES):
        for t in ADAM_T:
            cases.append((dims,) + adam_case(seed, dims, t, fresh=False))
        cases.append((dims,) + adam_case(seed, dims, 1, fresh=True))
    return cases


def adam_both(learner, reference, parameters, grads, v, s, t, hp):
    """(learner's 5 outputs, reference's 5 outputs) for one step with hyperparameters hp."""
    args = (parameters, grads, v, s, t, hp["learning_rate"], hp["beta1"], hp["beta2"], hp["epsilon"])
    expected = ref_call(reference.update_parameters_with_adam, *args)
    got = unpack(learner.update_parameters_with_adam(*args), ADAM_RETURNS, "update_parameters_with_adam")
    return got, expected


def adam_mistakes(grads, v, s, t, hp):
    """Dicts of v_corrected and s_corrected under the usual bias-correction mistakes."""
    # (1 - beta)**t underflows to 0 for t = 1000: that mistake's values are inf, harmlessly.
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return _adam_mistakes(grads, v, s, t, hp)


def _adam_mistakes(grads, v, s, t, hp):
    b1, b2 = hp["beta1"], hp["beta2"]
    new_v = layer_map(v, lambda k, a: b1 * a + (1 - b1) * grads[k])
    new_s = layer_map(s, lambda k, a: b2 * a + (1 - b2) * grads[k] ** 2)
    v_hints = [
        (
            "v_corrected divides by 1 - beta1**t: check t (it is the step count passed in, not t + 1)",
            layer_map(new_v, lambda k, a: a / (1 - b1 ** (t + 1))),
        ),
        ("v_corrected divides by 1 - beta1**t: the bias correction is missing", new_v),
        (
            "v_corrected divides by 1 - beta1**t (beta1 to the power t, not (1 - beta1)**t)",
            layer_map(new_v, lambda k, a: a / (1 - b1) ** t),
        ),
        ("v_corrected divides by 1 - beta1**t, the power of t matters", layer_map(new_v, lambda k, a: a / (1 - b1))),
        ("v_corrected divides by 1 - beta1**t, with beta1 (not beta2)", layer_map(new_v, lambda k, a: a / (1 - b2**t))),
        (
            "bias-correct the NEW v: update v first, then v_corrected = v / (1 - beta1**t)",
            layer_map(v, lambda k, a: a / (1 - b1**t)),
        ),
    ]
    s_hints = [
        (
            "s_corrected divides by 1 - beta2**t: check t (it is the step count passed in, not t + 1)",
            layer_map(new_s, lambda k, a: a / (1 - b2 ** (t + 1))),
        ),
        ("s_corrected divides by 1 - beta2**t: the bias correction is missing", new_s),
        (
            "s_corrected divides by 1 - beta2**t (beta2 to the power t, not (1 - beta2)**t)",
            layer_map(new_s, lambda k, a: a / (1 - b2) ** t),
        ),
        ("s_corrected divides by 1 - beta2**t, with beta2 (not beta1)", layer_map(new_s, lambda k, a: a / (1 - b1**t))),
        (
            "bias-correct the NEW s: update s first, then s_corrected = s / (1 - beta2**t)",
            layer_map(s, lambda k, a: a / (1 - b2**t)),
        ),
    ]
    return v_hints, s_hints


@pytest.mark.graded("update_parameters_with_adam", points=1, shape_points=0.25)
def test_adam_moments(learner, reference):
    """The returned v and s are the averages of dW and dW**2 (beta1, beta2) for networks of 1 to 4 layers."""
    for dims, parameters, grads, v, s, t in adam_cases():
        got, expected = adam_both(learner, reference, parameters, grads, v, s, t, DEFAULTS)
        where = f" for a network {dims}, t = {t}"
        check_dict_close(
            got[1],
            expected[1],
            "v" + where,
            lambda: diagnose(
                got[1],
                [("v is unchanged: " + RETURN_HINT, v)],
                "v = beta1*v + (1-beta1)*dW for every layer (" + LAYERS_HINT + ")",
            ),
        )
        check_dict_close(
            got[2],
            expected[2],
            "s" + where,
            lambda: diagnose(
                got[2],
                [
                    ("s is unchanged: " + RETURN_HINT, s),
                    (
                        "s averages the SQUARED gradient: s = beta2*s + (1-beta2)*np.square(dW)",
                        layer_map(s, lambda k, a: 0.999 * a + 0.001 * grads[k]),
                    ),
                ],
                "s = beta2*s + (1-beta2)*dW**2 for every layer (" + LAYERS_HINT + ")",
            ),
        )


@pytest.mark.graded("update_parameters_with_adam", points=1, shape_points=0.25)
def test_adam_bias_correction(learner, reference):
    """v_corrected and s_corrected divide by 1 - beta**t, at t = 1 (from zeros), t = 2, 7 and 1000."""
    for dims, parameters, grads, v, s, t in adam_cases():
        got, expected = adam_both(learner, reference, parameters, grads, v, s, t, DEFAULTS)
        where = f" for a network {dims}, t = {t}" + (" (first step, v = s = 0)" if not np.any(v["dW1"]) else "")
        check_dict_close(
            got[3],
            expected[3],
            "v_corrected" + where,
            lambda: diagnose(
                got[3],
                adam_mistakes(grads, v, s, t, DEFAULTS)[0],
                "v_corrected = v / (1 - beta1**t), using the updated v",
            ),
        )
        check_dict_close(
            got[4],
            expected[4],
            "s_corrected" + where,
            lambda: diagnose(
                got[4],
                adam_mistakes(grads, v, s, t, DEFAULTS)[1],
                "s_corrected = s / (1 - beta2**t), using the updated s",
            ),
        )


@pytest.mark.graded("update_parameters_with_adam", points=1, shape_points=0.25)
def test_adam_parameters(learner, reference):
    """The returned parameters are W - lr * v_corrected / (sqrt(s_corrected) + epsilon) for every layer."""
    for dims, parameters, grads, v, s, t in adam_cases():
        got, expected = adam_both(learner, reference, parameters, grads, v, s, t, DEFAULTS)
        check_dict_close(
            got[0],
            expected[0],
            f"parameters for a network {dims}, t = {t}",
            lambda: diagnose(
                got[0],
                [("the parameters are unchanged: " + RETURN_HINT, parameters)],
                "W = W - learning_rate * v_corrected / (np.sqrt(s_corrected) + epsilon), "
                "with the corrected averages of the same layer",
            ),
        )


@pytest.mark.graded("update_parameters_with_adam", points=1, shape_points=0.25)
def test_adam_hyperparameters(learner, reference):
    """Adam uses the arguments learning_rate=0.3, beta1=0.8, beta2=0.888, epsilon=1e-2, and the right defaults."""
    names = ["parameters", "v", "s", "v_corrected", "s_corrected"]
    hint = (
        "use the arguments learning_rate, beta1, beta2 and epsilon everywhere (no fixed 0.9, 0.999, 1e-8), "
        "and keep epsilon outside the square root: np.sqrt(s_corrected) + epsilon"
    )
    for seed, dims in enumerate(LAYER_CASES):
        for t in (1, 3, 1000):
            parameters, grads, v, s, t = adam_case(seed, dims, t, fresh=(t == 1))
            got, expected = adam_both(learner, reference, parameters, grads, v, s, t, UNUSUAL)
            for i in (1, 2, 3, 4, 0):
                check_dict_close(
                    got[i],
                    expected[i],
                    f"{names[i]} with learning_rate=0.3, beta1=0.8, beta2=0.888, epsilon=1e-2 "
                    f"for a network {dims}, t = {t}",
                    hint,
                )
    # Only the five required arguments: the defaults of the signature apply.
    parameters, grads, v, s, t = adam_case(0, [2, 5, 2, 1], 4, fresh=False)
    expected = ref_call(reference.update_parameters_with_adam, parameters, grads, v, s, t)
    got = unpack(
        learner.update_parameters_with_adam(parameters, grads, v, s, t), ADAM_RETURNS, "update_parameters_with_adam"
    )
    for i in (1, 2, 3, 4, 0):
        check_dict_close(
            got[i],
            expected[i],
            f"{names[i]} with the default hyperparameters",
            "keep the signature's defaults: learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8",
        )


# ---------------------------------------------------------------- learning-rate decay


def scalar_hint(got, mistakes, default_hint):
    """The hint of the first known mistake whose value equals got (to 1e-9), else default_hint."""
    value = got.reshape(()) if isinstance(got, np.ndarray) and got.size == 1 else got
    return diagnose(value, mistakes, default_hint, matches=lambda g, w: same_values(g, w, rtol=1e-9, atol=0.0))


@pytest.mark.graded("update_lr", points=1)
def test_update_lr(learner, reference):
    """update_lr is learning_rate0 / (1 + decay_rate * epoch_num) on several inputs."""
    for lr0, epoch, decay in [(0.5, 0, 1), (0.5, 2, 1), (0.3, 10, 0.5), (0.01, 1000, 0.3), (1.0, 7, 0), (0.2, 3, 2.5)]:
        expected = reference.update_lr(lr0, epoch, decay)
        got = learner.update_lr(lr0, epoch, decay)
        hint = scalar_hint(
            got,
            [
                ("mind the brackets: learning_rate0 / (1 + decay_rate * epoch_num)", lr0 / (1 + decay) * epoch),
                (
                    "this is an exponential decay; update_lr is learning_rate0 / (1 + decay_rate * epoch_num)",
                    lr0 * decay**epoch,
                ),
            ],
            "learning_rate = learning_rate0 / (1 + decay_rate * epoch_num)",
        )
        check_scalar_close(got, expected, f"update_lr({lr0}, {epoch}, {decay})", hint, rtol=1e-6)


@pytest.mark.graded("schedule_lr_decay", points=1)
def test_schedule_staircase(learner, reference):
    """schedule_lr_decay changes the rate only every 1000 epochs by default (floor of epoch_num / 1000)."""
    for lr0, epoch, decay in [
        (0.5, 0, 1),
        (0.5, 999, 1),
        (0.5, 1000, 1),
        (0.3, 1500, 0.5),
        (0.1, 2999, 1),
        (0.1, 5000, 2),
    ]:
        expected = reference.schedule_lr_decay(lr0, epoch, decay)
        got = learner.schedule_lr_decay(lr0, epoch, decay)
        hint = scalar_hint(
            got,
            [
                (
                    "take the floor of epoch_num / time_interval: the learning rate stays constant "
                    "between multiples of time_interval (a staircase)",
                    lr0 / (1 + decay * epoch / 1000),
                ),
                (
                    "divide epoch_num by time_interval: learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval))",
                    lr0 / (1 + decay * epoch),
                ),
            ],
            "learning_rate0 / (1 + decay_rate * math.floor(epoch_num / time_interval)) with time_interval = 1000",
        )
        check_scalar_close(got, expected, f"schedule_lr_decay({lr0}, {epoch}, {decay})", hint, rtol=1e-6)


@pytest.mark.graded("schedule_lr_decay", points=1)
def test_schedule_time_interval(learner, reference):
    """schedule_lr_decay uses its time_interval argument (50, 300, 2000)."""
    for lr0, epoch, decay, interval in [
        (0.3, 250, 0.5, 100),
        (0.5, 299, 1, 300),
        (0.5, 300, 1, 300),
        (0.2, 1234, 2, 50),
        (0.1, 3999, 1, 2000),
    ]:
        expected = reference.schedule_lr_decay(lr0, epoch, decay, interval)
        got = learner.schedule_lr_decay(lr0, epoch, decay, time_interval=interval)
        hint = scalar_hint(
            got,
            [
                (
                    "take the floor of epoch_num / time_interval: the learning rate stays constant "
                    "between multiples of time_interval (a staircase)",
                    lr0 / (1 + decay * epoch / interval),
                ),
            ],
            "divide epoch_num by the time_interval argument, not a fixed 1000, and take the floor",
        )
        check_scalar_close(
            got, expected, f"schedule_lr_decay({lr0}, {epoch}, {decay}, time_interval={interval})", hint, rtol=1e-6
        )
