"""Data, provided model code and plots for the Initialization assignment.

Nothing in this module is graded. The model is a fully connected network
LINEAR -> RELU -> ... -> LINEAR -> RELU -> LINEAR -> SIGMOID trained by full
batch gradient descent; the notebook passes one of the learner's initializers
to ``model`` so that the three initializations can be compared.

Shapes follow the course: examples are columns, so X has shape (n_x, m),
Y has shape (1, m), W{l} has shape (n_l, n_{l-1}) and b{l} has shape (n_l, 1).

matplotlib is imported inside the plotting functions only, so that importing
this module stays fast (the grader imports it before the graded cells).
"""
import numpy as np


def load_dataset():
    """The two concentric circles of the course, generated without download.

    sklearn's make_circles with noise 0.05 and its default factor 0.8 (radius of
    the inner circle relative to the outer one), as in the course; seeds 1 and 2
    for the train and test sets. Both sets are balanced (make_circles puts half
    of the points on each circle).

    Returns:
    - train_X: array of shape (2, 300)
    - train_Y: array of shape (1, 300), labels 0 (outer) and 1 (inner)
    - test_X: array of shape (2, 100)
    - test_Y: array of shape (1, 100)
    """
    # Imported here: sklearn costs seconds to import, and the grader imports
    # this module before every submission's graded cells.
    from sklearn.datasets import make_circles

    train_X, train_Y = make_circles(n_samples=300, noise=0.05, factor=0.8, random_state=1)
    test_X, test_Y = make_circles(n_samples=100, noise=0.05, factor=0.8, random_state=2)
    # Examples as columns, labels as a row vector.
    return train_X.T, train_Y.reshape(1, -1), test_X.T, test_Y.reshape(1, -1)


def sigmoid(x):
    """Elementwise logistic function; returns an array of the shape of x."""
    # For very negative x, exp(-x) overflows to inf and 1 / (1 + inf) = 0,
    # which is the right limit; silence the overflow warning only.
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def relu(x):
    """Elementwise max(0, x); returns an array of the shape of x."""
    return np.maximum(0, x)


def forward_propagation(X, parameters):
    """Forward pass LINEAR -> RELU -> ... -> LINEAR -> SIGMOID.

    Inputs:
    - X: array of shape (n_x, m)
    - parameters: dict with W1, b1, ..., WL, bL; Wl of shape (n_l, n_{l-1}),
      bl of shape (n_l, 1)

    Returns a tuple of:
    - AL: output probabilities, shape (1, m)
    - cache: (X, zs, activations, parameters) with zs[l-1] = Zl and
      activations[l-1] = Al, for use by backward_propagation
    """
    L = len(parameters) // 2
    A = X
    zs, activations = [], []
    for l in range(1, L + 1):
        Z = np.dot(parameters["W" + str(l)], A) + parameters["b" + str(l)]
        A = sigmoid(Z) if l == L else relu(Z)
        zs.append(Z)
        activations.append(A)
    return A, (X, zs, activations, parameters)


def compute_loss(a3, Y):
    """Cross-entropy cost, guarded against log(0) only the way the course is.

    Inputs:
    - a3: output probabilities, shape (1, m)
    - Y: labels 0/1, shape (1, m)

    Returns the cost, a float. When a probability is exactly 0 or 1 (the
    sigmoid saturates in float64 once |z| > ~37), log(0) = -inf appears. The
    term of the other label is then 0 * inf = nan, which np.nansum drops; but a
    confident wrong answer gives +inf, and the cost is inf. That is what large
    random initialization does at the start of training, and we keep it
    visible instead of clipping the probabilities.
    """
    m = Y.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return float(1.0 / m * np.nansum(logprobs))


def backward_propagation(X, Y, cache):
    """Gradients of the cross-entropy cost with respect to every parameter.

    Inputs:
    - X: array of shape (n_x, m)
    - Y: labels, shape (1, m)
    - cache: from forward_propagation

    Returns a dict with dW1, db1, ..., dWL, dbL of the shapes of W1, b1, ...
    """
    _, zs, activations, parameters = cache
    L = len(zs)
    m = X.shape[1]
    grads = {}
    # Sigmoid + cross-entropy: dcost/dZL = (AL - Y) / m, with no division by AL.
    dZ = 1.0 / m * (activations[-1] - Y)
    for l in range(L, 0, -1):
        A_prev = X if l == 1 else activations[l - 2]
        grads["dW" + str(l)] = np.dot(dZ, A_prev.T)
        grads["db" + str(l)] = np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA_prev = np.dot(parameters["W" + str(l)].T, dZ)
            # ReLU derivative: 1 where the unit was active, 0 elsewhere.
            dZ = dA_prev * (zs[l - 2] > 0)
    return grads


