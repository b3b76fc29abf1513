"""Planted bugs of the Optimization assignment (format: autograder/course/mutants.py).

Each bug is a string replacement on the solution's own cell, so it follows the
notebook; ``fails`` lists fragments of the names of exactly the checks it must
fail. The first five (one in each of five functions, the issue's examples)
share the first notebook.
"""

from autograder.course.mutants import Mutant

MUTANTS = [
    Mutant(
        "X and Y shuffled with different permutations",
        "random_mini_batches",
        ("shuffled_Y = Y[:, permutation]", "shuffled_Y = Y[:, list(np.random.permutation(m))]"),
        fails=["stays with its example"],
    ),
    Mutant(
        "bias correction with beta1**(t + 1)",
        "update_parameters_with_adam",
        ("1 - beta1 ** t", "1 - beta1 ** (t + 1)"),
        fails=["divide by 1 - beta**t", "returned parameters", "uses the arguments"],
    ),
    Mutant(
        "no floor",
        "schedule_lr_decay",
        ("math.floor(epoch_num / time_interval)", "(epoch_num / time_interval)"),
        fails=["only every 1000 epochs", "time_interval argument"],
    ),
    Mutant(
        "CS231n velocity without (1 - beta)",
        "update_parameters_with_momentum",
        [('(1 - beta) * grads["dW"', 'grads["dW"'), ('(1 - beta) * grads["db"', 'grads["db"')],
        fails=["returned v", "returned parameters"],
    ),
    Mutant(
        "s shares v's arrays",
        "initialize_adam",
        [
            ('s["dW" + str(l)] = np.zeros(parameters["W" + str(l)].shape)', 's["dW" + str(l)] = v["dW" + str(l)]'),
            ('s["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)', 's["db" + str(l)] = v["db" + str(l)]'),
        ],
        fails=["separate arrays"],
    ),
    Mutant(
        "gradient ascent",
        "update_parameters_with_gd",
        ('- learning_rate * grads["dW"', '+ learning_rate * grads["dW"'),
        fails=["matches the reference", "uses the learning_rate"],
    ),
    Mutant(
        "updates in place, returns None",
        "update_parameters_with_gd",
        ("    return parameters", "    return None"),
        fails=["matches the reference", "uses the learning_rate"],
    ),
    Mutant(
        "no partial last mini-batch",
        "random_mini_batches",
        ("if m % mini_batch_size != 0:", "if False:"),
        fails=["exactly one mini-batch", "smaller batch only", "not kept in their original order"],
    ),
    Mutant(
        "an empty mini-batch when m is a multiple",
        "random_mini_batches",
        ("if m % mini_batch_size != 0:", "if True:"),
        fails=["smaller batch only"],
    ),
    Mutant(
        "not shuffled",
        "random_mini_batches",
        ("permutation = list(np.random.permutation(m))", "permutation = list(range(m))"),
        fails=["not kept in their original order", "different seeds give different"],
    ),
    Mutant(
        "seed ignored",
        "random_mini_batches",
        ("np.random.seed(seed)", "pass"),
        fails=["different seeds give different"],
    ),
    Mutant(
        "transposed shapes",
        "initialize_velocity",
        ('np.zeros(parameters["W" + str(l)].shape)', 'np.zeros(parameters["W" + str(l)].T.shape)'),
        fails=["holds zeros"],
    ),
    Mutant(
        "keys W1/b1 instead of dW1/db1",
        "initialize_rmsprop",
        [('s["dW" + str(l)]', 's["W" + str(l)]'), ('s["db" + str(l)]', 's["b" + str(l)]')],
        fails=["holds zeros"],
    ),
    Mutant(
        "epsilon inside the square root",
        "update_parameters_with_rmsprop",
        [
            ('(np.sqrt(s["dW" + str(l)]) + epsilon)', 'np.sqrt(s["dW" + str(l)] + epsilon)'),
            ('(np.sqrt(s["db" + str(l)]) + epsilon)', 'np.sqrt(s["db" + str(l)] + epsilon)'),
        ],
        fails=["returned parameters"],
    ),
    Mutant(
        "no bias correction",
        "update_parameters_with_adam",
        [("v[key] / (1 - beta1 ** t)", "v[key]"), ("s[key] / (1 - beta2 ** t)", "s[key]")],
        fails=["divide by 1 - beta**t", "returned parameters", "uses the arguments"],
    ),
    Mutant(
        "hard-coded beta1 = 0.9",
        "update_parameters_with_adam",
        ("beta1 * v[key] + (1 - beta1)", "0.9 * v[key] + (1 - 0.9)"),
        fails=["uses the arguments"],
    ),
    Mutant(
        "exponential decay",
        "update_lr",
        (
            "learning_rate = learning_rate0 / (1 + decay_rate * epoch_num)",
            "learning_rate = learning_rate0 * 0.95 ** epoch_num",
        ),
        fails=["update_lr is"],
    ),
    Mutant(
        "time_interval ignored",
        "schedule_lr_decay",
        ("math.floor(epoch_num / time_interval)", "math.floor(epoch_num / 1000)"),
        fails=["time_interval argument"],
    ),
]

