"""Hidden suite for the Practical setup assignment.

split_data is tested by what a split is (a partition of the examples, labels
kept with them, sizes within one of the fractions, the same split for the
same seed whatever the global generator's state), never by one permutation.
The samplers are tested by the distribution of many draws (Kolmogorov-Smirnov
distance of the exponent from a uniform law, computed here), by new draws on
every call and by the independence of consecutive draws, never by their RNG
calls. The search driver gets cheap deterministic training functions, defined
in the sandbox by a probe that records every call; the checks recompute each
trial's errors here from the recorded settings. random_search's child is
given the reference samplers before its cell runs (grading/stand_ins.py), so
a wrong sampler costs only its own points, however the search reaches it.

Every clause of the notebook's spec, and the check that tests it (the planted
bug of mutants.py that it catches). The signatures' defaults are given code.

split_data
- every example in exactly one set, with its label and features:
  test_split_is_a_partition_with_labels_kept (split_labels_shuffled_separately)
- m_train = int(fractions[0] m), m_dev = int(fractions[1] m), the test set the rest
  (rounded down or to the nearest): test_split_sizes_follow_the_fractions
- shuffled: test_split_is_shuffled_and_seeded (split_without_shuffle)
- the same seed gives the same split, another seed another split:
  test_split_is_shuffled_and_seeded (split_ignores_the_seed)
- numpy's global generator is left alone:
  test_split_leaves_the_global_generator_alone (split_reseeds_the_global_generator)
normalize_inputs
- mu, sigma2 (n_x, 1): mean and 1/m variance over the training set only:
  test_normalize_statistics_come_from_the_training_set (normalize_with_statistics_of_all_sets)
- (X - mu) / sqrt(sigma2 + eps), eps inside the root (eps = 0.5 in one case):
  test_normalize_training_set
- dev and test with the training set's statistics:
  test_normalize_dev_and_test_with_training_statistics (normalize_each_set_with_its_own_statistics)
diagnose_bias_variance
- avoidable bias = train - Bayes: test_diagnosis_measures_bias_from_the_bayes_error
  (diagnosis_ignores_bayes_error); a train error below the Bayes estimate is no bias
  (diagnosis_bias_of_either_sign)
- variance = dev - train: test_diagnosis_with_a_small_bayes_error (diagnosis_variance_from_bayes);
  a dev error below the train error is no variance (diagnosis_variance_of_either_sign)
- high when more than tolerance (not at least): test_diagnosis_honours_the_tolerance
  (diagnosis_at_least_the_tolerance)
- the four strings, and the course's examples: test_diagnosis_with_a_small_bayes_error,
  test_diagnosis_measures_bias_from_the_bayes_error
sample_learning_rates / sample_betas
- shape (n,): every test (draws)
- exponent (of 1 - beta) uniform on its range: test_learning_rates_are_log_uniform,
  test_betas_are_log_uniform_in_one_minus_beta (learning_rates_on_a_linear_scale, betas_on_a_linear_scale)
- numpy's global generator, so that the caller's seed controls the draws:
  test_*_are_new_independent_draws (learning_rates_private_generator, betas_private_generator)
- not seeded inside, new values on every call, independent draws:
  test_*_are_new_independent_draws (learning_rates_reseed_every_call, betas_reseed_every_call)
random_search
- n_trials calls, history one dict per trial with the four keys, in order:
  test_search_runs_n_trials_and_records_them
- one learning rate and one beta sampled per trial, in the given ranges, log scales:
  test_search_samples_the_given_ranges_on_a_log_scale (search_samples_once)
- best = lowest dev error, the first on a tie: test_search_keeps_the_lowest_dev_error
  (search_keeps_the_lowest_train_error)
zoom_in
- width factor (b - a), centred on log10(best): test_zoom_centres_a_narrower_range
  (zoom_centred_on_the_rate)
- shifted inside [a, b], width kept: test_zoom_shifts_the_range_inside_at_the_edges
  (zoom_not_shifted_inside)
"""

