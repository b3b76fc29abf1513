"""Hidden suite for the Regularization assignment.

The L2 functions are deterministic, so they are compared with the reference
on several random problems (shapes, lambd values including 0). The dropout
forward pass is random, so it is checked for internal consistency (the
returned activations must follow from the returned masks) and for mask
statistics, never for one RNG call order. The dropout backward pass is
deterministic given the cache, so it is compared with the reference on caches
built by the reference forward pass.

Learner values only arrive as plain data; every failure goes through
autograder.grading.checks so no expected array is ever printed.

Every clause of the notebook's spec, and the check that tests it (the planted
bugs of mutants.py that it catches).

compute_cost_with_regularization
- cross-entropy + lambd / (2m) (||W1||^2 + ||W2||^2 + ||W3||^2), a single number:
  test_cost_lambd_zero, test_cost_l2_term (cost_lambd_over_m, cost_forgets_W3)
- the biases are not penalized: test_cost_l2_term (cost_penalizes_biases)
backward_propagation_with_regularization
- dW_l = 1/m dZ_l A_{l-1}^T + lambd/m W_l for l = 1, 2, 3: test_l2_backward_weight_decay
  (l2_dW2_missing_term)
- dZ, dA, db as without regularization, every key of the dict, shapes of what they are the
  gradients of: test_l2_backward_lambd_zero, test_l2_backward_weight_decay (l2_db_regularized)
forward_propagation_with_dropout
- Z_l = W_l A_{l-1} + b_l from the dropped activations; A_l = relu(Z_l) D_l / keep_prob;
  no dropout on the input or the output layer; cache (Z1, D1, A1, W1, b1, ..., W3, b3) with
  masks of 0s and 1s of the activations' shape: test_dropout_forward_consistent_with_masks
  (dropout_forgets_keep_prob, dropout_mask_on_Z, dropout_on_the_input)
- each unit kept with probability keep_prob (all at keep_prob = 1), independently for every
  unit and example, anew at every call: test_dropout_forward_mask_statistics
  (dropout_same_mask_for_every_example, dropout_reseeds_inside, dropout_fixed_pattern,
  dropout_shifted_pattern)
- the two layers' masks independent of each other: test_dropout_forward_mask_statistics
  (dropout_second_layer_reuses_the_first_mask)
backward_propagation_with_dropout
- the usual backward pass with dA_l masked by the cached D_l and divided by keep_prob
  (or, the same math, the mask applied to dZ_l): test_dropout_backward_output_layer,
  test_dropout_backward_hidden_layers (dropout_backward_draws_new_masks,
  dropout_backward_forgets_keep_prob)
"""

import numpy as np
import pytest

from autograder.grading.checks import (
    CheckFailed,
    as_array,
    check,
    check_close,
    check_dict_close,
    check_shape,
    check_type,
    diagnose,
    helper_module,
    same_values,
    seeded_rng,
    unpack,
)

utils = helper_module("regularization")
relu, sigmoid = utils.relu, utils.sigmoid

GRAD_ORDER = ["dZ3", "dW3", "db3", "dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1"]
DROPOUT_CACHE = "(Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)"
GRADS_HINT = "return the dict {'dZ3': dZ3, 'dW3': dW3, 'db3': db3, 'dA2': dA2, ..., 'db1': db1}"

# (n_x, n_1, n_2, m): the assignment's network, a small one and a wider one
PROBLEMS = [(2, 20, 3, 13), (3, 5, 4, 7), (4, 9, 6, 40)]
LAMBDS = [0.1, 0.7, 2.5]


# ----------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------


def random_problem(seed, n_x, n1, n2, m):
    """X (n_x, m), Y (1, m) in {0, 1} and parameters for [n_x, n1, n2, 1]."""
    rng = seeded_rng(seed)
    parameters = {
        "W1": rng.randn(n1, n_x),
        "b1": 0.1 * rng.randn(n1, 1),
        "W2": rng.randn(n2, n1) / np.sqrt(n1),
        "b2": 0.1 * rng.randn(n2, 1),
        "W3": rng.randn(1, n2) / np.sqrt(n2),
        "b3": 0.1 * rng.randn(1, 1),
    }
    X = rng.randn(n_x, m)
    Y = (rng.rand(1, m) > 0.5).astype(np.float64)
    return X, Y, parameters


