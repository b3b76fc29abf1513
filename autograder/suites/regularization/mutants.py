"""Planted bugs of the Regularization assignment, and other correct answers (format: autograder/course/mutants.py).

Each bug is an edit of the solution's own cell, so it follows the notebook.
"""

from autograder.course.mutants import Alternative, Mutant

COST = "compute_cost_with_regularization"
L2_BACKWARD = "backward_propagation_with_regularization"
FORWARD = "forward_propagation_with_dropout"
BACKWARD = "backward_propagation_with_dropout"


def mask_lines(l, draw):
    """The three inverted-dropout lines of layer ``l`` with mask expression ``draw``."""
    return f"""    D{l} = {draw}
    A{l} = A{l} * D{l}
    A{l} = A{l} / keep_prob
"""


SOLUTION_FORWARD_LAYER1 = """    D1 = np.random.rand(A1.shape[0], A1.shape[1])  # step 1: uniform numbers in [0, 1)
    D1 = (D1 < keep_prob).astype(int)               # step 2: 1 with probability keep_prob
    A1 = A1 * D1                                    # step 3: shut down the dropped units
    A1 = A1 / keep_prob                             # step 4: keep the expected value of A1
"""
SOLUTION_FORWARD_LAYER2 = """    D2 = np.random.rand(A2.shape[0], A2.shape[1])
    D2 = (D2 < keep_prob).astype(int)
    A2 = A2 * D2
    A2 = A2 / keep_prob
"""

MUTANTS = [
    # L2 backward: dW2 without its weight-decay term (dW1, dW3 right).
    Mutant(
        "l2_dW2_missing_term",
        L2_BACKWARD,
        ("dW2 = 1. / m * np.dot(dZ2, A1.T) + lambd / m * W2", "dW2 = 1. / m * np.dot(dZ2, A1.T)"),
        feedback=["dW2 lacks the lambd/m * W2 term"],
    ),
    # L2 cost: lambd / m instead of lambd / (2 m).
    Mutant("cost_lambd_over_m", COST, ("lambd / (2 * m)", "lambd / m"), feedback=["uses lambd / m"]),
    # Dropout forward: masks applied but no division by keep_prob.
    Mutant(
        "dropout_forgets_keep_prob",
        FORWARD,
        [("    A1 = A1 / keep_prob ", "    A1 = A1 "), ("    A2 = A2 / keep_prob\n", "    A2 = A2\n")],
        feedback=["did you divide by keep_prob?"],
    ),
    # Dropout forward: the mask applied to Z (and the dropped Z stored in the cache).
    Mutant(
        "dropout_mask_on_Z",
        FORWARD,
        [
            ("    A1 = relu(Z1)\n", ""),
            (
                SOLUTION_FORWARD_LAYER1,
                "    D1 = (np.random.rand(*Z1.shape) < keep_prob).astype(int)\n"
                "    Z1 = Z1 * D1 / keep_prob\n    A1 = relu(Z1)\n",
            ),
            ("    A2 = relu(Z2)\n", ""),
            (
                SOLUTION_FORWARD_LAYER2,
                "    D2 = (np.random.rand(*Z2.shape) < keep_prob).astype(int)\n"
                "    Z2 = Z2 * D2 / keep_prob\n    A2 = relu(Z2)\n",
            ),
        ],
        feedback=["apply the mask D1 to A1 = relu(Z1), not to Z1"],
    ),
    # L2 cost without W3.
    Mutant(
        "cost_forgets_W3",
        COST,
        ("\n                                                + np.sum(np.square(W3))", ""),
        feedback=["leaves out W3"],
    ),
    # L2 backward: the biases penalized too.
    Mutant(
        "l2_db_regularized",
        L2_BACKWARD,
        (
            "db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)",
            "db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True) + lambd / m * b2",
        ),
        feedback=["biases are not penalized"],
    ),
    # Dropout forward: one mask column shared by every example.
    Mutant(
        "dropout_same_mask_for_every_example",
        FORWARD,
        [
            ("D1 = np.random.rand(A1.shape[0], A1.shape[1])", "D1 = np.random.rand(A1.shape[0], 1)"),
            ("D2 = np.random.rand(A2.shape[0], A2.shape[1])", "D2 = np.random.rand(A2.shape[0], 1)"),
        ],
        feedback=["masks have the shape of the activations"],
    ),
    # Dropout forward: the second layer reuses the first layer's mask (the spec: independent masks).
    Mutant(
        "dropout_second_layer_reuses_the_first_mask",
        FORWARD,
        (SOLUTION_FORWARD_LAYER2, mask_lines(2, "D1[: A2.shape[0], :]")),
        fails=["call and layer"],
    ),
    # Dropout forward: dropout on the input layer too (the spec: the two hidden layers only).
    Mutant(
        "dropout_on_the_input",
        FORWARD,
        (
            "    Z1 = np.dot(W1, X) + b1\n",
            "    X = X * (np.random.rand(*X.shape) < keep_prob) / keep_prob\n    Z1 = np.dot(W1, X) + b1\n",
        ),
    ),
    # L2 cost: the biases penalized too (the spec: only the weights).
    Mutant(
        "cost_penalizes_biases",
        COST,
        (
            "+ np.sum(np.square(W3)))",
            "+ np.sum(np.square(W3))\n"
            "                                                + sum(np.sum(np.square(parameters['b%d' % l])) for l in (1, 2, 3)))",
        ),
    ),
    # Dropout backward: new masks drawn instead of the cached ones.
    Mutant(
        "dropout_backward_draws_new_masks",
        BACKWARD,
        [
            ("    dA2 = dA2 * D2 ", "    dA2 = dA2 * (np.random.rand(*dA2.shape) < keep_prob) "),
            ("    dA1 = dA1 * D1\n", "    dA1 = dA1 * (np.random.rand(*dA1.shape) < keep_prob)\n"),
        ],
        feedback=["from the cache (do not draw a new one)"],
    ),
    # Dropout backward: masks applied, no division by keep_prob.
    Mutant(
        "dropout_backward_forgets_keep_prob",
        BACKWARD,
        [
            ("    dA2 = dA2 / keep_prob   # the same scaling as in the forward pass\n", ""),
            ("    dA1 = dA1 / keep_prob\n", ""),
        ],
        feedback=["masked by D2 but not divided by keep_prob"],
    ),
]

