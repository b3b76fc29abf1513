"""Provided model code, test cases and plots for the Gradient Checking assignment.

Nothing in this module is graded. It holds the 3-layer network whose
backpropagation the learner checks:

    LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID

with a fixed architecture: 4 input features, 5 and 3 hidden units, 1 output.
vector_to_dictionary relies on that architecture to cut a parameter vector
back into W1, b1, ..., b3, so every X passed to forward_propagation_n must have
shape (4, m).

Shapes follow the course: examples are columns, so X has shape (4, m),
Y has shape (1, m), W{l} has shape (n_l, n_{l-1}) and b{l} has shape (n_l, 1).

backward_propagation_n contains two deliberate bugs (the ones the assignment
asks the learner's gradient checker to expose); backward_propagation_n_fixed
is the correct version.

matplotlib is imported inside the plotting function only, so that importing
this module stays fast (the grader imports it before the graded cells).
"""
import numpy as np

# (name, shape) of every parameter, in the order used by dictionary_to_vector,
# vector_to_dictionary and gradients_to_vector.
PARAMETER_SHAPES = [
    ("W1", (5, 4)),
    ("b1", (5, 1)),
    ("W2", (3, 5)),
    ("b2", (3, 1)),
    ("W3", (1, 3)),
    ("b3", (1, 1)),
]


def sigmoid(x):
    """Elementwise logistic function; returns an array of the shape of x."""
    return 1 / (1 + np.exp(-x))


def relu(x):
    """Elementwise max(0, x); returns an array of the shape of x."""
    return np.maximum(0, x)


def dictionary_to_vector(parameters):
    """Stack all parameters into one column vector theta.

    Inputs:
    - parameters: dict with W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1),
      W3 (1, 3), b3 (1, 1)

    Returns a tuple of:
    - theta: array of shape (47, 1), the entries of W1, b1, ..., b3 in that
      order, each matrix flattened row by row
    - keys: list of 47 strings, keys[i] is the name of the parameter that
      theta[i] comes from (useful to locate a bad gradient entry)
    """
    pieces = []
    keys = []
    for name, shape in PARAMETER_SHAPES:
        pieces.append(np.reshape(parameters[name], (-1, 1)))
        keys += [name] * int(np.prod(shape))
    theta = np.concatenate(pieces, axis=0).astype(np.float64)
    return theta, keys


def vector_to_dictionary(theta):
    """Inverse of dictionary_to_vector: cut theta back into W1, b1, ..., b3.

    Inputs:
    - theta: array of shape (47, 1)

    Returns:
    - parameters: dict with W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1),
      W3 (1, 3), b3 (1, 1); the arrays are copies, so changing them does not
      change theta.
    """
    theta = np.asarray(theta).reshape(-1)
    parameters = {}
    start = 0
    for name, shape in PARAMETER_SHAPES:
        size = int(np.prod(shape))
        parameters[name] = theta[start:start + size].reshape(shape).copy()
        start += size
    assert start == theta.shape[0], "theta has %d entries, the network has %d" % (theta.shape[0], start)
    return parameters


def gradients_to_vector(gradients):
    """Stack dW1, db1, ..., db3 into one column vector, in the order of theta.

    Inputs:
    - gradients: dict with dW1, db1, dW2, db2, dW3, db3 (shapes of the matching
      parameters); other keys are ignored

    Returns:
    - grad: array of shape (47, 1); grad[i] is the derivative of the cost with
      respect to theta[i] of dictionary_to_vector(parameters)
    """
    pieces = [np.reshape(gradients["d" + name], (-1, 1)) for name, _ in PARAMETER_SHAPES]
    return np.concatenate(pieces, axis=0).astype(np.float64)


def forward_propagation_n(X, Y, parameters):
    """Forward pass of the 3-layer network and its cross-entropy cost.

    Inputs:
    - X: array of shape (4, m)
    - Y: labels 0/1, array of shape (1, m)
    - parameters: dict with W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1),
      W3 (1, 3), b3 (1, 1)

    Returns a tuple of:
    - cost: float, J = -1/m * sum(Y * log(A3) + (1 - Y) * log(1 - A3))
    - cache: (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) for the backward pass
    """
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = float(1.0 / m * np.sum(logprobs))

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return cost, cache