import functools
import math

import numpy as np
import pytest

from autograder.grading.checks import CheckFailed, as_array, check, check_close, check_shape, check_type, seeded_rng
from autograder.grading.probes import probe_function

KEYS = ("learning_rate", "beta", "train_error", "dev_error")

# Kolmogorov-Smirnov: a uniform sample of n values exceeds this distance with probability 1e-4.
KS_FACTOR = math.sqrt(-math.log(1e-4 / 2) / 2)


def ks_distance(values, low, high):
    u = np.sort((np.asarray(values, dtype=np.float64) - low) / (high - low))
    n = len(u)
    return float(max(np.max(np.arange(1, n + 1) / n - u), np.max(u - np.arange(n) / n)))


# ----------------------------------------------------------------------------
# split_data (3 points)
# ----------------------------------------------------------------------------

SPLITS = [(50, (0.6, 0.2, 0.2)), (7, (0.7, 0.15, 0.15)), (101, (1 / 3, 1 / 3, 1 / 3)), (40, (0.9, 0.1, 0.0))]


def id_data(m, n_x=3):
    """X whose first row is the example's index; Y a label that is a function of the index."""
    X = np.vstack([np.arange(m, dtype=np.float64)] + [seeded_rng(m + k).randn(m) for k in range(n_x - 1)])
    Y = ((np.arange(m) * 7) % 3 == 0).astype(np.float64).reshape(1, m)
    return X, Y


SET_NAMES = ("X_train", "Y_train", "X_dev", "Y_dev", "X_test", "Y_test")


def split_sets(learner, X, Y, fractions, seed, shapes=True):
    """The six sets of split_data; with ``shapes``, each checked by check_shape against (n_x, k) and
    (1, k), so that a set whose shape differs only by size-1 axes ((k,) for (1, k)) costs only the
    test's shape points (grading/shapes.py) and its values are still checked."""
    out = learner.split_data(X, Y, fractions, seed)
    check(
        isinstance(out, (tuple, list)) and len(out) == 6,
        "split_data should return 6 arrays",
        hint="return X_train, Y_train, X_dev, Y_dev, X_test, Y_test",
    )
    if not shapes:
        return out
    sets = []
    for X_part, Y_part, x_name, y_name in zip(out[0::2], out[1::2], SET_NAMES[0::2], SET_NAMES[1::2]):
        X_part = as_array(X_part, f"{x_name} of split_data")
        k = X_part.shape[-1] if X_part.ndim else 0
        sets.append(
            check_shape(X_part, (X.shape[0], k), f"{x_name} of split_data", hint="select columns: X[:, indices]")
        )
        sets.append(
            check_shape(
                Y_part, (1, k), f"{y_name} of split_data (like {x_name})", hint="select the same columns: Y[:, indices]"
            )
        )
    return sets


@pytest.mark.graded("split_data", points=1, shape_points=0.25)
def test_split_is_a_partition_with_labels_kept(learner):
    """Every example is in exactly one set, with its own label and all its features (several sizes)."""
    for m, fractions in SPLITS:
        X, Y = id_data(m)
        sets = split_sets(learner, X, Y, fractions, 5)
        ids, what = [], f"the split of m = {m} examples with fractions {tuple(round(f, 3) for f in fractions)}"
        for X_part, Y_part in zip(sets[0::2], sets[1::2]):
            X_part = np.asarray(X_part, dtype=np.float64).reshape(X.shape[0], -1)
            Y_part = np.asarray(Y_part, dtype=np.float64).reshape(1, -1)
            check(
                X_part.shape[1] == Y_part.shape[1],
                f"{what}: a set has a different number of examples in X and Y",
                hint="index X and Y with the same columns",
            )
            index = X_part[0].astype(int)
            check(
                bool(np.all((index >= 0) & (index < m))) and bool(np.allclose(X_part, X[:, index])),
                f"{what}: the columns of a set are not columns of X",
                hint="select whole columns: X[:, indices]",
            )
            check(
                bool(np.array_equal(Y_part, Y[:, index])),
                f"{what}: labels are not with their examples",
                hint="use the same shuffled indices for X and Y",
            )
            ids.extend(index.tolist())
        check(
            sorted(ids) == list(range(m)),
            f"{what}: not every example is in exactly one set",
            hint="cut one permutation of range(m) into three consecutive pieces",
        )


