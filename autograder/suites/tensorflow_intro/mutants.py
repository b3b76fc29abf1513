"""Planted bugs of the TensorFlow introduction, and other correct answers (format: autograder/course/mutants.py).

Grading a TensorFlow submission takes several seconds, so the bugs share three
notebooks (ROUNDS), each with bugs in different functions and some functions
without a bug: every bug must cost its own function exactly the checks named
in ``fails``, with the feedback naming the mistake, and every function without
a bug in that notebook keeps full marks.
"""

from autograder.course.bindings import FORMS, bound_source
from autograder.course.mutants import Alternative, Mutant

MUTANTS = [
    Mutant(
        "linear_draws_W_first",
        "linear_function",
        (
            """    X = tf.constant(np.random.randn(3, 1), name="X")
    W = tf.constant(np.random.randn(4, 3), name="W")""",
            """    W = tf.constant(np.random.randn(4, 3), name="W")
    X = tf.constant(np.random.randn(3, 1), name="X")""",
        ),
        fails=["equals WX + b"],
        feedback=["differs from the expected values"],
    ),
    Mutant(
        "one_hot_wrong_axis",
        "one_hot_matrix",
        ("tf.one_hot(label, C, axis=0)", "tf.one_hot(label, C)"),
        fails=["(C, m) matrix"],
        feedback=["axis=0"],
    ),
    Mutant(
        "forward_missing_relu",
        "forward_propagation",
        ("A2 = tf.keras.activations.relu(Z2)", "A2 = Z2"),
        fails=["logits match", "GradientTape over forward_propagation"],
        feedback=["a ReLU is missing"],
    ),
    Mutant(
        "model_never_applies_gradients",
        "model",
        (
            """        optimizer.apply_gradients(zip(grads, trainable_variables))
""",
            "",
        ),
        fails=["one Adam step", "lower the cost"],
        feedback=["the optimizer never updated them"],
    ),
    Mutant(
        "sigmoid_no_cast",
        "sigmoid",
        (
            """    z = tf.cast(z, tf.float32)
""",
            "",
        ),
        fails=["float32 EagerTensor"],
        feedback=["float32"],
    ),
    Mutant(
        "init_returns_tensors",
        "initialize_parameters",
        (
            "    ### END SOLUTION",
            """    W1, b1, W2, b2, W3, b3 = (tf.convert_to_tensor(v) for v in (W1, b1, W2, b2, W3, b3))
    ### END SOLUTION""",
        ),
        fails=["six trainable float32 tf.Variable"],
        feedback=["got a EagerTensor"],
    ),
    Mutant(
        "loss_mean",
        "compute_total_loss",
        ("tf.reduce_sum(losses)", "tf.reduce_mean(losses)"),
        fails=["total cross-entropy", "softmax(logits) - labels"],
        feedback=["the mean of the per-example losses"],
    ),
    Mutant(
        "model_adds_gradients",
        "model",
        (
            "optimizer.apply_gradients(zip(grads, trainable_variables))",
            "optimizer.apply_gradients(zip([-g for g in grads], trainable_variables))",
        ),
        fails=["one Adam step", "lower the cost"],
        feedback=["wrong sign"],
    ),
    Mutant(
        "forward_through_numpy",
        "forward_propagation",
        (
            "    ### END SOLUTION",
            """    Z3 = tf.constant(Z3.numpy())
    ### END SOLUTION""",
        ),
        fails=["GradientTape over forward_propagation"],
        feedback=["is None"],
    ),
    Mutant(
        "loss_rows_as_examples",
        "compute_total_loss",
        ("tf.transpose(labels), tf.transpose(logits)", "labels, logits"),
        fails=["total cross-entropy", "softmax(logits) - labels"],
        feedback=["treats the rows as examples"],
    ),
]