def reference_dropout_cache(reference, X, parameters, keep_prob, seed):
    """A consistent dropout cache from the reference forward pass.

    The reference draws its masks from numpy's global RNG; seed it for a
    reproducible grade and restore the previous state afterwards.
    """
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        _, cache = reference.forward_propagation_with_dropout(X, parameters, keep_prob)
    finally:
        np.random.set_state(state)
    return tuple(np.asarray(v) for v in cache)


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


def close(a, b):
    """True when learner array a matches b (shape checked before)."""
    return bool(np.allclose(np.asarray(a, dtype=np.float64), b, rtol=1e-5, atol=1e-8))


def is_close_value(a, b):
    return bool(np.isclose(float(a), float(b), rtol=1e-5, atol=1e-8))


# ----------------------------------------------------------------------------
# compute_cost_with_regularization (2 points)
# ----------------------------------------------------------------------------


def cost_inputs(seed, n_x, n1, n2, m):
    X, Y, parameters = random_problem(seed, n_x, n1, n2, m)
    A3 = sigmoid(seeded_rng(seed + 100).randn(1, m))
    return A3, Y, parameters


def cost_hint(got, A3, Y, parameters, lambd):
    """A targeted hint for a wrong cost, found by trying the usual slips."""
    m = Y.shape[1]
    ce = utils.compute_cost(A3, Y)
    squares = [float(np.sum(np.square(parameters["W" + str(l)]))) for l in (1, 2, 3)]
    total = sum(squares)
    return diagnose(
        got,
        [
            ("the L2 term is missing: add lambd / (2 * m) * (sum of squares of W1, W2 and W3)", ce),
            ("the L2 term uses lambd / m; it should be lambd / (2 * m)", ce + lambd / m * total),
            ("divide the L2 term by m (the number of examples, Y.shape[1])", ce + lambd / 2 * total),
            ("divide the L2 term by m (the number of examples, Y.shape[1])", ce + lambd * total),
        ]
        + [
            (
                f"the L2 term leaves out W{l}: sum the squares of W1, W2 and W3",
                ce + lambd / (2 * m) * (total - squares[l - 1]),
            )
            for l in (1, 2, 3)
        ]
        + [
            ("the cross-entropy part is missing: start from compute_cost(A3, Y)", lambd / (2 * m) * total),
        ],
        "cost = compute_cost(A3, Y) + lambd / (2 * m) * (np.sum(np.square(W1)) + np.sum(np.square(W2)) "
        "+ np.sum(np.square(W3)))",
    )


def cost_value(got, what):
    """The learner's cost as an array of shape () (a float): check_shape, so that a cost of
    shape (1, 1) (np.sum(..., keepdims=True)) costs only the shape points (grading/shapes.py)."""
    as_array(got, what, hint="return a number")
    return check_shape(got, (), what, hint="sum over all entries so the cost is a scalar (a float, shape ())")


@pytest.mark.graded("compute_cost_with_regularization", points=1, shape_points=0.25)
def test_cost_lambd_zero(learner, reference):
    """With lambd = 0 the cost equals the cross-entropy cost (several shapes)."""
    for i, shape in enumerate(PROBLEMS):
        A3, Y, parameters = cost_inputs(10 + i, *shape)
        expected = reference.compute_cost_with_regularization(A3, Y, parameters, 0.0)
        got = learner.compute_cost_with_regularization(A3, Y, parameters, 0.0)
        what = f"cost with lambd = 0 (m = {Y.shape[1]})"
        value = float(cost_value(got, what))
        if not is_close_value(value, expected):
            raise CheckFailed(f"{what} is not the cross-entropy cost", cost_hint(value, A3, Y, parameters, 0.0))