@pytest.mark.graded("split_data", points=1, shape_points=0.25)
def test_split_sizes_follow_the_fractions(learner):
    """m_train and m_dev are within one of fractions * m; the test set gets the rest."""
    for m, fractions in SPLITS:
        X, Y = id_data(m)
        sets = split_sets(learner, X, Y, fractions, 6)
        sizes = [int(np.shape(part)[1]) if np.ndim(part) == 2 else -1 for part in sets[0::2]]
        for name, size, fraction in zip(("train", "dev"), sizes, fractions):
            check(
                abs(size - fraction * m) < 1,
                f"with m = {m} and fraction {fraction:.3g} the {name} set has {size} examples",
                hint="m_train = int(fractions[0] * m), m_dev = int(fractions[1] * m)",
            )
        check(
            sum(sizes) == m,
            f"with m = {m} the three sets hold {sum(sizes)} examples",
            hint="the test set gets the examples left after train and dev",
        )


@pytest.mark.graded("split_data", points=0.5)
def test_split_is_shuffled_and_seeded(learner):
    """The split is shuffled; the same seed gives the same split whatever the global RNG; another seed another split."""
    m = 200
    X, Y = id_data(m, n_x=2)
    # The shapes are the other tests' (this one compares whole sets, whatever their shape).
    learner.seed(1)
    first = split_sets(learner, X, Y, (0.5, 0.25, 0.25), 11, shapes=False)[0]
    learner.seed(2)
    again = split_sets(learner, X, Y, (0.5, 0.25, 0.25), 11, shapes=False)[0]
    other = split_sets(learner, X, Y, (0.5, 0.25, 0.25), 12, shapes=False)[0]
    train_ids = np.asarray(first, dtype=np.float64)[0]
    check(
        set(train_ids.astype(int).tolist()) != set(range(len(train_ids))),
        "the training set is the first examples of X: the examples were not shuffled",
        hint="shuffle with rng.permutation(m) before cutting",
    )
    check(
        bool(np.array_equal(np.asarray(first), np.asarray(again))),
        "split_data with the same seed gave different splits (it depends on numpy's global generator)",
        hint="draw the permutation from np.random.RandomState(seed), not from np.random",
    )
    check(
        not np.array_equal(np.asarray(first), np.asarray(other)),
        "seeds 11 and 12 gave the same split",
        hint="pass seed to np.random.RandomState(seed)",
    )


# Seeds numpy's global generator, splits, then draws from the global generator:
# the draws are those of the seed alone when split_data leaves the generator alone.
GLOBAL_DRAWS_AFTER_SPLIT = """
def probe(ns, X, Y, fractions, seed, global_seed):
    import numpy as np
    np.random.seed(global_seed)
    ns["split_data"](np.asarray(X), np.asarray(Y), tuple(fractions), seed)
    return np.random.rand(8)
"""


@pytest.mark.graded("split_data", points=0.5)
def test_split_leaves_the_global_generator_alone(learner):
    """split_data leaves numpy's global generator alone: it neither draws from it nor reseeds it."""
    X, Y = id_data(60, n_x=2)
    for global_seed, seed in ((21, 11), (22, 0)):
        after = probe_function(
            learner,
            "split_data",
            GLOBAL_DRAWS_AFTER_SPLIT,
            X=X,
            Y=Y,
            fractions=[0.5, 0.25, 0.25],
            seed=seed,
            global_seed=global_seed,
        )
        expected = np.random.RandomState(global_seed).rand(8)
        check(
            bool(np.array_equal(np.asarray(after, dtype=np.float64), expected)),
            "split_data changed the state of numpy's global generator (it drew from it or reseeded it)",
            hint="shuffle with a generator of your own, rng = np.random.RandomState(seed), and rng.permutation(m); "
            "do not call np.random.seed or np.random.permutation",
        )


