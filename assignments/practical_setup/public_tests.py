"""Public tests for the Practical setup assignment, run inside the notebook.

Each `<function>_test(target)` runs a few friendly checks on small fixed
inputs, prints "All tests passed." or raises an AssertionError that says what
is wrong. The sampling tests check the distribution of many draws, never one
particular sequence, so any correct way of drawing passes. The hidden grader
runs more checks on other inputs.
"""
import numpy as np

KEYS = ("learning_rate", "beta", "train_error", "dev_error")


def split_data_test(target):
    m = 50
    X = np.vstack([np.arange(m), 10 * np.arange(m)]).astype(float)   # column i is example i
    Y = (np.arange(m) % 2).reshape(1, m).astype(float)
    out = target(X, Y, (0.6, 0.2, 0.2), seed=3)
    assert isinstance(out, tuple) and len(out) == 6, "return (X_train, Y_train, X_dev, Y_dev, X_test, Y_test)"
    X_train, Y_train, X_dev, Y_dev, X_test, Y_test = out
    assert (X_train.shape, X_dev.shape, X_test.shape) == ((2, 30), (2, 10), (2, 10)), \
        f"the sets have shapes {X_train.shape}, {X_dev.shape}, {X_test.shape}; expected (2, 30), (2, 10), (2, 10)"
    ids = np.concatenate([X_train[0], X_dev[0], X_test[0]])
    assert sorted(ids) == list(range(m)), "every example must be in exactly one set"
    labels = np.concatenate([Y_train[0], Y_dev[0], Y_test[0]])
    assert np.array_equal(labels, ids % 2), "each label must stay with its example: index X and Y with the same order"
    assert not np.array_equal(X_train[0], np.arange(30)), "shuffle the examples before splitting"
    again = target(X, Y, (0.6, 0.2, 0.2), seed=3)
    assert np.array_equal(again[0], X_train), "the same seed must give the same split: use np.random.RandomState(seed)"
    other = target(X, Y, (0.6, 0.2, 0.2), seed=4)
    assert not np.array_equal(other[0], X_train), "another seed should give another split"
    print("All tests passed.")


def normalize_inputs_test(target):
    rng = np.random.RandomState(0)
    X_train = np.vstack([1000 + 50 * rng.randn(40), 0.1 * rng.randn(40)])
    X_dev = np.vstack([1100 + 50 * rng.randn(10), 0.2 + 0.1 * rng.randn(10)])
    X_test = X_dev[:, :3] + 1
    out = target(X_train, X_dev, X_test)
    assert isinstance(out, tuple) and len(out) == 5, "return (X_train_norm, X_dev_norm, X_test_norm, mu, sigma2)"
    X_train_n, X_dev_n, X_test_n, mu, sigma2 = out
    assert np.shape(mu) == (2, 1) and np.shape(sigma2) == (2, 1), \
        f"mu and sigma2 should have shape (2, 1), got {np.shape(mu)} and {np.shape(sigma2)}: use keepdims=True"
    assert np.allclose(mu, X_train.mean(axis=1, keepdims=True)), "mu is the mean of each feature over the training set"
    assert np.allclose(sigma2, X_train.var(axis=1, keepdims=True)), \
        "sigma2 is the variance of each feature over the training set (divide by m_train)"
    assert np.allclose(X_train_n.mean(axis=1), 0, atol=1e-7) and np.allclose(X_train_n.std(axis=1), 1, atol=1e-4), \
        "the normalized training set should have mean 0 and standard deviation 1 for every feature"
    scale = np.sqrt(sigma2 + 1e-8)
    assert np.allclose(X_dev_n, (X_dev - mu) / scale), \
        "normalize the dev set with the training set's mu and sigma2, not with its own statistics"
    assert np.allclose(X_test_n, (X_test - mu) / scale), "normalize the test set with the training set's mu and sigma2"
    print("All tests passed.")


def diagnose_bias_variance_test(target):
    cases = [((0.01, 0.11, 0.0), "high variance"), ((0.15, 0.16, 0.0), "high bias"),
             ((0.15, 0.30, 0.0), "high bias and high variance"), ((0.005, 0.01, 0.0), "ok"),
             ((0.08, 0.10, 0.075), "high variance"), ((0.08, 0.10, 0.01), "high bias and high variance"),
             ((0.2, 0.21, 0.19), "ok")]
    for (train_error, dev_error, bayes_error), expected in cases:
        got = target(train_error, dev_error, bayes_error)
        assert got == expected, (
            f"train error {train_error}, dev error {dev_error}, Bayes error {bayes_error}: got {got!r}, expected "
            f"{expected!r}. Avoidable bias = train - Bayes, variance = dev - train; each is high above the tolerance")
    print("All tests passed.")