@pytest.mark.graded("compute_cost_with_regularization", points=1, shape_points=0.25)
def test_cost_l2_term(learner, reference):
    """The cost adds lambd/(2m) * (||W1||^2 + ||W2||^2 + ||W3||^2) (several lambd and shapes)."""
    for i, shape in enumerate(PROBLEMS):
        for lambd in LAMBDS:
            A3, Y, parameters = cost_inputs(20 + i, *shape)
            expected = reference.compute_cost_with_regularization(A3, Y, parameters, lambd)
            got = learner.compute_cost_with_regularization(A3, Y, parameters, lambd)
            what = f"cost with lambd = {lambd} (m = {Y.shape[1]})"
            value = float(cost_value(got, what))
            if not is_close_value(value, expected):
                raise CheckFailed(
                    f"{what} is not the expected regularized cost", cost_hint(value, A3, Y, parameters, lambd)
                )


# ----------------------------------------------------------------------------
# backward_propagation_with_regularization (3 points)
# ----------------------------------------------------------------------------

L2_GENERIC_HINTS = {
    "dZ3": "dZ3 = A3 - Y",
    "db3": "db3 = 1/m * np.sum(dZ3, axis=1, keepdims=True)",
    "dA2": "dA2 = np.dot(W3.T, dZ3)",
    "dZ2": "dZ2 = dA2 * (A2 > 0)",
    "db2": "db2 = 1/m * np.sum(dZ2, axis=1, keepdims=True)",
    "dA1": "dA1 = np.dot(W2.T, dZ2)",
    "dZ1": "dZ1 = dA1 * (A1 > 0)",
    "db1": "db1 = 1/m * np.sum(dZ1, axis=1, keepdims=True)",
}


def l2_hint(key, got, expected, plain, weights, lambd, m):
    """Hint for a wrong gradient of the L2-regularized cost."""
    if key.startswith("dW"):
        l = key[2]
        W, dW = weights["W" + l], plain[key]
        missing = [(f"{key} lacks the lambd/m * W{l} term", dW)] if lambd != 0 else []
        return diagnose(
            got,
            missing
            + [
                (
                    f"the derivative of lambd/(2m) * W{l}^2 is lambd/m * W{l}, not lambd/(2m) * W{l}",
                    dW + lambd / (2 * m) * W,
                ),
                (f"divide the regularization term by m: lambd/m * W{l}", dW + lambd * W),
                (f"the regularization term of {key} is lambd/m * W{l}, not 2 * lambd/m * W{l}", dW + 2 * lambd / m * W),
            ],
            f"{key} = 1/m * dZ{l} A{int(l) - 1}^T + lambd/m * W{l} (A0 is X)",
        )
    if key.startswith("db"):
        return f"{key} gets no regularization term: biases are not penalized"
    return L2_GENERIC_HINTS[key] + " (the L2 term only changes the dW's)"


def compare_grads(got, expected, keys, label, key_hint):
    """The returned gradient dict has every key of ``keys`` (extra keys allowed), each matching ``expected``."""
    return check_dict_close(
        got,
        expected,
        f"{label}: the returned gradients",
        GRADS_HINT,
        keys=keys,
        extra_keys=True,
        key_label=label + ": {key}",
        key_hint=key_hint,
        shape_hint=lambda key: f"{key} has the shape of {key[1:]}",
    )


def l2_case(learner, reference, seed, shape, lambd):
    X, Y, parameters = random_problem(seed, *shape)
    _, cache = utils.forward_propagation(X, parameters)
    expected = reference.backward_propagation_with_regularization(X, Y, cache, lambd)
    plain = utils.backward_propagation(X, Y, cache)
    got = learner.backward_propagation_with_regularization(X, Y, cache, lambd)
    compare_grads(
        got,
        expected,
        GRAD_ORDER,
        f"lambd = {lambd}, X of shape {X.shape}",
        lambda key, value: l2_hint(key, value, expected[key], plain, parameters, lambd, X.shape[1]),
    )


@pytest.mark.graded("backward_propagation_with_regularization", points=1, shape_points=0.25)
def test_l2_backward_lambd_zero(learner, reference):
    """With lambd = 0 the gradients are the plain backward-propagation gradients."""
    for i, shape in enumerate(PROBLEMS):
        l2_case(learner, reference, 30 + i, shape, 0.0)


@pytest.mark.graded("backward_propagation_with_regularization", points=2, shape_points=0.5)
def test_l2_backward_weight_decay(learner, reference):
    """Each dW gets + lambd/m * W; the other gradients are unchanged (several lambd and shapes)."""
    for i, shape in enumerate(PROBLEMS):
        for j, lambd in enumerate(LAMBDS):
            l2_case(learner, reference, 40 + 3 * i + j, shape, lambd)


