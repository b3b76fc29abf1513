"""Data, provided model code and plotting for the Optimization assignment.

The model is a small fully connected network: LINEAR -> RELU repeated for the
hidden layers, then LINEAR -> SIGMOID, trained on the two-moons data set. The
learner writes the optimizers; everything here is given.

Conventions (as in the rest of the course):
- X has shape (n_x, m): one example per column.
- Y has shape (1, m) with labels in {0, 1}.
- parameters["Wl"] has shape (layer_dims[l], layer_dims[l-1]),
  parameters["bl"] has shape (layer_dims[l], 1); grads use the keys "dWl", "dbl".

Only numpy is imported at module level: scikit-learn and matplotlib are
imported inside the functions that need them, so importing this module is fast.
"""
import numpy as np


def load_dataset(n_samples=300, noise=0.2, seed=3):
    """Two interleaving half moons (scikit-learn's make_moons), seeded.

    Inputs:
    - n_samples: number of points m.
    - noise: standard deviation of the Gaussian noise added to the points.
    - seed: random_state passed to make_moons, so the data set is reproducible.

    Returns a tuple of:
    - train_X: array of shape (2, m).
    - train_Y: array of shape (1, m), labels 0 or 1.
    """
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    train_X = X.T
    train_Y = y.reshape(1, -1)
    return train_X, train_Y


def sigmoid(z):
    """Elementwise logistic function 1 / (1 + exp(-z)); any shape."""
    return 1.0 / (1.0 + np.exp(-z))


def relu(z):
    """Elementwise max(0, z); any shape."""
    return np.maximum(0, z)


def initialize_parameters(layer_dims, seed=3):
    """He initialization: W ~ N(0, 2 / n_prev), b = 0.

    Inputs:
    - layer_dims: list [n_x, n_1, ..., n_L] of layer sizes.
    - seed: seed of the private random generator, so every optimizer in the
      comparison starts from exactly the same weights.

    Returns parameters, a dict with "W1", "b1", ..., "WL", "bL" where
    Wl has shape (layer_dims[l], layer_dims[l-1]) and bl has shape (layer_dims[l], 1).
    """
    # A private generator leaves the global numpy state alone.
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        scale = np.sqrt(2.0 / layer_dims[l - 1])
        parameters["W" + str(l)] = rng.randn(layer_dims[l], layer_dims[l - 1]) * scale
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def forward_propagation(X, parameters):
    """Forward pass: (LINEAR -> RELU) x (L-1) -> LINEAR -> SIGMOID.

    Inputs:
    - X: input data of shape (n_x, m).
    - parameters: dict of "Wl", "bl" as built by initialize_parameters.

    Returns a tuple of:
    - AL: output probabilities of shape (1, m).
    - caches: list of (A_prev, Z) per layer, needed by backward_propagation.
    """
    L = len(parameters) // 2
    caches = []
    A = X
    for l in range(1, L + 1):
        Z = parameters["W" + str(l)] @ A + parameters["b" + str(l)]
        caches.append((A, Z))
        A = sigmoid(Z) if l == L else relu(Z)
    return A, caches


def compute_cost(AL, Y):
    """Cross-entropy summed (not averaged) over the examples of a mini-batch.

    The training loop adds these sums over all mini-batches of an epoch and
    divides by m once, so a smaller last mini-batch is weighted correctly.

    Inputs:
    - AL: output probabilities of shape (1, m_batch).
    - Y: labels of shape (1, m_batch).

    Returns the summed cost, a Python float.
    """
    # Clipping keeps log() finite when a confident prediction saturates the sigmoid.
    AL = np.clip(AL, 1e-12, 1 - 1e-12)
    logprobs = -Y * np.log(AL) - (1 - Y) * np.log(1 - AL)
    return float(np.sum(logprobs))


def backward_propagation(Y, caches, parameters):
    """Gradients of the mean cross-entropy over the mini-batch.

    Inputs:
    - Y: labels of shape (1, m).
    - caches: list of (A_prev, Z) returned by forward_propagation.
    - parameters: dict of "Wl", "bl".

    Returns grads, a dict with "dW1", "db1", ..., "dWL", "dbL" of the same
    shapes as the corresponding parameters.
    """
    L = len(parameters) // 2
    m = Y.shape[1]
    grads = {}
    for l in range(L, 0, -1):
        A_prev, Z = caches[l - 1]
        if l == L:
            # Sigmoid + cross-entropy: dJ/dZ_L simplifies to (AL - Y) / m.
            dZ = (sigmoid(Z) - Y) / m
        else:
            dZ = dA * (Z > 0)
        grads["dW" + str(l)] = dZ @ A_prev.T
        grads["db" + str(l)] = np.sum(dZ, axis=1, keepdims=True)
        dA = parameters["W" + str(l)].T @ dZ
    return grads


def predict(X, parameters):
    """Labels 0/1 predicted by thresholding the output probability at 0.5.

    Inputs:
    - X: input data of shape (n_x, m).
    - parameters: dict of "Wl", "bl".

    Returns predictions of shape (1, m), integers 0 or 1.
    """
    AL, _ = forward_propagation(X, parameters)
    return (AL > 0.5).astype(int)


def accuracy(X, Y, parameters):
    """Fraction of examples whose predicted label equals Y; a float in [0, 1]."""
    return float(np.mean(predict(X, parameters) == Y))


def plot_dataset(X, Y, ax=None, title=None):
    """Scatter plot of the points X (2, m) coloured by their label Y (1, m)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    ax.scatter(X[0, :], X[1, :], c=Y.ravel(), s=12, cmap=plt.cm.Spectral)
    if title:
        ax.set_title(title)


def plot_decision_boundary(parameters, X, Y, ax=None, title=None):
    """Decision regions of the model on a grid around the points, plus the points.

    Inputs:
    - parameters: trained parameters of the network.
    - X: points of shape (2, m); Y: labels of shape (1, m).
    - ax: matplotlib axes to draw on (a new figure when None).
    - title: axes title.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3))
    x_min, x_max = X[0, :].min() - 1, X[0, :].max() + 1
    y_min, y_max = X[1, :].min() - 1, X[1, :].max() + 1
    h = 0.02
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    grid = np.c_[xx.ravel(), yy.ravel()].T  # shape (2, number of grid points)
    Z = predict(grid, parameters).reshape(xx.shape)
    ax.contourf(xx, yy, Z, cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(X[0, :], X[1, :], c=Y.ravel(), s=8, cmap=plt.cm.Spectral, edgecolors="k", linewidths=0.2)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_costs(histories, every=100, ax=None, title=None):
    """Cost curves of several runs on one plot.

    Inputs:
    - histories: dict mapping a run's label to its list of costs, one value
      recorded every `every` epochs.
    - every: number of epochs between two recorded costs (for the x axis).
    - ax: matplotlib axes to draw on (a new figure when None).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, costs in histories.items():
        epochs = np.arange(len(costs)) * every
        ax.plot(epochs, costs, label=label, linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cost")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