# ----------------------------------------------------------------------------
# normalize_inputs (3 points)
# ----------------------------------------------------------------------------


def normalize_problem(seed, n_x, m_train, m_dev, m_test):
    rng = seeded_rng(seed)
    scales = 10.0 ** rng.uniform(-1, 3, size=(n_x, 1))
    shifts = rng.randn(n_x, 1) * scales * 5
    X_train = shifts + scales * rng.randn(n_x, m_train)
    # dev and test come from shifted distributions, so their own statistics differ clearly
    X_dev = shifts + scales * (1.5 * rng.randn(n_x, m_dev) + 2)
    X_test = shifts + scales * (0.5 * rng.randn(n_x, m_test) - 1)
    return X_train, X_dev, X_test


NORMALIZE = [(20, 3, 50, 10, 8, 1e-8), (21, 1, 9, 4, 3, 1e-8), (22, 5, 30, 12, 1, 0.5)]


def normalize_call(learner, reference, seed, n_x, m_train, m_dev, m_test, eps):
    X_train, X_dev, X_test = normalize_problem(seed, n_x, m_train, m_dev, m_test)
    got = learner.normalize_inputs(X_train, X_dev, X_test, eps)
    check(
        isinstance(got, (tuple, list)) and len(got) == 5,
        "normalize_inputs should return 5 arrays",
        hint="return X_train_norm, X_dev_norm, X_test_norm, mu, sigma2",
    )
    return (
        got,
        reference.normalize_inputs(X_train, X_dev, X_test, eps),
        f"(n_x = {n_x}, m_train = {m_train}, eps = {eps})",
    )


@pytest.mark.graded("normalize_inputs", points=1, shape_points=0.25)
def test_normalize_statistics_come_from_the_training_set(learner, reference):
    """mu and sigma2 are the mean and (1/m) variance of each feature over the training set."""
    for case in NORMALIZE:
        got, expected, what = normalize_call(learner, reference, *case)
        check_close(got[3], expected[3], f"mu {what}", hint="mu = np.mean(X_train, axis=1, keepdims=True)", rtol=1e-6)
        check_close(
            got[4],
            expected[4],
            f"sigma2 {what}",
            hint="sigma2 = np.mean((X_train - mu) ** 2, axis=1, keepdims=True), over the training set only",
            rtol=1e-6,
        )


@pytest.mark.graded("normalize_inputs", points=1, shape_points=0.25)
def test_normalize_training_set(learner, reference):
    """The training set becomes (X_train - mu) / sqrt(sigma2 + eps)."""
    for case in NORMALIZE:
        got, expected, what = normalize_call(learner, reference, *case)
        check_close(
            got[0],
            expected[0],
            f"the normalized training set {what}",
            hint="(X_train - mu) / np.sqrt(sigma2 + eps)",
            rtol=1e-5,
            atol=1e-7,
        )


@pytest.mark.graded("normalize_inputs", points=1, shape_points=0.25)
def test_normalize_dev_and_test_with_training_statistics(learner, reference):
    """Dev and test are transformed with the training set's mu and sigma2, not their own."""
    for case in NORMALIZE:
        got, expected, what = normalize_call(learner, reference, *case)
        for name, index in (("dev", 1), ("test", 2)):
            value = np.asarray(got[index], dtype=np.float64)
            if (
                value.shape == expected[index].shape
                and value.shape[1] > 1
                and np.allclose(value.mean(axis=1), 0, atol=1e-6)
                and not np.allclose(value, expected[index])
            ):
                raise CheckFailed(
                    f"the normalized {name} set {what} has mean 0: it was normalized with its own statistics",
                    "use the training set's mu and sigma2 for the dev and test sets too",
                )
            check_close(
                value,
                expected[index],
                f"the normalized {name} set {what}",
                hint=f"(X_{name} - mu) / np.sqrt(sigma2 + eps) with mu and sigma2 of the training set",
                rtol=1e-5,
                atol=1e-7,
            )