# ----------------------------------------------------------------------------
# forward_propagation_with_dropout (3 points)
# ----------------------------------------------------------------------------


def unpack_dropout_forward(out, X, parameters, label):
    """Check the returned structure and shapes; return (A3, cache arrays)."""
    n1, n2, m = parameters["W1"].shape[0], parameters["W2"].shape[0], X.shape[1]
    A3, cache = unpack(out, "A3, cache", f"{label}: forward_propagation_with_dropout")
    check_type(cache, (tuple, list), f"{label}: cache", hint=f"cache = {DROPOUT_CACHE}")
    check(len(cache) == 14, f"{label}: cache should have 14 entries, got {len(cache)}", hint=f"cache = {DROPOUT_CACHE}")
    names = ["Z1", "D1", "A1", "W1", "b1", "Z2", "D2", "A2", "W2", "b2", "Z3", "A3", "W3", "b3"]
    shapes = [
        (n1, m),
        (n1, m),
        (n1, m),
        parameters["W1"].shape,
        parameters["b1"].shape,
        (n2, m),
        (n2, m),
        (n2, m),
        parameters["W2"].shape,
        parameters["b2"].shape,
        (1, m),
        (1, m),
        parameters["W3"].shape,
        parameters["b3"].shape,
    ]
    arrays = {}
    for name, shape, value in zip(names, shapes, cache):
        arrays[name] = check_shape(
            value,
            shape,
            f"{label}: cache entry {name}",
            hint=f"cache = {DROPOUT_CACHE}; masks have the shape of the activations",
        )
    A3 = check_shape(A3, (1, m), f"{label}: A3", hint="A3 = sigmoid(Z3) has shape (1, m)")
    for name in ["W1", "b1", "W2", "b2", "W3", "b3"]:
        check(
            close(arrays[name], parameters[name]),
            f"{label}: cache entry {name} is not parameters['{name}']",
            hint=f"cache = {DROPOUT_CACHE}",
        )
    return A3, {k: v.astype(np.float64) for k, v in arrays.items()}


def check_mask_binary(D, name, label):
    check(
        bool(np.all((D == 0) | (D == 1))),
        f"{label}: {name} should contain only 0s and 1s",
        hint=f"{name} = (np.random.rand(...) < keep_prob), as int or bool; divide A, not the mask, by keep_prob",
    )


def check_pre_activation(Z, expected, D, keep_prob, l, label):
    """The cached Z_l is the pre-activation before dropout (masks apply to A_l)."""
    if close(Z, expected):
        return
    hint = f"Z{l} = np.dot(W{l}, A{int(l) - 1}) + b{l}" if l != "1" else "Z1 = np.dot(W1, X) + b1"
    if D.shape == expected.shape and (close(Z, expected * D / keep_prob) or close(Z, expected * D)):
        hint = (
            f"the cache's Z{l} should be the pre-activation before dropout: apply the mask D{l} "
            f"to A{l} = relu(Z{l}), not to Z{l}"
        )
    check_close(Z, expected, f"{label}: Z{l}", hint=hint)


