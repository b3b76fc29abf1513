"""Helpers for the Batch normalization assignment: data, provided layers, a small network, plots.

Plain numpy, CS231n style: x has shape (N, D), one example per row. The data
set is sklearn's bundled digits (8 x 8 images, 10 classes), never downloaded.
matplotlib is imported inside the plotting function only, so the grader's
imports cell stays fast.
"""
import numpy as np


def load_digits_data(seed=0, n_train=1200):
    """sklearn's digits, scaled to [0, 1] and split at random.

    Returns X_train (n_train, 64), y_train (n_train,), X_test (1797 - n_train, 64), y_test.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.RandomState(seed).permutation(len(y))
    X, y = X[order], y[order]
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def affine_forward(x, w, b):
    """out = x w + b for x (N, D), w (D, M), b (M,); cache = (x, w, b)."""
    out = x.dot(w) + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Gradients of affine_forward: dout (N, M) -> dx (N, D), dw (D, M), db (M,)."""
    x, w, b = cache
    return dout.dot(w.T), x.T.dot(dout), np.sum(dout, axis=0)


def relu_forward(x):
    """out = max(0, x) elementwise; cache = x."""
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    """Gradient of relu_forward: dout where the input was positive, else 0."""
    return dout * (cache > 0)


def softmax_loss(scores, y):
    """Mean cross-entropy of softmax(scores) for scores (N, C), labels y (N,).

    Returns loss (float) and dscores (N, C).
    """
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    N = scores.shape[0]
    loss = -np.mean(log_probs[np.arange(N), y])
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1
    return float(loss), dscores / N


def init_network(dims, weight_scale, use_batchnorm, seed=0):
    """Parameters of a fully connected network with layer sizes ``dims``.

    W_l (dims[l-1], dims[l]) ~ weight_scale * N(0, 1), b_l zeros; with batch
    normalization each hidden layer also has gamma_l (ones) and beta_l (zeros).
    Returns (params, bn_params): bn_params holds one dict per hidden layer
    (the running averages are created by batchnorm_forward).
    """
    rng = np.random.RandomState(seed)
    params = {}
    for l in range(1, len(dims)):
        params["W%d" % l] = weight_scale * rng.randn(dims[l - 1], dims[l])
        params["b%d" % l] = np.zeros(dims[l])
        if use_batchnorm and l < len(dims) - 1:
            params["gamma%d" % l] = np.ones(dims[l])
            params["beta%d" % l] = np.zeros(dims[l])
    bn_params = [{"mode": "train"} for _ in range(len(dims) - 2)] if use_batchnorm else []
    return params, bn_params


def network_loss(params, bn_params, X, y=None, layer_forward=None, layer_backward=None):
    """Scores (test mode, y None) or (loss, grads) of the network.

    Hidden layers are affine - ReLU, or affine - batchnorm - ReLU when
    bn_params is not empty, using your ``layer_forward`` / ``layer_backward``
    (affine_bn_relu_forward / affine_bn_relu_backward). The last layer is affine.
    """
    n_layers = sum(1 for k in params if k.startswith("W"))
    mode = "test" if y is None else "train"
    caches, h = [], X
    for l in range(1, n_layers):
        W, b = params["W%d" % l], params["b%d" % l]
        if bn_params:
            bn_params[l - 1]["mode"] = mode
            h, cache = layer_forward(h, W, b, params["gamma%d" % l], params["beta%d" % l], bn_params[l - 1])
        else:
            a, fc_cache = affine_forward(h, W, b)
            h, relu_cache = relu_forward(a)
            cache = (fc_cache, relu_cache)
        caches.append(cache)
    scores, last_cache = affine_forward(h, params["W%d" % n_layers], params["b%d" % n_layers])
    if y is None:
        return scores
    loss, dscores = softmax_loss(scores, y)
    grads = {}
    dh, grads["W%d" % n_layers], grads["b%d" % n_layers] = affine_backward(dscores, last_cache)
    for l in range(n_layers - 1, 0, -1):
        if bn_params:
            dh, dW, db, dgamma, dbeta = layer_backward(dh, caches[l - 1])
            grads["gamma%d" % l], grads["beta%d" % l] = dgamma, dbeta
        else:
            fc_cache, relu_cache = caches[l - 1]
            dh, dW, db = affine_backward(relu_backward(dh, relu_cache), fc_cache)
        grads["W%d" % l], grads["b%d" % l] = dW, db
    return loss, grads


def train(X, y, dims, weight_scale, learning_rate, use_batchnorm, layer_forward=None, layer_backward=None,
          epochs=10, batch_size=50, seed=0):
    """Minibatch SGD on the network; returns (params, bn_params, losses per iteration).

    A loss that becomes NaN or infinite stops the training (the last entry is then nan).
    """
    params, bn_params = init_network(dims, weight_scale, use_batchnorm, seed)
    rng = np.random.RandomState(seed + 1)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], batch_size):
            batch = order[start:start + batch_size]
            with np.errstate(over="ignore", invalid="ignore"):
                loss, grads = network_loss(params, bn_params, X[batch], y[batch], layer_forward, layer_backward)
            losses.append(loss)
            if not np.isfinite(loss):
                return params, bn_params, losses
            for key in params:
                params[key] -= learning_rate * grads[key]
    return params, bn_params, losses


def accuracy(params, bn_params, X, y, layer_forward=None):
    """Fraction of examples whose highest score is their label (test mode)."""
    with np.errstate(over="ignore", invalid="ignore"):
        scores = network_loss(params, bn_params, X, None, layer_forward)
    return float(np.mean(np.argmax(scores, axis=1) == y))


def plot_losses(curves, title="Training loss", ax=None):
    """curves: dict label -> list of losses per iteration. Returns nothing (draws)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, losses in curves.items():
        ax.plot(losses, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
