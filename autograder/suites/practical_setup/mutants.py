"""Planted bugs of the Practical setup assignment, and other correct answers (format: autograder/course/mutants.py).

``dlgrade validate practical_setup --mutants`` applies each edit (an exact text of the
function's solution source, replaced once) to the solution notebook, grades
it, and fails unless the mutant loses points on the functions in ``costs``
(default: its own) and keeps full marks everywhere else.
"""

from autograder.course.bindings import FORMS, bound_source
from autograder.course.mutants import Alternative, Mutant

MUTANTS = [
    # The classic mistake: dev and test normalized with their own statistics.
    Mutant(
        "normalize_each_set_with_its_own_statistics",
        "normalize_inputs",
        (
            "    X_dev_norm = (X_dev - mu) / scale\n    X_test_norm = (X_test - mu) / scale\n",
            "    X_dev_norm = (X_dev - X_dev.mean(axis=1, keepdims=True)) / X_dev.std(axis=1, keepdims=True)\n"
            "    X_test_norm = (X_test - X_test.mean(axis=1, keepdims=True)) / X_test.std(axis=1, keepdims=True)\n",
        ),
    ),
    # Statistics of all the data (train, dev and test together).
    Mutant(
        "normalize_with_statistics_of_all_sets",
        "normalize_inputs",
        (
            "    mu = np.mean(X_train, axis=1, keepdims=True)\n    sigma2 = np.mean((X_train - mu) ** 2, axis=1, keepdims=True)\n",
            "    everything = np.hstack([X_train, X_dev, X_test])\n"
            "    mu = np.mean(everything, axis=1, keepdims=True)\n"
            "    sigma2 = np.mean((everything - mu) ** 2, axis=1, keepdims=True)\n",
        ),
    ),
    # The split without a shuffle.
    Mutant("split_without_shuffle", "split_data", ("order = rng.permutation(m)", "order = np.arange(m)")),
    # The global generator, not seeded: the same seed gives different splits.
    Mutant("split_ignores_the_seed", "split_data", ("order = rng.permutation(m)", "order = np.random.permutation(m)")),
    # Seeded, but through the global generator: the same seed gives the same split, and the caller's
    # generator is reseeded behind its back (the spec: numpy's global generator is left alone).
    Mutant(
        "split_reseeds_the_global_generator",
        "split_data",
        ("order = rng.permutation(m)", "np.random.seed(seed)\n    order = np.random.permutation(m)"),
        fails=["leaves numpy's global generator alone"],
    ),
    # Labels shuffled with another permutation than the examples.
    Mutant(
        "split_labels_shuffled_separately",
        "split_data",
        (
            "    return X[:, train], Y[:, train], X[:, dev], Y[:, dev], X[:, test], Y[:, test]",
            "    labels = rng.permutation(m)\n"
            "    return (X[:, train], Y[:, labels[:len(train)]], X[:, dev], Y[:, labels[len(train):len(train) + len(dev)]],\n"
            "            X[:, test], Y[:, labels[len(train) + len(dev):]])",
        ),
    ),
    # Shape slips (grading/shapes.py): the right values whose shape differs from the notebook's only
    # by size-1 axes lose only the points of the shape checks, never those of the values.
    # The labels as vectors, (k,) where the notebook says (1, k).
    Mutant(
        "split_labels_as_vectors",
        "split_data",
        (
            "    return X[:, train], Y[:, train], X[:, dev], Y[:, dev], X[:, test], Y[:, test]",
            "    return X[:, train], Y[0, train], X[:, dev], Y[0, dev], X[:, test], Y[0, test]",
        ),
        fails=["Shapes as specified"],
        feedback=["values right; shape (30,), expected (1, 30)"],
    ),
    # Statistics without keepdims, broadcast by hand where they are used: mu and sigma2 come back
    # of shape (n_x,) where the notebook says (n_x, 1).
    Mutant(
        "normalize_statistics_without_keepdims",
        "normalize_inputs",
        (
            "    mu = np.mean(X_train, axis=1, keepdims=True)\n"
            "    sigma2 = np.mean((X_train - mu) ** 2, axis=1, keepdims=True)\n"
            "    scale = np.sqrt(sigma2 + eps)\n"
            "    X_train_norm = (X_train - mu) / scale\n"
            "    X_dev_norm = (X_dev - mu) / scale\n"
            "    X_test_norm = (X_test - mu) / scale\n",
            "    mu = np.mean(X_train, axis=1)\n"
            "    sigma2 = np.var(X_train, axis=1)\n"
            "    scale = np.sqrt(sigma2 + eps)[:, np.newaxis]\n"
            "    X_train_norm = (X_train - mu[:, np.newaxis]) / scale\n"
            "    X_dev_norm = (X_dev - mu[:, np.newaxis]) / scale\n"
            "    X_test_norm = (X_test - mu[:, np.newaxis]) / scale\n",
        ),
        fails=["Shapes as specified"],
        feedback=["values right; shape (3,), expected (3, 1)"],
    ),
    # Bias measured from 0 instead of the Bayes error.
    Mutant(
        "diagnosis_ignores_bayes_error",
        "diagnose_bias_variance",
        ("high_bias = train_error - bayes_error > tolerance", "high_bias = train_error > tolerance"),
    ),
    # Variance measured from the Bayes error instead of the training error.
    Mutant(
        "diagnosis_variance_from_bayes",
        "diagnose_bias_variance",
        ("high_variance = dev_error - train_error > tolerance", "high_variance = dev_error - bayes_error > tolerance"),
    ),
    # "At least" the tolerance instead of "more than" it: a gap equal to the tolerance counts as high.
    Mutant(
        "diagnosis_at_least_the_tolerance",
        "diagnose_bias_variance",
        [
            ("high_bias = train_error - bayes_error > tolerance", "high_bias = train_error - bayes_error >= tolerance"),
            (
                "high_variance = dev_error - train_error > tolerance",
                "high_variance = dev_error - train_error >= tolerance",
            ),
        ],
        fails=["a gap equal to it"],
    ),
    # The size of the gap, whatever its sign: a dev error below the training error counts as variance.
    Mutant(
        "diagnosis_variance_of_either_sign",
        "diagnose_bias_variance",
        (
            "high_variance = dev_error - train_error > tolerance",
            "high_variance = abs(dev_error - train_error) > tolerance",
        ),
        fails=["dev error below the train error"],
    ),
    # The same for the bias: a training error below the Bayes estimate counts as bias.
    Mutant(
        "diagnosis_bias_of_either_sign",
        "diagnose_bias_variance",
        (
            "high_bias = train_error - bayes_error > tolerance",
            "high_bias = abs(train_error - bayes_error) > tolerance",
        ),
        fails=["not from 0"],
    ),
    # Uniform on [10^a, 10^b] instead of on the exponent.
    Mutant(
        "learning_rates_on_a_linear_scale",
        "sample_learning_rates",
        (
            "    r = np.random.uniform(low_exp, high_exp, size=n)\n    alphas = 10.0 ** r\n",
            "    alphas = np.random.uniform(10.0 ** low_exp, 10.0 ** high_exp, size=n)\n",
        ),
    ),
    # Reseeding the global generator on every call (the course templates' habit).
    Mutant(
        "learning_rates_reseed_every_call",
        "sample_learning_rates",
        (
            "    r = np.random.uniform(low_exp, high_exp, size=n)\n",
            "    np.random.seed(0)\n    r = np.random.uniform(low_exp, high_exp, size=n)\n",
        ),
    ),
    # An unseeded generator of the function's own: new values on every call, but the caller's seed
    # does not control them (the spec: numpy's global generator).
    Mutant(
        "learning_rates_private_generator",
        "sample_learning_rates",
        (
            "r = np.random.uniform(low_exp, high_exp, size=n)",
            "r = np.random.default_rng().uniform(low_exp, high_exp, size=n)",
        ),
        fails=["caller's seed"],
    ),
    Mutant(
        "betas_private_generator",
        "sample_betas",
        (
            "r = np.random.uniform(np.log10(1 - high), np.log10(1 - low), size=n)",
            "r = np.random.RandomState().uniform(np.log10(1 - high), np.log10(1 - low), size=n)",
        ),
        fails=["caller's seed"],
    ),
    # Reseeding the global generator on every call (do not seed it here).
    Mutant(
        "betas_reseed_every_call",
        "sample_betas",
        (
            "    r = np.random.uniform(np.log10(1 - high), np.log10(1 - low), size=n)\n",
            "    np.random.seed(1)\n    r = np.random.uniform(np.log10(1 - high), np.log10(1 - low), size=n)\n",
        ),
    ),
    # beta itself on a linear scale.
    Mutant(
        "betas_on_a_linear_scale",
        "sample_betas",
        (
            "    r = np.random.uniform(np.log10(1 - high), np.log10(1 - low), size=n)\n    betas = 1 - 10.0 ** r\n",
            "    betas = np.random.uniform(low, high, size=n)\n",
        ),
    ),
    # The best trial chosen by its training error.
    Mutant(
        "search_keeps_the_lowest_train_error",
        "random_search",
        (
            'best = min(history, key=lambda trial: trial["dev_error"])',
            'best = min(history, key=lambda trial: trial["train_error"])',
        ),
    ),
    # One learning rate drawn for the whole search.
    Mutant(
        "search_samples_once",
        "random_search",
        (
            "    for _ in range(n_trials):\n        learning_rate = float(sample_learning_rates(1, *lr_exp_range)[0])\n",
            "    learning_rate = float(sample_learning_rates(1, *lr_exp_range)[0])\n    for _ in range(n_trials):\n",
        ),
    ),
    # The zoomed range not shifted back inside the coarse one.
    Mutant(
        "zoom_not_shifted_inside",
        "zoom_in",
        ("    new_low = min(max(new_low, low), high - width)   # shift inside [low, high]\n", ""),
    ),
    # Centred on the best learning rate itself rather than its exponent.
    Mutant(
        "zoom_centred_on_the_rate", "zoom_in", ("center = np.log10(best_learning_rate)", "center = best_learning_rate")
    ),
]