def backward_propagation_n(X, Y, cache):
    """Backward pass of the 3-layer network -- WITH TWO PLANTED BUGS.

    This is the code whose gradients your gradient_check_n should reject.
    Inputs:
    - X: array of shape (4, m)
    - Y: labels 0/1, array of shape (1, m)
    - cache: the cache returned by forward_propagation_n(X, Y, parameters)

    Returns:
    - gradients: dict with dW1 (5, 4), db1 (5, 1), dW2 (3, 5), db2 (3, 1),
      dW3 (1, 3), db3 (1, 1)
    """
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) * 2  # planted bug: the "* 2" is wrong
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 4.0 / m * np.sum(dZ1, axis=1, keepdims=True)  # planted bug: 4./m instead of 1./m

    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}


def backward_propagation_n_fixed(X, Y, cache):
    """Backward pass of the 3-layer network, correct version.

    Same inputs and outputs as backward_propagation_n; dW2 no longer has the
    extra factor 2 and db1 uses 1./m.
    """
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

    # Sigmoid followed by cross-entropy: dJ/dZ3 = (A3 - Y) / m.
    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T)
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}


def forward_propagation_n_dropout(X, Y, parameters, keep_prob=0.8, seed=None):
    """Forward pass of the 3-layer network with inverted dropout on A1 and A2.

    Inputs:
    - X, Y, parameters: as in forward_propagation_n
    - keep_prob: probability of keeping a hidden unit; 1.0 turns dropout off
    - seed: None draws fresh masks from np.random on every call (what training
      does); an integer draws the same masks on every call

    Returns a tuple of:
    - cost: float, the cross-entropy cost of the thinned network
    - cache: (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3), where
      D1 (5, m) and D2 (3, m) are the 0/1 masks
    """
    rng = np.random if seed is None else np.random.RandomState(seed)
    m = X.shape[1]
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    D1 = (rng.rand(*Z1.shape) < keep_prob).astype(np.float64)
    # Inverted dropout: scale the kept units so the expected activation is unchanged.
    A1 = relu(Z1) * D1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    D2 = (rng.rand(*Z2.shape) < keep_prob).astype(np.float64)
    A2 = relu(Z2) * D2 / keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    cost = float(1.0 / m * np.sum(logprobs))

    cache = (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3)
    return cost, cache


def backward_propagation_n_dropout(X, Y, cache, keep_prob=0.8):
    """Backward pass matching forward_propagation_n_dropout (correct).

    Inputs:
    - X, Y: as in forward_propagation_n
    - cache: the cache returned by forward_propagation_n_dropout
    - keep_prob: the keep_prob used in the forward pass

    Returns:
    - gradients: dict with dW1, db1, dW2, db2, dW3, db3, the gradient of the
      cost of the thinned network that produced the cache
    """
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache

    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)

    # The masks and the 1/keep_prob scaling apply to the gradient exactly as
    # they applied to the activations.
    dA2 = np.dot(W3.T, dZ3) * D2 / keep_prob
    dZ2 = np.multiply(dA2, np.int64(Z2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T)
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)

    dA1 = np.dot(W2.T, dZ2) * D1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(Z1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 1.0 / m * np.sum(dZ1, axis=1, keepdims=True)

    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}


def gradient_check_n_test_case(seed=1, m=3):
    """A small input batch and random parameters for the 3-layer network.

    Inputs:
    - seed: seed of the private random generator (np.random is not touched)
    - m: number of examples

    Returns a tuple of:
    - X: array of shape (4, m), standard normal entries
    - Y: array of shape (1, m), labels 0/1 (for m = 3 and seed = 1: [[1, 1, 0]],
      as in the course)
    - parameters: dict with W1 (5, 4), b1 (5, 1), W2 (3, 5), b2 (3, 1),
      W3 (1, 3), b3 (1, 1), standard normal entries
    """
    rng = np.random.RandomState(seed)
    X = rng.randn(4, m)
    if seed == 1 and m == 3:
        Y = np.array([[1, 1, 0]])
    else:
        Y = (rng.rand(1, m) < 0.5).astype(np.int64)
    parameters = {}
    for name, shape in PARAMETER_SHAPES:
        parameters[name] = rng.randn(*shape)
    return X, Y, parameters


def plot_error_vs_epsilon(epsilons, errors, title="", ylabel="absolute error"):
    """Log-log plot of approximation errors against epsilon.

    Inputs:
    - epsilons: sequence of step sizes (x axis)
    - errors: dict mapping a label to a sequence of errors, one per epsilon
    - title, ylabel: strings for the plot
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=80)
    for label, values in errors.items():
        # Exact zeros cannot be drawn on a log scale; leave them out.
        values = np.asarray(values, dtype=np.float64)
        shown = values > 0
        ax.loglog(np.asarray(epsilons)[shown], values[shown], "o-", label=label)
    ax.set_xlabel("epsilon")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    ax.legend()
    plt.show()