def dropout_forward_case(learner, X, parameters, keep_prob, label):
    out = learner.forward_propagation_with_dropout(X, parameters, keep_prob)
    A3, c = unpack_dropout_forward(out, X, parameters, label)
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ["W1", "b1", "W2", "b2", "W3", "b3"])

    A_prev = X
    for l, (W, b) in ((1, (W1, b1)), (2, (W2, b2))):
        Z, D, A = c[f"Z{l}"], c[f"D{l}"], c[f"A{l}"]
        expected_Z = np.dot(W, A_prev) + b
        if l == 2 and close(Z, np.dot(W, relu(c["Z1"])) + b) and not close(Z, expected_Z):
            check_close(
                Z,
                expected_Z,
                f"{label}: Z2",
                hint="Z2 must be computed from the dropped A1 (after the mask and the division by keep_prob)",
            )
        check_pre_activation(Z, expected_Z, D, keep_prob, str(l), label)
        check_mask_binary(D, f"D{l}", label)
        expected_A = relu(Z) * D / keep_prob
        if not close(A, expected_A):
            hint = diagnose(
                A,
                [
                    (f"A{l} is not relu(Z{l}) * D{l} / keep_prob: did you divide by keep_prob?", relu(Z) * D),
                    (
                        f"A{l} ignores the mask D{l} it returns: multiply A{l} by D{l}, then divide by keep_prob",
                        relu(Z),
                    ),
                    (
                        f"A{l} ignores the mask D{l} it returns: multiply A{l} by D{l}, then divide by keep_prob",
                        relu(Z) / keep_prob,
                    ),
                ],
                f"A{l} must be relu(Z{l}) * D{l} / keep_prob with the D{l} stored in the cache",
            )
            check_close(
                A,
                expected_A,
                f"{label}: A{l}, compared with relu(Z{l}) * D{l} / keep_prob from your own Z{l} and D{l},",
                hint=hint,
            )
        A_prev = A

    # output layer: no dropout
    expected_Z3 = np.dot(W3, c["A2"]) + b3
    if not close(c["Z3"], expected_Z3):
        hint = "Z3 = np.dot(W3, A2) + b3 with the dropped A2"
        if close(c["Z3"], np.dot(W3, relu(c["Z2"])) + b3):
            hint = "Z3 must be computed from the dropped A2 (after the mask and the division by keep_prob)"
        check_close(c["Z3"], expected_Z3, f"{label}: Z3", hint=hint)
    check_close(
        c["A3"], sigmoid(c["Z3"]), f"{label}: cache entry A3", hint="A3 = sigmoid(Z3); the output layer has no dropout"
    )
    check_close(
        A3,
        c["A3"],
        f"{label}: the returned A3 differs from the A3 in the cache",
        hint="return the same A3 you store in the cache",
    )
    return c


@pytest.mark.graded("forward_propagation_with_dropout", points=2, shape_points=0.5)
def test_dropout_forward_consistent_with_masks(learner, reference):
    """Activations follow from the returned masks: A1 = relu(Z1) * D1 / keep_prob, Z2 from the dropped A1, ..."""
    cases = [((2, 20, 3, 13), 0.86), ((3, 5, 4, 30), 0.5), ((4, 9, 6, 40), 0.7), ((2, 20, 3, 9), 1.0)]
    for i, (shape, keep_prob) in enumerate(cases):
        X, _, parameters = random_problem(50 + i, *shape)
        learner.seed(500 + i)
        dropout_forward_case(learner, X, parameters, keep_prob, f"keep_prob = {keep_prob}, X of shape {X.shape}")


RESEED_HINT = (
    "the function returns the same mask every time it is called, so training would drop the same units at every "
    "iteration (the notebook draws a new mask each time). This happens when the function seeds the generator "
    "itself, e.g. np.random.seed(1) or np.random.default_rng(1) inside forward_propagation_with_dropout, as the "
    "course's original templates did to make one printed example reproducible: remove that line from the "
    "function (seed once outside it, if at all). A mask computed from the positions instead of random draws "
    "does the same"
)


def check_masks_random(D, D_again, name, label):
    """Mask ``name`` of one call (D) and of the next call on the same inputs (D_again) look like independent
    Bernoulli draws: different between calls, and no entry predicts its neighbour or its value in the other call.
    For N independent pairs a sample correlation has standard error 1 / sqrt(N); the bound is 10 of them."""
    check(not np.array_equal(D, D_again), f"{label}: two calls in a row return the same mask {name}", RESEED_HINT)
    pairs = {
        "of the next example": (D[:, :-1], D[:, 1:]),
        "of the next unit": (D[:-1, :], D[1:, :]),
        "at the same place in the next call": (D, D_again),
    }
    for where, (a, b) in pairs.items():
        corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) if a.std() > 0 and b.std() > 0 else 1.0
        check(
            abs(corr) < 10 / np.sqrt(a.size),
            f"{label}: {name} is not random: each entry predicts the entry {where} (correlation {corr:.2f})",
            f"draw every entry independently, anew at each call: {name} = np.random.rand(*A.shape) < keep_prob "
            "(no pattern built from the position of the entry, no generator reseeded inside the function)",
        )