# ----------------------------------------------------------------------------
# diagnose_bias_variance (3 points)
# ----------------------------------------------------------------------------

DIAGNOSIS_HINT = (
    "avoidable bias = train_error - bayes_error, variance = dev_error - train_error; "
    "each is high when it is more than tolerance"
)


def check_diagnoses(learner, reference, cases):
    for args in cases:
        got = learner.diagnose_bias_variance(*args)
        expected = reference.diagnose_bias_variance(*args)
        check_type(got, str, "the diagnosis")
        check(
            got == expected,
            f"the diagnosis for train error {args[0]}, dev error {args[1]}, Bayes error {args[2]}"
            + (f", tolerance {args[3]}" if len(args) > 3 else "")
            + f" is {got[:60]!r}, not the expected one",
            hint=DIAGNOSIS_HINT,
        )


@pytest.mark.graded("diagnose_bias_variance", points=1)
def test_diagnosis_with_a_small_bayes_error(learner, reference):
    """The four cases of the course (Bayes error near 0), and others, some with the dev error below the train error."""
    check_diagnoses(
        learner,
        reference,
        [
            (0.01, 0.11, 0.0),
            (0.15, 0.16, 0.0),
            (0.15, 0.30, 0.0),
            (0.005, 0.01, 0.0),
            (0.0, 0.05, 0.0),
            (0.3, 0.31, 0.001),
            # The dev error below the training error is no variance problem, however far below.
            (0.10, 0.05, 0.0),
            (0.02, 0.0, 0.01),
        ],
    )


@pytest.mark.graded("diagnose_bias_variance", points=1)
def test_diagnosis_measures_bias_from_the_bayes_error(learner, reference):
    """Avoidable bias is measured from the Bayes error, not from 0."""
    check_diagnoses(
        learner,
        reference,
        [
            (0.08, 0.10, 0.075),
            (0.08, 0.10, 0.01),
            (0.2, 0.21, 0.19),
            (0.2, 0.3, 0.19),
            (0.2, 0.3, 0.1),
            (0.12, 0.125, 0.07),
            # A training error below the Bayes estimate is no bias problem, however far below.
            (0.05, 0.06, 0.1),
        ],
    )


@pytest.mark.graded("diagnose_bias_variance", points=1)
def test_diagnosis_honours_the_tolerance(learner, reference):
    """The tolerance argument decides what counts as high; a gap equal to it is not more than it."""
    check_diagnoses(
        learner,
        reference,
        [
            (0.05, 0.09, 0.0, 0.1),
            (0.05, 0.09, 0.0, 0.03),
            (0.05, 0.09, 0.0, 0.045),
            (0.3, 0.32, 0.1, 0.25),
            (0.3, 0.32, 0.1, 0.005),
            # Exactly at the tolerance is not "more than" it (exact binary fractions, no rounding).
            (0.5, 0.5, 0.25, 0.25),
            (0.25, 0.5, 0.25, 0.25),
            (0.5, 0.75, 0.25, 0.25),
            (0.5, 0.75, 0.125, 0.25),
        ],
    )


# ----------------------------------------------------------------------------
# sample_learning_rates and sample_betas (2 points each)
# ----------------------------------------------------------------------------


def draws(learner, function, n, *args):
    value = learner.call(function, n, *args)
    return check_shape(value, (n,), f"{function}({n}, ...)", hint="return an array of n values").astype(np.float64)


def check_log_uniform(exponents, low, high, what, hint):
    check(
        bool(np.all((exponents >= low - 1e-9) & (exponents <= high + 1e-9))),
        f"{what}: some draws are outside the range",
        hint=hint,
    )
    distance = ks_distance(exponents, low, high)
    check(
        distance < KS_FACTOR / math.sqrt(len(exponents)),
        f"{what}: the exponents are not uniform on their range (Kolmogorov-Smirnov distance {distance:.3f})",
        hint=hint,
    )