# One more for each clause that no mutant above touches.
MUTANTS += [
    Mutant(
        "the last layer not updated",
        "update_parameters_with_gd",
        ("for l in range(1, L + 1):", "for l in range(1, L):"),
        fails=["matches the reference", "uses the learning_rate"],
    ),
    Mutant(
        "parameters updated with the old velocity",
        "update_parameters_with_momentum",
        [
            (
                '        v["dW" + str(l)] = beta * v["dW" + str(l)] + (1 - beta) * grads["dW" + str(l)]\n'
                '        v["db" + str(l)] = beta * v["db" + str(l)] + (1 - beta) * grads["db" + str(l)]\n',
                "",
            ),
            (
                '        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * v["db" + str(l)]\n',
                '        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * v["db" + str(l)]\n'
                '        v["dW" + str(l)] = beta * v["dW" + str(l)] + (1 - beta) * grads["dW" + str(l)]\n'
                '        v["db" + str(l)] = beta * v["db" + str(l)] + (1 - beta) * grads["db" + str(l)]\n',
            ),
        ],
        fails=["returned parameters"],
    ),
    Mutant(
        "RMSprop averages the gradients, not their squares",
        "update_parameters_with_rmsprop",
        [
            ('(1 - beta2) * np.square(grads["dW" + str(l)])', '(1 - beta2) * np.abs(grads["dW" + str(l)])'),
            ('(1 - beta2) * np.square(grads["db" + str(l)])', '(1 - beta2) * np.abs(grads["db" + str(l)])'),
        ],
        fails=["returned s", "returned parameters"],
    ),
]

MUTANTS += [
    # Defined in a cell that fails before the definition runs (a default argument naming
    # nothing): the feedback used to say "update_lr is not defined by the graded cells".
    Mutant(
        "update_lr default argument undefined",
        "update_lr",
        (
            "def update_lr(learning_rate0, epoch_num, decay_rate):",
            "def update_lr(learning_rate0, epoch_num, decay_rate=DECAY_RATE):",
        ),
        fails=["update_lr is"],
        feedback=["its cell stopped with an error before the definition ran (NameError"],
    ),
]

# Shape slips (grading/shapes.py): the right values whose shape differs from the notebook's only by
# size-1 axes lose only the points of the shape checks, never those of the values.
MUTANTS += [
    # mini_batch_Y as a row of labels, (size,) where the notebook says (1, size).
    Mutant(
        "mini_batch_Y of shape (size,)",
        "random_mini_batches",
        [
            (
                "mini_batch_Y = shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size]",
                "mini_batch_Y = shuffled_Y[0, k * mini_batch_size:(k + 1) * mini_batch_size]",
            ),
            (
                "mini_batch_Y = shuffled_Y[:, num_complete_minibatches * mini_batch_size:]",
                "mini_batch_Y = shuffled_Y[0, num_complete_minibatches * mini_batch_size:]",
            ),
        ],
        # The shape check of each of the five tests (the suite's tests want one fragment per failed check).
        fails=[
            "Shapes as specified: Every column of X",
            "Shapes as specified: Each label",
            "Shapes as specified: Full mini-batches",
            "Shapes as specified: The examples are shuffled",
            "Shapes as specified: The same seed",
        ],
        feedback=["values right; shape (64,), expected (1, 64)"],
    ),
    # A bias velocity of shape (n,) for a bias of shape (n, 1).
    Mutant(
        "velocity db of shape (n,)",
        "initialize_velocity",
        (
            'v["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)',
            'v["db" + str(l)] = np.zeros(len(parameters["b" + str(l)]))',
        ),
        fails=["Shapes as specified"],
        feedback=["values right; shape (1,), expected (1, 1)"],
    ),
    # A bias's second moment as a row: (1, n) where the bias is (n, 1).
    Mutant(
        "Adam s db as a row",
        "initialize_adam",
        (
            's["db" + str(l)] = np.zeros(parameters["b" + str(l)].shape)',
            's["db" + str(l)] = np.zeros((1, len(parameters["b" + str(l)])))',
        ),
        fails=["Shapes as specified"],
        feedback=["values right; shape (1, 5), expected (5, 1)"],
    ),
]