MUTANTS += [
    # Found by the learner study (issue 13); the suite before it gave these full marks.
    # The course's original template: the generator reseeded inside the function, the same masks every call.
    Mutant(
        "dropout_reseeds_inside",
        FORWARD,
        (
            "    D1 = np.random.rand(A1.shape[0], A1.shape[1])",
            "    np.random.seed(1)\n    D1 = np.random.rand(A1.shape[0], A1.shape[1])",
        ),
        feedback=["remove that line"],
    ),
    # A fixed pattern with the right keep fraction (a low-discrepancy sequence over the positions).
    Mutant(
        "dropout_fixed_pattern",
        FORWARD,
        [
            (
                "D1 = np.random.rand(A1.shape[0], A1.shape[1])",
                "D1 = np.arange(A1.size).reshape(A1.shape) * 0.618034 % 1",
            ),
            (
                "D2 = np.random.rand(A2.shape[0], A2.shape[1])",
                "D2 = np.arange(A2.size).reshape(A2.shape) * 0.618034 % 1",
            ),
        ],
        feedback=["return the same mask D1", "computed from the positions"],
    ),
    # The same pattern shifted at random at each call: new masks, but each entry predicts its neighbours.
    Mutant(
        "dropout_shifted_pattern",
        FORWARD,
        [
            (
                "D1 = np.random.rand(A1.shape[0], A1.shape[1])",
                "D1 = (np.arange(A1.size).reshape(A1.shape) * 0.618034 + np.random.rand()) % 1",
            ),
            (
                "D2 = np.random.rand(A2.shape[0], A2.shape[1])",
                "D2 = (np.arange(A2.size).reshape(A2.shape) * 0.618034 + np.random.rand()) % 1",
            ),
        ],
        feedback=["predicts the entry of the next example"],
    ),
]