def check_fresh_draws(learner, function, args, transform):
    # The caller's seed controls the draws: numpy's global generator, not one of the function's own.
    learner.seed(9)
    seeded = draws(learner, function, 50, *args)
    learner.seed(9)
    reseeded = draws(learner, function, 50, *args)
    check(
        bool(np.array_equal(seeded, reseeded)),
        f"{function} gave other values after the caller seeded numpy's global generator with the same seed: "
        "it does not draw from numpy's global generator",
        hint="draw with np.random.uniform (numpy's global generator), not with a generator of your own "
        "such as np.random.default_rng() or np.random.RandomState()",
    )
    learner.seed(4)
    first = transform(draws(learner, function, 2000, *args))
    second = transform(draws(learner, function, 2000, *args))
    check(
        not np.allclose(first, second),
        f"two calls of {function} gave the same values",
        hint="do not seed numpy's generator inside the function: the caller seeds once",
    )
    lag = float(np.corrcoef(first[:-1], first[1:])[0, 1])
    check(
        abs(lag) < 0.15,
        f"consecutive draws of {function} are correlated ({lag:.2f})",
        hint="draw n independent values, e.g. np.random.uniform(low, high, size=n)",
    )


LR_RANGES = [(-4, 0), (-6, -1), (-2.5, 1.5)]
BETA_RANGES = [(0.9, 0.999), (0.5, 0.99), (0.99, 0.9999)]


@pytest.mark.graded("sample_learning_rates", points=1, shape_points=0.25)
def test_learning_rates_are_log_uniform(learner):
    """log10 of the learning rates is uniform on [low_exp, high_exp] (several ranges, 20000 draws)."""
    learner.seed(3)
    for low, high in LR_RANGES:
        values = draws(learner, "sample_learning_rates", 20000, low, high)
        check(bool(np.all(values > 0)), "learning rates must be positive", hint="alpha = 10 ** r")
        check_log_uniform(
            np.log10(values),
            low,
            high,
            f"learning rates in [10^{low}, 10^{high}]",
            "r = np.random.uniform(low_exp, high_exp, size=n); alpha = 10 ** r",
        )


@pytest.mark.graded("sample_learning_rates", points=1, shape_points=0.25)
def test_learning_rates_are_new_independent_draws(learner):
    """The caller's seed of numpy's global generator controls the draws; each call draws new, independent values."""
    check_fresh_draws(learner, "sample_learning_rates", (-4, 0), np.log10)


@pytest.mark.graded("sample_betas", points=1, shape_points=0.25)
def test_betas_are_log_uniform_in_one_minus_beta(learner):
    """log10(1 - beta) is uniform on [log10(1 - high), log10(1 - low)] (several ranges, 20000 draws)."""
    learner.seed(5)
    for low, high in BETA_RANGES:
        values = draws(learner, "sample_betas", 20000, low, high)
        check(bool(np.all(values < 1)), "betas must be below 1", hint="beta = 1 - 10 ** r with r < 0")
        check_log_uniform(
            np.log10(1 - values),
            math.log10(1 - high),
            math.log10(1 - low),
            f"betas in [{low}, {high}]",
            "r = np.random.uniform(np.log10(1 - high), np.log10(1 - low), size=n); beta = 1 - 10 ** r",
        )


@pytest.mark.graded("sample_betas", points=1, shape_points=0.25)
def test_betas_are_new_independent_draws(learner):
    """The caller's seed of numpy's global generator controls the draws; each call draws new, independent values."""
    check_fresh_draws(learner, "sample_betas", (0.9, 0.999), lambda b: np.log10(1 - b))


# ----------------------------------------------------------------------------
# random_search (3 points)
# ----------------------------------------------------------------------------