# A search that binds the samplers when its cell runs (an alias at the top of the cell, a default
# argument, a closure, a class attribute) is graded with the reference ones all the same
# (grading/stand_ins.py): the sampler's bug costs only the sampler, never the search beside it.
MUTANTS += [
    Mutant(
        f"learning_rates_on_a_linear_scale_search_binds_it_by_{form}",
        "sample_learning_rates",
        (
            "    r = np.random.uniform(low_exp, high_exp, size=n)\n    alphas = 10.0 ** r\n",
            "    alphas = np.random.uniform(10.0 ** low_exp, 10.0 ** high_exp, size=n)\n",
        ),
        beside={
            "random_search": bound_source(
                "practical_setup", "random_search", ["sample_learning_rates", "sample_betas"], form
            )
        },
    )
    for form in FORMS
]

# function -> the whole source of its graded cell, written differently from the reference.
WRITTEN_DIFFERENTLY = {
    "split_data": """
import numpy as np

def split_data(X, Y, fractions=(0.8, 0.1, 0.1), seed=0):
    m = X.shape[1]
    rng = np.random.default_rng(seed)
    index = np.arange(m)
    rng.shuffle(index)
    cuts = [round(fractions[0] * m), round(fractions[0] * m) + round(fractions[1] * m)]
    train, dev, test = np.split(index, cuts)
    return X[:, train], Y[:, train], X[:, dev], Y[:, dev], X[:, test], Y[:, test]
""",
    "normalize_inputs": """
import numpy as np

def normalize_inputs(X_train, X_dev, X_test, eps=1e-8):
    mu = X_train.mean(axis=1).reshape(-1, 1)
    sigma2 = X_train.var(axis=1).reshape(-1, 1)
    normalized = [(X - mu) / np.sqrt(sigma2 + eps) for X in (X_train, X_dev, X_test)]
    return (*normalized, mu, sigma2)
""",
    "diagnose_bias_variance": """
def diagnose_bias_variance(train_error, dev_error, bayes_error=0.0, tolerance=0.015):
    problems = []
    if train_error - bayes_error > tolerance:
        problems.append("high bias")
    if dev_error - train_error > tolerance:
        problems.append("high variance")
    return " and ".join(problems) if problems else "ok"
""",
    "sample_learning_rates": """
import numpy as np

def sample_learning_rates(n, low_exp=-4, high_exp=0):
    return 10 ** (low_exp + (high_exp - low_exp) * np.random.rand(n))
""",
    "sample_betas": """
import numpy as np

def sample_betas(n, low=0.9, high=0.999):
    a, b = np.log10(1 - high), np.log10(1 - low)
    return np.array([1 - 10 ** np.random.uniform(a, b) for _ in range(n)])
""",
    # Samples with np.random directly and keeps the best as it goes.
    "random_search": """
import numpy as np

def random_search(train_and_evaluate, n_trials, lr_exp_range=(-4, 0), beta_range=(0.9, 0.999)):
    best, history = None, []
    low_r, high_r = np.log10(1 - beta_range[1]), np.log10(1 - beta_range[0])
    for trial in range(n_trials):
        lr = 10 ** np.random.uniform(*lr_exp_range)
        beta = 1 - 10 ** np.random.uniform(low_r, high_r)
        train_error, dev_error = train_and_evaluate(lr, beta)
        record = dict(learning_rate=lr, beta=beta, train_error=train_error, dev_error=dev_error)
        history.append(record)
        if best is None or dev_error < best["dev_error"]:
            best = record
    return best, history
""",
    "zoom_in": """
import math
import numpy as np

def zoom_in(best_learning_rate, lr_exp_range, factor=0.25):
    low, high = lr_exp_range
    half = factor * (high - low) / 2
    center = np.clip(math.log10(best_learning_rate), low + half, high - half)
    return center - half, center + half
""",
}

# All of them in one notebook (random_search calls the alternative samplers): full marks.
ALTERNATIVES = [Alternative("written_differently", WRITTEN_DIFFERENTLY)]

# random_search calls the samplers (the suite swaps in the reference ones while it grades the
# search): a sampler bug never shares a notebook with a search bug, so a leak into the search shows.
KEEP_APART = [({"sample_learning_rates", "sample_betas"}, {"random_search"})]