MUTANTS += [
    # Found by the learner study (issue 13): the suite before it gave these full marks
    # (the last two it failed, but with a hint that misled).
    Mutant(
        "init_not_trainable",
        "initialize_parameters",
        (
            "W1 = tf.Variable(initializer(shape=(25, 64)))",
            "W1 = tf.Variable(initializer(shape=(25, 64)), trainable=False)",
        ),
        fails=["six trainable float32 tf.Variable"],
        feedback=["W1 is not trainable"],
    ),
    # The public test rejects a loss of shape (1,): the hidden suite must too.
    Mutant(
        "loss_of_shape_1",
        "compute_total_loss",
        ("total_loss = tf.reduce_sum(losses)", "total_loss = tf.reshape(tf.reduce_sum(losses), (1,))"),
        # Right values in a (1,) tensor: only the shape check's 0.5 of the 2 points (grading/shapes.py).
        fails=["Shapes as specified"],
        feedback=["values right; shape (1,), expected ()"],
    ),
    # Right eagerly, broken where the notebook maps it over tf.data.
    Mutant(
        "one_hot_with_numpy",
        "one_hot_matrix",
        (
            "one_hot = tf.one_hot(label, C, axis=0)",
            "one_hot = tf.constant(np.eye(C, dtype=np.float32)[np.asarray(label)].T)",
        ),
        fails=["scalar label"],
        feedback=["mapped over a tf.data.Dataset"],
    ),
    Mutant(
        "model_accuracy_after_the_update",
        "model",
        (
            "        optimizer.apply_gradients(zip(grads, trainable_variables))\n",
            "        optimizer.apply_gradients(zip(grads, trainable_variables))\n"
            "        Z3 = forward_propagation(tf.transpose(minibatch_X), parameters)\n",
        ),
        fails=["logits before each update"],
        feedback=["it is the accuracy after the update"],
    ),
    # The course's original template reshaped unconditionally: the hint said "pass axis=0", which it does.
    Mutant(
        "one_hot_reshaped_to_a_vector",
        "one_hot_matrix",
        ("one_hot = tf.one_hot(label, C, axis=0)", "one_hot = tf.reshape(tf.one_hot(label, C, axis=0), (-1,))"),
        fails=["(C, m) matrix"],
        feedback=["do not reshape"],
    ),
    # Told "training does not reduce it" when the cost went down, only too slowly.
    Mutant(
        "model_ignores_the_learning_rate",
        "model",
        ("optimizer = tf.keras.optimizers.Adam(learning_rate)", "optimizer = tf.keras.optimizers.Adam()"),
        fails=["one Adam step", "lower the cost"],
        feedback=["Keras's default", "too slowly"],
    ),
    # One bias never trained: 10 of the 2067 parameters, under the 2% of the overall agreement.
    Mutant(
        "model_never_trains_b3",
        "model",
        [
            (
                "grads = tape.gradient(minibatch_total_loss, trainable_variables)",
                "grads = tape.gradient(minibatch_total_loss, trainable_variables[:5])",
            ),
            (
                "optimizer.apply_gradients(zip(grads, trainable_variables))",
                "optimizer.apply_gradients(zip(grads, trainable_variables[:5]))",
            ),
        ],
        fails=["on every parameter"],
        feedback=["b3 is its initial value"],
    ),
    # Biases started at zeros (the spec: every parameter, biases included, from the initializer).
    Mutant(
        "init_zero_biases",
        "initialize_parameters",
        ("b1 = tf.Variable(initializer(shape=(25, 1)))", "b1 = tf.Variable(tf.zeros((25, 1)))"),
        fails=["Glorot-normal initializer's values"],
    ),
    # Probabilities instead of logits (the spec: no softmax).
    Mutant(
        "forward_applies_softmax",
        "forward_propagation",
        (
            "Z3 = tf.math.add(tf.linalg.matmul(W3, A2), b3)",
            "Z3 = tf.nn.softmax(tf.math.add(tf.linalg.matmul(W3, A2), b3), axis=0)",
        ),
        fails=["logits match", "right gradient for every parameter"],
    ),
    # Applies the gradients once per epoch (the last mini-batch's) instead of at every step: with one
    # mini-batch per epoch that is one right Adam step; over ten epochs the cost falls, but too slowly.
    Mutant(
        "model_applies_gradients_once_per_epoch",
        "model",
        [
            ("        optimizer.apply_gradients(zip(grads, trainable_variables))\n", ""),
            ("        return Z3, minibatch_total_loss\n", "        return Z3, minibatch_total_loss, grads\n"),
            (
                "            Z3, minibatch_total_loss = train_step(minibatch_X, minibatch_Y)\n",
                "            Z3, minibatch_total_loss, grads = train_step(minibatch_X, minibatch_Y)\n",
            ),
            (
                "        # Sum of the mini-batch totals divided by m",
                "        optimizer.apply_gradients(zip(grads, trainable_variables))\n"
                "        # Sum of the mini-batch totals divided by m",
            ),
        ],
        fails=["lower the cost"],
        feedback=["too slowly", "once at every mini-batch step"],
    ),
]