# Deterministic training functions, cheap: the dev error a formula of the settings,
# "bowl" smallest near lr = 10^-2, beta = 0.99, "plateau" one value for all (ties);
# the train error a function of the call's number, so the lowest train error is
# rarely the lowest dev error.
TRAINING = {
    "bowl": "0.1 + (math.log10(learning_rate) + 2) ** 2 / 10 + (math.log10(1 - beta) + 2) ** 2 / 20",
    "plateau": "0.25",
}

RUN_SEARCH = """
def probe(ns, n_trials, lr_exp_range, beta_range, dev_formula):
    import math
    if not callable(ns.get("random_search")):
        raise NameError("random_search is not defined", name="random_search")
    calls = []
    formula = compile(dev_formula, "<training function>", "eval")

    def train_and_evaluate(learning_rate, beta):
        calls.append([float(learning_rate), float(beta)])
        dev_error = eval(formula, {"math": math}, {"learning_rate": learning_rate, "beta": beta})
        return (len(calls) * 0.37) % 0.2, dev_error

    result = ns["random_search"](train_and_evaluate, n_trials, tuple(lr_exp_range), tuple(beta_range))
    return result, calls
"""


@functools.cache
def compiled(formula):
    return compile(formula, "<training function>", "eval")


def errors_of(call_number, learning_rate, beta, formula):
    dev_error = eval(compiled(formula), {"math": math}, {"learning_rate": learning_rate, "beta": beta})
    return (call_number * 0.37) % 0.2, dev_error


def search(learner, training, n_trials, lr_exp_range=(-4, 0), beta_range=(0.9, 0.999), seed=8):
    learner.seed(seed)
    result, calls = learner.probe(
        RUN_SEARCH,
        n_trials=n_trials,
        lr_exp_range=list(lr_exp_range),
        beta_range=list(beta_range),
        dev_formula=TRAINING[training],
        what="random_search",
    )
    check(
        isinstance(result, (tuple, list)) and len(result) == 2,
        "random_search should return (best, history)",
        hint="return best, history",
    )
    best, history = result
    check_type(best, dict, "best")
    check_type(history, (list, tuple), "history")
    for trial in [best, *history]:
        check_type(trial, dict, "a trial")
        missing = [k for k in KEYS if k not in trial]
        check(not missing, f"a trial lacks the keys {missing}", hint=f"each trial is a dict with the keys {list(KEYS)}")
    return best, list(history), [tuple(c) for c in calls]


def check_history(history, calls, training, what):
    check(
        len(history) == len(calls),
        f"{what}: history has {len(history)} trials for {len(calls)} calls of train_and_evaluate",
        hint="append one dict per trial",
    )
    for number, (trial, (learning_rate, beta)) in enumerate(zip(history, calls), start=1):
        train_error, dev_error = errors_of(number, learning_rate, beta, TRAINING[training])
        for key, expected in (
            ("learning_rate", learning_rate),
            ("beta", beta),
            ("train_error", train_error),
            ("dev_error", dev_error),
        ):
            value = trial[key]
            check(
                isinstance(value, (int, float, np.floating, np.ndarray))
                and np.size(value) == 1
                and bool(np.isclose(float(np.asarray(value).reshape(())), expected, rtol=1e-9, atol=1e-12)),
                f"{what}: trial {number}'s {key} is not the value of the call it records",
                hint="record the settings you passed to train_and_evaluate and the (train_error, dev_error) it returned, "
                "in the order of the calls",
            )


@pytest.mark.graded("random_search", points=1)
def test_search_runs_n_trials_and_records_them(learner):
    """train_and_evaluate is called n_trials times; history records each call, in order."""
    for n_trials in (1, 12):
        best, history, calls = search(learner, "bowl", n_trials)
        what = f"random_search with n_trials = {n_trials}"
        check(len(calls) == n_trials, f"{what} called train_and_evaluate {len(calls)} times", hint="one call per trial")
        check_history(history, calls, "bowl", what)