def _uniform_ks(values, low, high):
    """Kolmogorov-Smirnov distance between the sample and U[low, high]."""
    u = np.sort((np.asarray(values, dtype=float) - low) / (high - low))
    n = len(u)
    return float(max(np.max(np.arange(1, n + 1) / n - u), np.max(u - np.arange(n) / n)))


def sample_learning_rates_test(target):
    np.random.seed(0)
    alphas = np.asarray(target(5000, -4, 0))
    assert alphas.shape == (5000,), f"expected shape (5000,), got {alphas.shape}"
    assert np.all((alphas >= 1e-4) & (alphas <= 1)), "every learning rate must be in [10^-4, 1]"
    assert np.mean(alphas < 1e-1) > 0.6, \
        f"only {np.mean(alphas < 0.1):.0%} of the samples are below 0.1 (expected 75%): sample the exponent, not alpha"
    assert _uniform_ks(np.log10(alphas), -4, 0) < 0.04, "log10(alpha) should be uniform on [-4, 0]"
    assert not np.array_equal(np.asarray(target(5, -4, 0)), np.asarray(target(5, -4, 0))), \
        "two calls gave the same values: do not seed the generator inside the function"
    print("All tests passed.")


def sample_betas_test(target):
    np.random.seed(1)
    betas = np.asarray(target(5000, 0.9, 0.999))
    assert betas.shape == (5000,), f"expected shape (5000,), got {betas.shape}"
    assert np.all((betas >= 0.9) & (betas <= 0.999)), "every beta must be in [0.9, 0.999]"
    assert _uniform_ks(np.log10(1 - betas), -3, -1) < 0.04, \
        "log10(1 - beta) should be uniform on [-3, -1]: sample r, then beta = 1 - 10 ** r"
    assert not np.array_equal(np.asarray(target(5)), np.asarray(target(5))), \
        "two calls gave the same values: do not seed the generator inside the function"
    print("All tests passed.")


def random_search_test(target):
    calls = []

    def train_and_evaluate(learning_rate, beta):
        calls.append((learning_rate, beta))
        dev_error = 0.1 + (np.log10(learning_rate) + 2) ** 2 / 10
        return dev_error - 0.01, dev_error

    np.random.seed(2)
    out = target(train_and_evaluate, 40, (-4, 0), (0.9, 0.999))
    assert isinstance(out, tuple) and len(out) == 2, "return (best, history)"
    best, history = out
    assert len(calls) == 40, f"train_and_evaluate was called {len(calls)} times, expected n_trials = 40"
    assert len(history) == 40, "history should have one entry per trial"
    for trial, (learning_rate, beta) in zip(history, calls):
        assert isinstance(trial, dict) and set(KEYS) <= set(trial), f"each trial is a dict with the keys {KEYS}"
        assert np.isclose(trial["learning_rate"], learning_rate) and np.isclose(trial["beta"], beta), \
            "history must list the trials in the order they were run, with the values passed to train_and_evaluate"
        assert 1e-4 <= learning_rate <= 1 and 0.9 <= beta <= 0.999, "sample within lr_exp_range and beta_range"
    assert best["dev_error"] == min(t["dev_error"] for t in history), "best is the trial with the lowest dev error"
    print("All tests passed.")


def zoom_in_test(target):
    cases = [((1e-2, (-4, 0), 0.25), (-2.5, -1.5)), ((0.5, (-4, 0), 0.25), (-1.0, 0.0)),
             ((1e-4, (-4, 0), 0.5), (-4.0, -2.0)), ((10 ** -1.2, (-3, 1), 0.1), (-1.4, -1.0))]
    for (best, lr_exp_range, factor), expected in cases:
        got = target(best, lr_exp_range, factor)
        assert np.allclose(got, expected), (
            f"zoom_in({best:g}, {lr_exp_range}, {factor}) returned {got}, expected {expected}: width "
            "factor * (high - low), centred on log10(best), shifted inside the coarse range")
    print("All tests passed.")


def check_all(namespace=None):
    """Run every public test of the notebook and print a table of what passed, then how to submit.

    The notebook's last cell calls ``check_all()``; ``namespace`` defaults to the
    variables of the notebook that calls it.
    """
    import inspect
    import sys

    from notebook_check import check_all as print_check_table  # copied here by `dlgrade release`

    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    print_check_table(sys.modules[__name__], namespace)