def check_layers_independent(D1, D2, label):
    """The masks of the two layers are independent draws: D2 does not repeat D1 where they overlap
    (the first n_2 units). Standard error of the correlation 1 / sqrt(N); the bound is 10 of them."""
    k = min(D1.shape[0], D2.shape[0])
    a, b = D1[:k].ravel(), D2[:k].ravel()
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 1.0
    check(
        abs(corr) < 10 / np.sqrt(a.size),
        f"{label}: the mask D2 repeats the mask D1 (correlation {corr:.2f} between their first {k} units)",
        "draw a new mask for each layer, D2 = np.random.rand(A2.shape[0], A2.shape[1]) < keep_prob, "
        "independent of D1 (do not reuse D1 or reseed the generator between the layers)",
    )


@pytest.mark.graded("forward_propagation_with_dropout", points=1, shape_points=0.25)
def test_dropout_forward_mask_statistics(learner, reference):
    """On large layers the masks keep a fraction keep_prob of the units, drawn anew per unit, example, call and layer."""
    for i, keep_prob in enumerate([0.8, 0.5]):
        X, _, parameters = random_problem(60 + i, 5, 120, 100, 200)
        learner.seed(600 + i)
        out = learner.forward_propagation_with_dropout(X, parameters, keep_prob)
        label = f"keep_prob = {keep_prob}, X of shape {X.shape}"
        _, c = unpack_dropout_forward(out, X, parameters, label)
        # The next call, without reseeding in between, as in a training loop.
        _, again = unpack_dropout_forward(
            learner.forward_propagation_with_dropout(X, parameters, keep_prob), X, parameters, label + " (called again)"
        )
        for name in ["D1", "D2"]:
            D = c[name]
            check_mask_binary(D, name, label)
            # the mean of >= 20000 Bernoulli(keep_prob) draws has a standard
            # deviation of at most 0.0036; 0.025 is 7 of them. (Smaller
            # layers than a real network: every entry crosses the sandbox.)
            kept = float(D.mean())
            check(
                abs(kept - keep_prob) < 0.025,
                f"{label}: {name} keeps a fraction {kept:.3f} of the units instead of keep_prob",
                hint=f"keep a unit with probability keep_prob: {name} = np.random.rand(...) < keep_prob",
            )
            check(
                bool(np.any(D != D[:, :1])),
                f"{label}: {name} is the same for every example",
                hint=f"draw {name} with the full shape of the activations (n_l, m)",
            )
            check(
                bool(np.any(D != D[:1, :])),
                f"{label}: {name} is the same for every unit",
                hint=f"draw {name} with the full shape of the activations (n_l, m)",
            )
            check_masks_random(D, again[name], name, label)
        check_layers_independent(c["D1"], c["D2"], label)
    X, _, parameters = random_problem(62, 5, 30, 20, 50)
    learner.seed(602)
    out = learner.forward_propagation_with_dropout(X, parameters, 1.0)
    _, c = unpack_dropout_forward(out, X, parameters, "keep_prob = 1.0")
    for name in ["D1", "D2"]:
        check(
            bool(np.all(c[name] == 1)),
            f"keep_prob = 1.0: {name} drops some units",
            hint="with keep_prob = 1 every unit is kept",
        )


# ----------------------------------------------------------------------------
# backward_propagation_with_dropout (3 points)
# ----------------------------------------------------------------------------

DROPOUT_GENERIC_HINTS = {
    "dZ3": "dZ3 = A3 - Y",
    "dW3": "dW3 = 1/m * np.dot(dZ3, A2.T) with the dropped A2 from the cache",
    "db3": "db3 = 1/m * np.sum(dZ3, axis=1, keepdims=True)",
    "dZ2": "dZ2 = dA2 * (A2 > 0), with dA2 already masked by D2 and divided by keep_prob",
    "dW2": "dW2 = 1/m * np.dot(dZ2, A1.T)",
    "db2": "db2 = 1/m * np.sum(dZ2, axis=1, keepdims=True)",
    "dZ1": "dZ1 = dA1 * (A1 > 0), with dA1 already masked by D1 and divided by keep_prob",
    "dW1": "dW1 = 1/m * np.dot(dZ1, X.T)",
    "db1": "db1 = 1/m * np.sum(dZ1, axis=1, keepdims=True)",
}


