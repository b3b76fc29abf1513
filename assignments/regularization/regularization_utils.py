"""Helpers for the Regularization assignment: data, the provided 3-layer model, plots.

Everything here is provided to the learner and is not graded. The network is
LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID with layer sizes
[n_x, n_1, n_2, 1]; examples are stored in columns, so X has shape (n_x, m) and
Y has shape (1, m).

The graded functions (the L2 cost and backward pass, the dropout forward and
backward passes) are written by the learner in the notebook and passed to
`model` as arguments.

matplotlib is imported inside the plotting functions only, so importing this
module stays fast.
"""
import numpy as np


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------

def field_boundary(x1):
    """The true (noise-free) class boundary of the football field.

    Inputs:
    - x1: numpy array of any shape, horizontal positions

    Returns:
    - x2: array of the same shape; a point (x1, x2') is in class 1 when x2' > x2
    """
    return 0.25 * np.sin(4.0 * x1) + 0.5 * x1 - 0.05


def make_football_field(m, flip_prob, seed, jitter=0.06):
    """Sample m labelled positions on the field.

    Positions are uniform on [-0.75, 0.75] x [-0.75, 0.75]. The label is 1 above
    a wavy boundary and 0 below it; then each position is moved by Gaussian
    noise of standard deviation `jitter` (so the classes overlap near the
    boundary) and each label is flipped with probability `flip_prob` (isolated
    "wrong" points that an unregularized network will try to fit).

    Inputs:
    - m: number of examples
    - flip_prob: probability of flipping each label
    - seed: integer seed of a private RandomState (the global RNG is untouched)
    - jitter: standard deviation of the position noise

    Returns:
    - X: numpy array of shape (2, m), the positions
    - Y: numpy array of shape (1, m), labels in {0, 1} (int64)
    """
    rng = np.random.RandomState(seed)
    X = rng.uniform(-0.75, 0.75, size=(2, m))
    Y = (X[1] > field_boundary(X[0])).astype(np.int64)
    X = X + jitter * rng.randn(2, m)
    flips = rng.rand(m) < flip_prob
    Y = np.where(flips, 1 - Y, Y)
    return X, Y.reshape(1, m)


def load_2D_dataset():
    """The assignment's data set: 211 training and 200 test positions.

    Both sets come from `make_football_field` with the same distribution and
    different seeds, so no download is needed and every run sees the same data.

    Returns:
    - train_X: (2, 211), train_Y: (1, 211)
    - test_X: (2, 200), test_Y: (1, 200)
    """
    train_X, train_Y = make_football_field(211, flip_prob=0.05, seed=1)
    test_X, test_Y = make_football_field(200, flip_prob=0.05, seed=2)
    return train_X, train_Y, test_X, test_Y


# ----------------------------------------------------------------------------
# Provided model code (no regularization)
# ----------------------------------------------------------------------------

def sigmoid(x):
    """Elementwise logistic function 1 / (1 + exp(-x)); any shape."""
    return 1 / (1 + np.exp(-x))


def relu(x):
    """Elementwise max(0, x); any shape."""
    return np.maximum(0, x)