# A model that binds initialize_parameters, forward_propagation and compute_total_loss when its
# cell runs (an alias at the top of the cell, a default argument, a closure, a class attribute)
# still trains with the suite's trusted parts (grading/stand_ins.py, probes.call_with_stand_ins):
# the forward bug costs only forward_propagation, never the model beside it.
MUTANTS += [
    Mutant(
        f"forward_missing_relu_model_binds_it_by_{form}",
        "forward_propagation",
        ("A2 = tf.keras.activations.relu(Z2)", "A2 = Z2"),
        fails=["logits match", "GradientTape over forward_propagation"],
        feedback=["a ReLU is missing"],
        beside={
            "model": bound_source(
                "tensorflow_intro",
                "model",
                ["initialize_parameters", "forward_propagation", "compute_total_loss"],
                form,
            )
        },
    )
    for form in FORMS
]

ROUNDS = [
    ["linear_draws_W_first", "one_hot_wrong_axis", "forward_missing_relu", "model_never_applies_gradients"],
    ["sigmoid_no_cast", "init_returns_tensors", "loss_mean", "model_adds_gradients"],
    ["forward_through_numpy", "loss_rows_as_examples"],
]

ALTERNATIVES = [
    # Every graded cell replaced by another correct implementation, in one notebook.
    Alternative(
        "other_correct_answers",
        {
            "linear_function": """
# GRADED FUNCTION: linear_function

def linear_function():
    np.random.seed(1)
    X = tf.cast(tf.constant(np.random.randn(3, 1)), tf.float32)
    W = tf.cast(tf.constant(np.random.randn(4, 3)), tf.float32)
    b = tf.cast(tf.constant(np.random.randn(4, 1)), tf.float32)
    return W @ X + b
""",
            "sigmoid": """
# GRADED FUNCTION: sigmoid

def sigmoid(z):
    z = tf.convert_to_tensor(z)
    return 1.0 / (1.0 + tf.exp(-tf.cast(z, tf.float32)))
""",
            "one_hot_matrix": """
# GRADED FUNCTION: one_hot_matrix

def one_hot_matrix(label, C=10):
    return tf.transpose(tf.one_hot(label, depth=C, dtype=tf.float32))
""",
            "initialize_parameters": """
# GRADED FUNCTION: initialize_parameters

def initialize_parameters():
    initializer = tf.keras.initializers.GlorotNormal(seed=1)
    sizes = [64, 25, 12, 10]
    parameters = {}
    for l in range(1, 4):
        parameters["W" + str(l)] = tf.Variable(initializer(shape=(sizes[l], sizes[l - 1])), name="W" + str(l))
        parameters["b" + str(l)] = tf.Variable(initializer(shape=(sizes[l], 1)), name="b" + str(l))
    return parameters
""",
            "forward_propagation": """
# GRADED FUNCTION: forward_propagation

def forward_propagation(X, parameters):
    A = X
    for l in range(1, 4):
        Z = parameters["W" + str(l)] @ A + parameters["b" + str(l)]
        A = tf.nn.relu(Z) if l < 3 else Z
    return A
""",
            "compute_total_loss": """
# GRADED FUNCTION: compute_total_loss

def compute_total_loss(logits, labels):
    per_example = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=0)
    return tf.reduce_sum(per_example)
""",
            "model": (
                """        with tf.GradientTape() as tape:
            Z3 = forward_propagation(tf.transpose(minibatch_X), parameters)
            minibatch_total_loss = compute_total_loss(Z3, tf.transpose(minibatch_Y))
        grads = tape.gradient(minibatch_total_loss, trainable_variables)
        optimizer.apply_gradients(zip(grads, trainable_variables))""",
                """        X_columns = tf.transpose(minibatch_X)
        Y_columns = tf.transpose(minibatch_Y)
        with tf.GradientTape() as tape:
            tape.watch(trainable_variables)
            Z3 = forward_propagation(X_columns, parameters)
            minibatch_total_loss = compute_total_loss(Z3, Y_columns)
        gradients = tape.gradient(minibatch_total_loss, [W1, b1, W2, b2, W3, b3])
        optimizer.apply(gradients, [W1, b1, W2, b2, W3, b3])""",
            ),
        },
    ),
]