@pytest.mark.graded("random_search", points=1)
def test_search_keeps_the_lowest_dev_error(learner):
    """best is the trial with the lowest dev error (the first one on a tie), never the lowest train error."""
    for training in ("bowl", "plateau"):
        best, history, calls = search(learner, training, 25)
        what = f"random_search on the {training} training function"
        check_history(history, calls, training, what)
        dev_errors = [errors_of(i, lr, beta, TRAINING[training])[1] for i, (lr, beta) in enumerate(calls, start=1)]
        chosen = int(np.argmin(dev_errors))
        expected = history[chosen]
        same = all(bool(np.isclose(float(best[k]), float(expected[k]), rtol=1e-9, atol=1e-12)) for k in KEYS)
        check(
            same,
            f"{what}: best is not the trial with the lowest dev error"
            + (" (on a tie, keep the first)" if training == "plateau" else ""),
            hint="best = min(history, key=lambda trial: trial['dev_error'])",
        )


@pytest.mark.graded("random_search", points=1)
def test_search_samples_the_given_ranges_on_a_log_scale(learner):
    """The trials' learning rates and betas are sampled in the given ranges, on log scales."""
    for lr_exp_range, beta_range in (((-5, -1), (0.9, 0.999)), ((-2, 1), (0.5, 0.99))):
        _, _, calls = search(learner, "plateau", 200, lr_exp_range, beta_range)
        check(len(calls) == 200, "random_search did not run n_trials trials", hint="one call per trial")
        learning_rates, betas = np.array(calls).T
        check(
            bool(np.all(learning_rates > 0)) and bool(np.all(betas < 1)),
            "random_search passed a learning rate <= 0 or a beta >= 1",
            hint="use sample_learning_rates and sample_betas",
        )
        hint = "sample with sample_learning_rates(1, *lr_exp_range) and sample_betas(1, *beta_range) in every trial"
        check_log_uniform(
            np.log10(learning_rates), *lr_exp_range, f"learning rates of a search over 10^{lr_exp_range}", hint
        )
        check_log_uniform(
            np.log10(1 - betas),
            math.log10(1 - beta_range[1]),
            math.log10(1 - beta_range[0]),
            f"betas of a search over {beta_range}",
            hint,
        )


# ----------------------------------------------------------------------------
# zoom_in (2 points)
# ----------------------------------------------------------------------------


def check_zoom(learner, reference, cases):
    for best, lr_exp_range, factor in cases:
        got = learner.zoom_in(best, lr_exp_range, factor)
        expected = np.asarray(reference.zoom_in(best, lr_exp_range, factor), dtype=np.float64)
        check(
            isinstance(got, (tuple, list, np.ndarray)) and np.size(got) == 2,
            "zoom_in should return (new_low_exp, new_high_exp)",
            hint="return new_low, new_high",
        )
        check_close(
            np.asarray(got, dtype=np.float64).reshape(2),
            expected,
            f"zoom_in(10^{math.log10(best):.2f}, {lr_exp_range}, {factor})",
            hint="width = factor * (high - low), centred on np.log10(best_learning_rate), "
            "then shifted inside [low, high] keeping the width",
            rtol=1e-7,
            atol=1e-9,
        )


@pytest.mark.graded("zoom_in", points=1, shape_points=0.25)
def test_zoom_centres_a_narrower_range(learner, reference):
    """Away from the edges the new range is centred on log10(best) with width factor * (high - low)."""
    check_zoom(learner, reference, [(10**-2.2, (-4, 0), 0.25), (10**0.3, (-3, 2), 0.2), (10**-5.5, (-8, -2), 0.5)])


@pytest.mark.graded("zoom_in", points=1, shape_points=0.25)
def test_zoom_shifts_the_range_inside_at_the_edges(learner, reference):
    """A best learning rate near an edge gives a range shifted inside the coarse one, width kept."""
    check_zoom(
        learner,
        reference,
        [(10**-3.9, (-4, 0), 0.25), (10**-0.1, (-4, 0), 0.25), (1.0, (-4, 0), 0.5), (10**-6, (-6, -1), 0.1)],
    )