def initialize_parameters(layer_dims, seed=3):
    """Random weights scaled by 1/sqrt(fan-in) and zero biases.

    Inputs:
    - layer_dims: list [n_x, n_1, ..., n_L] of layer sizes
    - seed: seed of a private RandomState

    Returns:
    - parameters: dict with "W1", "b1", ..., "WL", "bL";
      W_l has shape (n_l, n_{l-1}) and b_l has shape (n_l, 1)
    """
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        parameters["W" + str(l)] = rng.randn(layer_dims[l], layer_dims[l - 1]) / np.sqrt(layer_dims[l - 1])
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def forward_propagation(X, parameters):
    """Forward pass LINEAR -> RELU -> LINEAR -> RELU -> LINEAR -> SIGMOID.

    Inputs:
    - X: input data, shape (n_x, m)
    - parameters: dict with W1 (n_1, n_x), b1 (n_1, 1), W2 (n_2, n_1),
      b2 (n_2, 1), W3 (1, n_2), b3 (1, 1)

    Returns:
    - A3: output probabilities, shape (1, m)
    - cache: tuple (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    """
    W1, b1 = parameters["W1"], parameters["b1"]
    W2, b2 = parameters["W2"], parameters["b2"]
    W3, b3 = parameters["W3"], parameters["b3"]

    Z1 = np.dot(W1, X) + b1
    A1 = relu(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = relu(Z2)
    Z3 = np.dot(W3, A2) + b3
    A3 = sigmoid(Z3)

    cache = (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)
    return A3, cache


def compute_cost(A3, Y):
    """Cross-entropy cost -1/m * sum(Y log A3 + (1 - Y) log(1 - A3)).

    Inputs:
    - A3: output probabilities, shape (1, m)
    - Y: labels in {0, 1}, shape (1, m)

    Returns:
    - cost: float
    """
    m = Y.shape[1]
    # A probability that saturates at exactly 0 or 1 gives log(0) = -inf; the
    # matching 0 * log(0) term is nan and nansum drops it, as in the course.
    # errstate only silences the warnings, the values are unchanged.
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = np.multiply(-np.log(A3), Y) + np.multiply(-np.log(1 - A3), 1 - Y)
    return float(1.0 / m * np.nansum(logprobs))


def backward_propagation(X, Y, cache):
    """Backward pass of `forward_propagation` for the cross-entropy cost.

    Inputs:
    - X: input data, shape (n_x, m)
    - Y: labels, shape (1, m)
    - cache: tuple (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3)

    Returns:
    - gradients: dict with dZ3, dW3, db3, dA2, dZ2, dW2, db2, dA1, dZ1, dW1,
      db1; each has the shape of the quantity it is the gradient of
    """
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache

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

    return {"dZ3": dZ3, "dW3": dW3, "db3": db3,
            "dA2": dA2, "dZ2": dZ2, "dW2": dW2, "db2": db2,
            "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


def update_parameters(parameters, grads, learning_rate):
    """One step of gradient descent: W_l -= learning_rate * dW_l, same for b_l.

    Inputs:
    - parameters: dict W1, b1, ..., WL, bL
    - grads: dict with at least dW1, db1, ..., dWL, dbL of matching shapes
    - learning_rate: float

    Returns:
    - parameters: a new dict with the updated values
    """
    L = len(parameters) // 2
    updated = {}
    for l in range(1, L + 1):
        updated["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)]
        updated["b" + str(l)] = parameters["b" + str(l)] - learning_rate * grads["db" + str(l)]
    return updated


def predict(X, Y, parameters, print_accuracy=True):
    """Predict labels (threshold 0.5, no dropout) and report the accuracy.

    Inputs:
    - X: data, shape (n_x, m)
    - Y: true labels, shape (1, m)
    - parameters: trained parameters
    - print_accuracy: print "Accuracy: ..." when True

    Returns:
    - p: predictions in {0, 1}, shape (1, m), int64
    """
    A3, _ = forward_propagation(X, parameters)
    p = (A3 > 0.5).astype(np.int64)
    if print_accuracy:
        print("Accuracy: " + str(np.mean(p == Y)))
    return p


def accuracy(X, Y, parameters):
    """Fraction of examples of (X, Y) classified correctly; a float in [0, 1]."""
    return float(np.mean(predict(X, Y, parameters, print_accuracy=False) == Y))


def predict_dec(parameters, X):
    """Predicted labels for plotting decision boundaries.

    Inputs:
    - parameters: trained parameters
    - X: data, shape (n_x, m)

    Returns:
    - predictions: boolean array of shape (1, m), True for class 1
    """
    A3, _ = forward_propagation(X, parameters)
    return A3 > 0.5


def model(X, Y, learning_rate=0.3, num_iterations=30000, print_cost=True, lambd=0, keep_prob=1,
          compute_cost_with_regularization=None, backward_propagation_with_regularization=None,
          forward_propagation_with_dropout=None, backward_propagation_with_dropout=None, seed=3):
    """Train the 3-layer network [n_x, 20, 3, 1] with batch gradient descent.

    With lambd == 0 and keep_prob == 1 the provided (unregularized) functions
    are used. With lambd > 0 pass your L2 functions; with keep_prob < 1 pass
    your dropout functions. Use one of the two regularizations at a time.

    Inputs:
    - X: training data, shape (n_x, m)
    - Y: labels, shape (1, m)
    - learning_rate: gradient descent step size
    - num_iterations: number of gradient steps
    - print_cost: print the cost every 10000 iterations
    - lambd: L2 regularization strength (0 turns L2 off)
    - keep_prob: probability of keeping a hidden unit (1 turns dropout off)
    - compute_cost_with_regularization: function (A3, Y, parameters, lambd) -> cost
    - backward_propagation_with_regularization: function (X, Y, cache, lambd) -> gradients
    - forward_propagation_with_dropout: function (X, parameters, keep_prob) -> (A3, cache)
    - backward_propagation_with_dropout: function (X, Y, cache, keep_prob) -> gradients
    - seed: seeds the initialization and numpy's global RNG (dropout masks),
      so a run is reproducible

    Returns:
    - parameters: the trained parameters
    - costs: list of the cost every 1000 iterations
    """
    assert lambd == 0 or keep_prob == 1, "use L2 or dropout, not both at once"
    if lambd != 0:
        assert compute_cost_with_regularization is not None and backward_propagation_with_regularization is not None, \
            "lambd > 0 needs compute_cost_with_regularization and backward_propagation_with_regularization"
    if keep_prob < 1:
        assert forward_propagation_with_dropout is not None and backward_propagation_with_dropout is not None, \
            "keep_prob < 1 needs forward_propagation_with_dropout and backward_propagation_with_dropout"

    np.random.seed(seed)  # the dropout masks come from numpy's global RNG
    layers_dims = [X.shape[0], 20, 3, 1]
    parameters = initialize_parameters(layers_dims, seed=seed)
    costs = []

    for i in range(num_iterations):
        if keep_prob < 1:
            A3, cache = forward_propagation_with_dropout(X, parameters, keep_prob)
        else:
            A3, cache = forward_propagation(X, parameters)

        if lambd != 0:
            cost = compute_cost_with_regularization(A3, Y, parameters, lambd)
        else:
            cost = compute_cost(A3, Y)

        if lambd != 0:
            grads = backward_propagation_with_regularization(X, Y, cache, lambd)
        elif keep_prob < 1:
            grads = backward_propagation_with_dropout(X, Y, cache, keep_prob)
        else:
            grads = backward_propagation(X, Y, cache)

        parameters = update_parameters(parameters, grads, learning_rate)

        if i % 1000 == 0:
            costs.append(float(cost))
        if print_cost and i % 10000 == 0:
            print("Cost after iteration {}: {}".format(i, cost))

    return parameters, costs


# ----------------------------------------------------------------------------
# Plots (matplotlib imported lazily)
# ----------------------------------------------------------------------------

def plot_dataset(X, Y, title="", ax=None):
    """Scatter plot of positions X (2, m) coloured by labels Y (1, m)."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(X[0, :], X[1, :], c=Y.ravel(), s=25, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.3)
    ax.set_xlim(-0.95, 0.95)
    ax.set_ylim(-0.95, 0.95)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)


def plot_decision_boundary(predict_fn, X, Y, title="", ax=None):
    """Colour the plane by `predict_fn` and scatter (X, Y) on top.

    Inputs:
    - predict_fn: function taking an array of shape (m, 2) (one point per row)
      and returning m labels, e.g. lambda x: predict_dec(parameters, x.T)
    - X: positions, shape (2, m)
    - Y: labels, shape (1, m)
    """
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    h = 0.01
    xx, yy = np.meshgrid(np.arange(-0.95, 0.95, h), np.arange(-0.95, 0.95, h))
    Z = np.asarray(predict_fn(np.c_[xx.ravel(), yy.ravel()])).reshape(xx.shape)
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    plot_dataset(X, Y, title=title, ax=ax)


def plot_costs(costs, title=""):
    """Plot the cost recorded every 1000 iterations by `model`."""
    import matplotlib.pyplot as plt
    _, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(np.arange(len(costs)) * 1000, costs)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost")
    ax.set_title(title)