def update_parameters(parameters, grads, learning_rate):
    """One gradient descent step; returns a new dict of parameters."""
    L = len(parameters) // 2
    new = {}
    for l in range(1, L + 1):
        new["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)]
        new["b" + str(l)] = parameters["b" + str(l)] - learning_rate * grads["db" + str(l)]
    return new


def model(X, Y, initialization, learning_rate=0.01, num_iterations=15000,
          print_cost=True, layers_dims=None):
    """Train a ReLU network with sigmoid output by gradient descent.

    Inputs:
    - X: array of shape (n_x, m)
    - Y: labels 0/1, shape (1, m)
    - initialization: a function layers_dims -> parameters dict, e.g. the
      learner's initialize_parameters_he
    - learning_rate, num_iterations: gradient descent settings
    - print_cost: print the cost every 1000 iterations
    - layers_dims: sizes of every layer; default [n_x, 10, 5, 1]

    Returns a tuple of:
    - parameters: the trained parameters
    - costs: list of the cost at iterations 0, 1000, 2000, ...
    """
    if layers_dims is None:
        layers_dims = [X.shape[0], 10, 5, 1]
    parameters = initialization(layers_dims)
    costs = []
    for i in range(num_iterations):
        a3, cache = forward_propagation(X, parameters)
        cost = compute_loss(a3, Y)
        grads = backward_propagation(X, Y, cache)
        parameters = update_parameters(parameters, grads, learning_rate)
        if i % 1000 == 0:
            costs.append(cost)
            if print_cost:
                print(f"Cost after iteration {i}: {cost}")
    return parameters, costs


def predict(X, parameters):
    """Labels 0/1 predicted by thresholding the output at 0.5; shape (1, m)."""
    a3, _ = forward_propagation(X, parameters)
    return (a3 > 0.5).astype(int)


def accuracy(predictions, Y):
    """Fraction of predictions (shape (1, m)) equal to the labels Y (1, m)."""
    return float(np.mean(predictions == Y))


def activation_scales(parameters, X):
    """Standard deviation of the pre-activations Z1, ..., ZL of a forward pass.

    Used to watch signals explode or vanish with depth. Returns a list of
    floats, one per layer.
    """
    _, (_, zs, _, _) = forward_propagation(X, parameters)
    return [float(Z.std()) for Z in zs]


def plot_dataset(X, Y, title="Dataset"):
    """Scatter plot of a 2-D dataset, X of shape (2, m), Y of shape (1, m)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.5), dpi=72)
    ax.scatter(X[0, :], X[1, :], c=Y.ravel(), s=20, cmap=plt.cm.Spectral)
    ax.set_title(title)
    plt.show()


def plot_costs(costs_by_name, learning_rate=0.01):
    """Cost curves, one per initialization.

    Inputs:
    - costs_by_name: dict name -> list of costs recorded every 1000 iterations
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=72)
    for name, costs in costs_by_name.items():
        # inf costs are not drawn by matplotlib; the notebook prints them.
        ax.plot(np.arange(len(costs)) * 1000, costs, marker="o", markersize=3, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost")
    ax.set_title(f"Learning rate = {learning_rate}")
    ax.legend()
    plt.show()


def plot_decision_boundary(parameters, X, Y, title="", ax=None):
    """Shade the region the model classifies as 1 and scatter X over it.

    Inputs:
    - parameters: trained parameters for forward_propagation
    - X: array of shape (2, m); Y: labels of shape (1, m)
    - ax: a matplotlib Axes to draw into; a new figure is shown if None
    """
    import matplotlib.pyplot as plt

    show = ax is None
    if show:
        fig, ax = plt.subplots(figsize=(4, 3.5), dpi=72)
    x_min, x_max = X[0, :].min() - 0.3, X[0, :].max() + 0.3
    y_min, y_max = X[1, :].min() - 0.3, X[1, :].max() + 0.3
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, 200), np.linspace(y_min, y_max, 200))
    grid = np.vstack([xx.ravel(), yy.ravel()])
    Z = predict(grid, parameters).reshape(xx.shape)
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(X[0, :], X[1, :], c=Y.ravel(), s=15, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.3)
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_title(title)
    if show:
        plt.show()


def plot_decision_boundaries(parameters_by_name, X, Y):
    """Decision boundaries of several trained models side by side.

    Inputs:
    - parameters_by_name: dict title -> trained parameters
    - X: array of shape (2, m); Y: labels of shape (1, m)
    """
    import matplotlib.pyplot as plt

    n = len(parameters_by_name)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), dpi=72, squeeze=False)
    for ax, (title, parameters) in zip(axes[0], parameters_by_name.items()):
        plot_decision_boundary(parameters, X, Y, title=title, ax=ax)
    fig.tight_layout()
    plt.show()
