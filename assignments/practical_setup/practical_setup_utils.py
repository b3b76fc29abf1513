"""Helpers for the Practical setup assignment: data, a small network to tune, plots.

Plain numpy; X has shape (n_x, m), one example per column. The data set is
generated with sklearn's make_moons, seeded, never downloaded. matplotlib is
imported inside the plotting functions only, so the grader's imports cell
stays fast.
"""
import numpy as np


def load_moons(m=1500, noise=0.3, seed=0):
    """Two interleaved half-moons, with features on very different scales.

    Returns X (2, m) and Y (1, m) in {0, 1}. The first feature is in metres
    around 1000, the second in kilometres around 0: unnormalized, the first
    dominates every gradient.
    """
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=m, noise=noise, random_state=seed)
    X = np.vstack([1000 + 100 * points[:, 0], 0.01 * points[:, 1]])
    return X, labels.reshape(1, m).astype(np.float64)


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.clip(z, -500, 500)))


def train_network(X, Y, learning_rate, beta, n_hidden=16, iterations=300, seed=0):
    """A 2-layer network (tanh hidden layer, sigmoid output) trained by full-batch
    gradient descent with momentum beta. Returns its parameters (a dict)."""
    rng = np.random.RandomState(seed)
    n_x, m = X.shape
    params = {"W1": rng.randn(n_hidden, n_x) * np.sqrt(1 / n_x), "b1": np.zeros((n_hidden, 1)),
              "W2": rng.randn(1, n_hidden) * np.sqrt(1 / n_hidden), "b2": np.zeros((1, 1))}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iterations):
            A1 = np.tanh(params["W1"] @ X + params["b1"])
            A2 = _sigmoid(params["W2"] @ A1 + params["b2"])
            dZ2 = (A2 - Y) / m
            grads = {"W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True)}
            dZ1 = (params["W2"].T @ dZ2) * (1 - A1 ** 2)
            grads["W1"], grads["b1"] = dZ1 @ X.T, dZ1.sum(axis=1, keepdims=True)
            for k in params:
                velocity[k] = beta * velocity[k] + (1 - beta) * grads[k]
                params[k] = params[k] - learning_rate * velocity[k]
    return params


def error_rate(params, X, Y):
    """Fraction of misclassified examples (a NaN network counts as all wrong)."""
    with np.errstate(over="ignore", invalid="ignore"):
        A1 = np.tanh(params["W1"] @ X + params["b1"])
        A2 = _sigmoid(params["W2"] @ A1 + params["b2"])
    predictions = A2 > 0.5
    return float(np.mean(predictions != (Y > 0.5)))


def make_train_and_evaluate(X_train, Y_train, X_dev, Y_dev, **network):
    """The function random_search calls: (learning_rate, beta) -> (train_error, dev_error)."""
    def train_and_evaluate(learning_rate, beta):
        params = train_network(X_train, Y_train, learning_rate, beta, **network)
        return error_rate(params, X_train, Y_train), error_rate(params, X_dev, Y_dev)
    return train_and_evaluate


def plot_search(histories, title="Random search", ax=None):
    """Dev error against the learning rate (log axis); histories: dict label -> history."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, history in histories.items():
        ax.scatter([t["learning_rate"] for t in history], [t["dev_error"] for t in history], label=label, s=18)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("dev error")
    ax.set_title(title)
    ax.legend()


def plot_features(sets, title="Features", ax=None):
    """Scatter of the two features of each set; sets: dict label -> X (2, m)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    for label, X in sets.items():
        ax.scatter(X[0], X[1], s=4, label=label)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title)
    ax.legend()