def dA_hint(name, got, upstream, D, keep_prob):
    """Hint for a wrong dA_l given upstream = W_{l+1}^T dZ_{l+1} (computed from correct values)."""
    l = name[2]
    scaled = (
        [
            (f"{name} must be multiplied by the same mask D{l} and divided by keep_prob", upstream / keep_prob),
            (f"{name} is masked by D{l} but not divided by keep_prob", upstream * D),
        ]
        if keep_prob != 1
        else []
    )
    return diagnose(
        got,
        scaled
        + [
            (
                f"{name} keeps the dropped units: multiply by D{l} itself (1 = kept), not 1 - D{l}",
                upstream * (1 - D) / keep_prob,
            ),
        ],
        f"{name} = np.dot(W{int(l) + 1}.T, dZ{int(l) + 1}) * D{l} / keep_prob, with the mask D{l} "
        f"from the cache (do not draw a new one)",
    )


def compare_dropout_backward(got, expected, cache, keep_prob, keys, label):
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    # Upstream gradients from the correct dZ of the layer above. dA_l is defined
    # as the gradient for relu(Z_l) before dropout (masked, divided by
    # keep_prob). Storing instead the gradient for the dropped A_l (W^T dZ, the
    # mask applied later in dZ_l) is the same math, so it is accepted too.
    upstream = {"dA2": np.dot(W3.T, expected["dZ3"]), "dA1": np.dot(W2.T, expected["dZ2"])}
    masks = {"dA2": np.asarray(D2, dtype=np.float64), "dA1": np.asarray(D1, dtype=np.float64)}
    accepted = dict(expected)
    for key in upstream:
        if isinstance(got, dict) and same_values(got.get(key), upstream[key]):
            accepted[key] = upstream[key]

    def hint(key, value):
        if key in upstream:
            return dA_hint(key, value, upstream[key], masks[key], keep_prob)
        return DROPOUT_GENERIC_HINTS[key]

    compare_grads(got, accepted, keys, label, hint)


DROPOUT_BACKWARD_CASES = [((2, 20, 3, 13), 0.86), ((3, 5, 4, 30), 0.5), ((4, 9, 6, 40), 0.7), ((2, 20, 3, 9), 1.0)]


def dropout_backward_cases(reference):
    for i, (shape, keep_prob) in enumerate(DROPOUT_BACKWARD_CASES):
        X, Y, parameters = random_problem(70 + i, *shape)
        cache = reference_dropout_cache(reference, X, parameters, keep_prob, seed=700 + i)
        if i == 1:
            # masks may arrive as floats as well as ints
            cache = tuple(v.astype(np.float64) if k in (1, 6) else v for k, v in enumerate(cache))
        yield X, Y, cache, keep_prob, f"keep_prob = {keep_prob}, X of shape {X.shape}"


@pytest.mark.graded("backward_propagation_with_dropout", points=1, shape_points=0.25)
def test_dropout_backward_output_layer(learner, reference):
    """dZ3, dW3 and db3 match the reference on consistent dropout caches."""
    for X, Y, cache, keep_prob, label in dropout_backward_cases(reference):
        expected = reference.backward_propagation_with_dropout(X, Y, cache, keep_prob)
        got = learner.backward_propagation_with_dropout(X, Y, cache, keep_prob)
        compare_dropout_backward(got, expected, cache, keep_prob, ["dZ3", "dW3", "db3"], label)


@pytest.mark.graded("backward_propagation_with_dropout", points=2, shape_points=0.5)
def test_dropout_backward_hidden_layers(learner, reference):
    """dA2 .. db1 use the cached masks D2, D1 and the division by keep_prob (reference on consistent caches)."""
    keys = ["dA2", "dZ2", "dW2", "db2", "dA1", "dZ1", "dW1", "db1"]
    for X, Y, cache, keep_prob, label in dropout_backward_cases(reference):
        expected = reference.backward_propagation_with_dropout(X, Y, cache, keep_prob)
        got = learner.backward_propagation_with_dropout(X, Y, cache, keep_prob)
        compare_dropout_backward(got, expected, cache, keep_prob, keys, label)