# Shape slips (grading/shapes.py): the right values whose shape differs from the notebook's only by
# size-1 axes lose only the points of the shape checks, never those of the values.
MUTANTS += [
    # Sums with keepdims=True: the L2 term, and so the cost, of shape (1, 1) where the notebook says a float.
    Mutant(
        "cost_keepdims_sums",
        COST,
        [
            ("np.sum(np.square(W1))", "np.sum(np.square(W1), keepdims=True)"),
            ("np.sum(np.square(W2))", "np.sum(np.square(W2), keepdims=True)"),
            ("np.sum(np.square(W3))", "np.sum(np.square(W3), keepdims=True)"),
        ],
        fails=["Shapes as specified"],
        feedback=["values right; shape (1, 1), expected ()"],
    ),
    # The bias gradients without keepdims: db_l of shape (n_l,) where b_l is (n_l, 1).
    Mutant(
        "l2_db_without_keepdims",
        L2_BACKWARD,
        [
            ("np.sum(dZ3, axis=1, keepdims=True)", "np.sum(dZ3, axis=1)"),
            ("np.sum(dZ2, axis=1, keepdims=True)", "np.sum(dZ2, axis=1)"),
            ("np.sum(dZ1, axis=1, keepdims=True)", "np.sum(dZ1, axis=1)"),
        ],
        fails=["Shapes as specified"],
        feedback=["values right; shape (1,), expected (1, 1)"],
    ),
]

ALTERNATIVES = [
    # The brief's alternative: rand > 1 - keep_prob, boolean masks; L2 written other ways.
    Alternative(
        "rand_gt_1_minus_keep_prob",
        {
            FORWARD: [
                (SOLUTION_FORWARD_LAYER1, mask_lines(1, "np.random.rand(*A1.shape) > 1 - keep_prob")),
                (SOLUTION_FORWARD_LAYER2, mask_lines(2, "np.random.rand(*A2.shape) > 1 - keep_prob")),
            ],
            COST: """
def compute_cost_with_regularization(A3, Y, parameters, lambd):
    m = Y.shape[1]
    squares = sum(np.linalg.norm(parameters["W%d" % l]) ** 2 for l in (1, 2, 3))
    return float(compute_cost(A3, Y) + lambd * squares / (2 * m))
""",
            L2_BACKWARD: """
def backward_propagation_with_regularization(X, Y, cache, lambd):
    # the provided gradients, plus weight decay on the weights only
    grads = backward_propagation(X, Y, cache)
    W = {1: cache[2], 2: cache[6], 3: cache[10]}
    for l in (1, 2, 3):
        grads["dW%d" % l] = grads["dW%d" % l] + lambd * W[l] / X.shape[1]
    return grads
""",
        },
    ),
    # Float masks from another generator, the mask applied to relu's input
    # with the raw Z kept in the cache, and the mask applied to dZ in the
    # backward pass (dA returned unmasked): all the same math.
    Alternative(
        "float_masks_mask_before_relu_mask_on_dZ",
        {
            FORWARD: """
def forward_propagation_with_dropout(X, parameters, keep_prob=0.5):
    rng = np.random.default_rng()
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = W1 @ X + b1
    D1 = rng.binomial(1, keep_prob, size=Z1.shape).astype(np.float32)
    A1 = relu(Z1 * D1) / keep_prob
    Z2 = W2 @ A1 + b2
    D2 = rng.binomial(1, keep_prob, size=Z2.shape).astype(np.float32)
    A2 = relu(Z2 * D2) / keep_prob
    Z3 = W3 @ A2 + b3
    A3 = sigmoid(Z3)
    return A3, [Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3]
""",
            BACKWARD: """
def backward_propagation_with_dropout(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dA2 = W3.T @ dZ3
    dZ2 = dA2 * (Z2 > 0) * D2 / keep_prob
    dA1 = W2.T @ dZ2
    dZ1 = dA1 * (Z1 > 0) * D1 / keep_prob
    return {"dZ3": dZ3, "dW3": dZ3 @ A2.T / m, "db3": dZ3.sum(axis=1, keepdims=True) / m,
            "dA2": dA2, "dZ2": dZ2, "dW2": dZ2 @ A1.T / m, "db2": dZ2.sum(axis=1, keepdims=True) / m,
            "dA1": dA1, "dZ1": dZ1, "dW1": dZ1 @ X.T / m, "db1": dZ1.sum(axis=1, keepdims=True) / m}
""",
        },
    ),
]
