"""Hidden suite for assignment 1, Initialization.

Zeros initialization is deterministic and compared exactly with the reference.
The random initializations are tested on their mathematics only: keys, shapes,
float dtype and zero biases against the reference, then the statistics of W
on large layers (mean 0, standard deviation 10 or sqrt(2 / n_prev), Gaussian
shape, no copies between or within layers). Nothing depends on one order of
random draws or on the learner seeding (or not seeding) the generator.

Tolerances come from the sampling distribution. For N independent draws of
N(0, s^2), the sample standard deviation has relative standard error about
1 / sqrt(2N), the sample mean has standard error s / sqrt(N), the excess
kurtosis has standard error about sqrt(24 / N), and the correlation of two
independent vectors of length k has standard error 1 / sqrt(k). Every bound
below is at least 10 standard errors, so a correct answer essentially never
fails (the chance is below 1e-20 per check), while the wrong scales we hint at
differ by 10% or more.

Every clause of the notebook's spec, and the check that tests it (the planted
bugs of mutants.py that it catches). The seed at the top of the random
initializers only makes the public test's values match: no check depends on it
(the alternatives draw unseeded, from other generators, in another order).

initialize_parameters_zeros
- keys W1, b1, ..., WL, bL for L = len(layers_dims) - 1: test_zeros_keys
  (zeros_misses_the_last_layer)
- W_l of shape (n_l, n_{l-1}), b_l a column (n_l, 1), not (n_l,): test_zeros_shapes (zeros_bias_1d)
- every entry 0.0, float: test_zeros_values (zeros_integer_dtype)
initialize_parameters_random
- keys and shapes, float: test_random_structure (random_transposed_W)
- b_l zeros: test_random_biases_zero (random_biases_drawn_too)
- W_l normal, mean 0, standard deviation 10: test_random_scale_large_layer
  (random_forgets_times_10, random_times_0_01, random_uniform_rand)
- every layer scaled by 10, a fresh independent draw for every layer and entry:
  test_random_every_layer (random_reseeds_every_layer)
initialize_parameters_he
- keys, shapes, float, b_l zeros: test_he_structure (he_small_random_biases)
- W_l normal, mean 0, standard deviation sqrt(2 / n_{l-1}) (the fan-in, not n_l):
  test_he_scale_large_layer, test_he_scale_every_layer (he_sqrt_1_over_n_prev, he_sqrt_2_over_n_l)
- fresh independent draws for every layer and entry: test_he_layers_independent
  (he_reseeds_every_layer)
"""

import math

import numpy as np
import pytest

from autograder.grading.checks import as_array, check, check_dict_structure, check_keys, diagnose

# Networks of 1 to 5 layers: the number of layers must come from len(layers_dims).
STRUCTURE_CASES = [[4, 1], [3, 2, 1], [2, 10, 5, 1], [5, 4, 3, 2, 1], [7, 3, 6, 2, 4, 1]]

# Large layers for statistics. n_prev and n_l differ in every layer, and no
# usual wrong scale (sqrt(1/n_prev), sqrt(2/n_l), sqrt(1/n_l),
# sqrt(2/(n_prev + n_l)), ...) lands within 7% of the right one, while the
# tolerance (10 standard errors) is at most 6%. Sizes are kept modest: every
# entry crosses the sandbox boundary, and it is most of the grading time.
LARGE_DIMS = [600, 100, 1]
DEEP_DIMS = [300, 125, 400, 75, 200]
# Layers of at least 10000 entries each, to compare layers with one another.
INDEPENDENCE_DIMS = [150, 100, 200, 50, 1]

SEVERAL_LAYERS_HINT = (
    "loop for l in range(1, len(layers_dims)) and create parameters['W' + str(l)] "
    "and parameters['b' + str(l)] for every layer"
)
SHAPE_HINT = "W{l} has shape (layers_dims[l], layers_dims[l-1]) and b{l} has shape (layers_dims[l], 1)"
RANDOM_HINT = "use np.random.randn(layers_dims[l], layers_dims[l-1]) * 10"
FLOAT_HINT = "np.zeros and np.random.randn return float64 arrays; do not cast to int"
HE_HINT = "use np.random.randn(layers_dims[l], layers_dims[l-1]) * np.sqrt(2 / layers_dims[l-1])"


def check_structure(params, expected, dims, fn_name, check_dtype=True):
    """Same keys as the reference, each array of the reference's shape (and a float dtype)."""
    check_dict_structure(
        params,
        expected,
        f"{fn_name}({dims})",
        SEVERAL_LAYERS_HINT,
        key_label="{key} of {what}",
        shape_hint=SHAPE_HINT,
        float_hint=FLOAT_HINT if check_dtype else None,
    )


def check_biases_zero(params, dims, fn_name):
    """Every b{l} holds only zeros."""
    for l in range(1, len(dims)):
        b = as_array(params[f"b{l}"], f"b{l} of {fn_name}({dims})")
        check(
            bool(np.all(b == 0)),
            f"b{l} of {fn_name}({dims}) is not all zeros",
            "initialize the biases with np.zeros((layers_dims[l], 1)); only W needs random values",
        )


def scale_candidates(n_prev, n_l):
    """Usual scales of an initializer, by name, for a layer of shape (n_l, n_prev)."""
    return {
        "10": 10.0,
        "1 (randn without scaling)": 1.0,
        "0.01": 0.01,
        "0.1": 0.1,
        "100": 100.0,
        "sqrt(2 / n_prev)": math.sqrt(2 / n_prev),
        "sqrt(1 / n_prev)": math.sqrt(1 / n_prev),
        "sqrt(2 / n_l) (size of this layer instead of the previous one)": math.sqrt(2 / n_l),
        "sqrt(1 / n_l)": math.sqrt(1 / n_l),
        "sqrt(2 / (n_prev + n_l))": math.sqrt(2 / (n_prev + n_l)),
        "2 / n_prev (the variance, not its square root)": 2 / n_prev,
        "1 / n_prev": 1 / n_prev,
    }


def describe_scale(std, expected_std, n_prev, n_l):
    """Name the usual scale closest to ``std`` when one is within 4%."""
    candidates = sorted(scale_candidates(n_prev, n_l).items(), key=lambda kv: abs(math.log(std / kv[1])))
    name = diagnose(std, candidates, None, matches=lambda got, scale: abs(math.log(got / scale)) < math.log(1.04))
    if name is None:
        return "which is none of the usual scales"
    if math.isclose(dict(candidates)[name], expected_std, rel_tol=1e-9):
        # Near the right scale but outside the sampling tolerance: the draws
        # are probably not independent (a repeated row, a reused block).
        return (
            f"{100 * abs(std / expected_std - 1):.1f}% away from the right scale, "
            f"more than independent draws of this many entries would be"
        )
    return f"which is the scale {name}"


def check_layer_statistics(W, expected_std, what, hint, gaussian=False):
    """Mean 0 and standard deviation ``expected_std`` within 10 standard errors
    (and at least 2%); optionally excess kurtosis 0 (Gaussian, not uniform)."""
    W = as_array(W, what, hint).astype(np.float64)
    n_l, n_prev = W.shape
    N = W.size
    check(bool(np.all(np.isfinite(W))), f"{what} contains NaN or inf", hint)
    std = float(W.std())
    check(std > 0, f"{what} is constant (standard deviation 0): every weight is the same", hint)
    mean = float(W.mean())
    mean_tol = max(10 / math.sqrt(N), 0.02) * expected_std
    check(
        abs(mean) < mean_tol,
        f"{what} has mean {mean:.3g} while its standard deviation is {std:.3g}; the weights should be centred on 0",
        hint + " (np.random.randn draws from a normal distribution of mean 0; np.random.rand does not)",
    )
    std_tol = max(10 / math.sqrt(2 * N), 0.02)
    check(
        abs(std / expected_std - 1) < std_tol,
        f"{what} has standard deviation {std:.3g}, {describe_scale(std, expected_std, n_prev, n_l)}; "
        f"with n_prev = {n_prev} and n_l = {n_l} it should be {expected_std:.3g}",
        hint,
    )
    if gaussian:
        z = (W - mean) / std
        excess_kurtosis = float(np.mean(z**4) - 3)
        kurt_tol = max(10 * math.sqrt(24 / N), 0.1)
        check(
            abs(excess_kurtosis) < kurt_tol,
            f"{what} has the right standard deviation but its entries are not normally distributed "
            f"(excess kurtosis {excess_kurtosis:.2f}, a normal distribution has 0, a uniform one -1.2)",
            hint + " (np.random.randn draws from the standard normal distribution)",
        )


def check_independent(params, dims, fn_name, hint):
    """No layer repeats its own entries, and no layer is a copy (or scaled copy) of another."""
    L = len(dims) - 1
    flat = {}
    for l in range(1, L + 1):
        W = as_array(params[f"W{l}"], f"W{l} of {fn_name}({dims})").astype(np.float64)
        flat[l] = W.ravel()
        # A tiled row or column, or any reuse of a few draws, repeats values.
        # 0.9 leaves room for float32 learners, whose draws can collide.
        distinct = np.unique(W).size
        check(
            distinct >= 0.9 * W.size,
            f"W{l} of {fn_name}({dims}) has only {distinct} distinct values among {W.size} entries: "
            f"its rows or columns repeat the same random numbers",
            hint + " (draw the whole (n_l, n_prev) matrix at once)",
        )
    for i in range(1, L + 1):
        for j in range(i + 1, L + 1):
            k = min(flat[i].size, flat[j].size)
            if k < 10000:
                continue
            # Reseeding inside the loop makes W{j} start with the same draws as
            # W{i}, up to the scale: their correlation is then 1.
            corr = float(np.corrcoef(flat[i][:k], flat[j][:k])[0, 1])
            check(
                abs(corr) < 10 / math.sqrt(k),
                f"W{j} of {fn_name}({dims}) repeats the random numbers of W{i} "
                f"(correlation {corr:.2f} between their first {k} entries)",
                "seed the generator at most once, before the loop, so every layer gets new draws",
            )


# ---------------------------------------------------------------- zeros


@pytest.mark.graded("initialize_parameters_zeros", points=1)
def test_zeros_keys(learner, reference):
    """initialize_parameters_zeros returns W1, b1, ..., WL, bL for networks of 1 to 5 layers."""
    for dims in STRUCTURE_CASES:
        params = learner.initialize_parameters_zeros(dims)
        expected = reference.initialize_parameters_zeros(dims)
        check_keys(params, list(expected), f"initialize_parameters_zeros({dims})", SEVERAL_LAYERS_HINT)


@pytest.mark.graded("initialize_parameters_zeros", points=1, shape_points=0.25)
def test_zeros_shapes(learner, reference):
    """initialize_parameters_zeros gives W of shape (n_l, n_prev) and b of shape (n_l, 1)."""
    for dims in STRUCTURE_CASES:
        params = learner.initialize_parameters_zeros(dims)
        expected = reference.initialize_parameters_zeros(dims)
        # The dtype is checked by test_zeros_values only, so that integer
        # zeros cost one point, not two.
        check_structure(params, expected, dims, "initialize_parameters_zeros", check_dtype=False)


@pytest.mark.graded("initialize_parameters_zeros", points=1)
def test_zeros_values(learner, reference):
    """initialize_parameters_zeros fills every W and b with exactly 0.0, of a float dtype."""
    for dims in STRUCTURE_CASES:
        params = learner.initialize_parameters_zeros(dims)
        expected = reference.initialize_parameters_zeros(dims)
        check_keys(params, list(expected), f"initialize_parameters_zeros({dims})", SEVERAL_LAYERS_HINT)
        for key in sorted(expected):
            what = f"{key} of initialize_parameters_zeros({dims})"
            arr = as_array(params[key], what)
            # Checked on the values alone (any shape) so that a shape mistake
            # costs only test_zeros_shapes.
            check(
                arr.size == expected[key].size,
                f"{what} has {arr.size} entries, expected {expected[key].size}",
                SHAPE_HINT,
            )
            check(
                arr.dtype.kind == "f",
                f"{what} has dtype {arr.dtype}, expected float zeros",
                "use np.zeros(shape), which returns float64 zeros; do not pass dtype=int",
            )
            check(
                bool(np.all(arr == 0)),
                f"{what} has {int(np.count_nonzero(arr))} nonzero entries of {arr.size}",
                "use np.zeros(shape)",
            )


# ---------------------------------------------------------------- large random


@pytest.mark.graded("initialize_parameters_random", points=1, shape_points=0.25)
def test_random_structure(learner, reference):
    """initialize_parameters_random returns W1, b1, ..., WL, bL of the right shapes and float dtype, for 1 to 5 layers."""
    for dims in STRUCTURE_CASES:
        params = learner.initialize_parameters_random(dims)
        expected = reference.initialize_parameters_random(dims)
        check_structure(params, expected, dims, "initialize_parameters_random")


@pytest.mark.graded("initialize_parameters_random", points=1)
def test_random_biases_zero(learner, reference):
    """initialize_parameters_random sets every bias to zero."""
    for dims in STRUCTURE_CASES:
        params = learner.initialize_parameters_random(dims)
        expected = reference.initialize_parameters_random(dims)
        check_keys(params, list(expected), f"initialize_parameters_random({dims})", SEVERAL_LAYERS_HINT)
        check_biases_zero(params, dims, "initialize_parameters_random")


@pytest.mark.graded("initialize_parameters_random", points=1, shape_points=0.25)
def test_random_scale_large_layer(learner, reference):
    """initialize_parameters_random draws W from a normal distribution of mean 0 and standard deviation 10."""
    dims = LARGE_DIMS
    params = learner.initialize_parameters_random(dims)
    expected = reference.initialize_parameters_random(dims)
    check_structure(params, expected, dims, "initialize_parameters_random")
    check_layer_statistics(
        params["W1"], 10.0, f"W1 of initialize_parameters_random({dims})", RANDOM_HINT, gaussian=True
    )


@pytest.mark.graded("initialize_parameters_random", points=1, shape_points=0.25)
def test_random_every_layer(learner, reference):
    """initialize_parameters_random scales every layer by 10 and draws new, independent numbers for each."""
    for dims in (DEEP_DIMS, INDEPENDENCE_DIMS):
        params = learner.initialize_parameters_random(dims)
        expected = reference.initialize_parameters_random(dims)
        check_structure(params, expected, dims, "initialize_parameters_random")
        for l in range(1, len(dims)):
            if dims[l] * dims[l - 1] >= 10000:
                check_layer_statistics(
                    params[f"W{l}"], 10.0, f"W{l} of initialize_parameters_random({dims})", RANDOM_HINT
                )
        check_independent(params, dims, "initialize_parameters_random", RANDOM_HINT)


# ---------------------------------------------------------------- He


@pytest.mark.graded("initialize_parameters_he", points=1, shape_points=0.25)
def test_he_structure(learner, reference):
    """initialize_parameters_he returns W1, b1, ..., WL, bL of the right shapes, float dtype and zero biases, for 1 to 5 layers."""
    for dims in STRUCTURE_CASES:
        params = learner.initialize_parameters_he(dims)
        expected = reference.initialize_parameters_he(dims)
        check_structure(params, expected, dims, "initialize_parameters_he")
        check_biases_zero(params, dims, "initialize_parameters_he")


@pytest.mark.graded("initialize_parameters_he", points=1, shape_points=0.25)
def test_he_scale_large_layer(learner, reference):
    """initialize_parameters_he draws W1 from a normal distribution of mean 0 and standard deviation sqrt(2 / n_prev)."""
    dims = LARGE_DIMS
    params = learner.initialize_parameters_he(dims)
    expected = reference.initialize_parameters_he(dims)
    check_structure(params, expected, dims, "initialize_parameters_he")
    check_layer_statistics(
        params["W1"], math.sqrt(2 / dims[0]), f"W1 of initialize_parameters_he({dims})", HE_HINT, gaussian=True
    )


@pytest.mark.graded("initialize_parameters_he", points=1, shape_points=0.25)
def test_he_scale_every_layer(learner, reference):
    """initialize_parameters_he uses n_prev = layers_dims[l-1] of each layer for that layer's scale."""
    dims = DEEP_DIMS
    params = learner.initialize_parameters_he(dims)
    expected = reference.initialize_parameters_he(dims)
    check_structure(params, expected, dims, "initialize_parameters_he")
    for l in range(1, len(dims)):
        check_layer_statistics(
            params[f"W{l}"], math.sqrt(2 / dims[l - 1]), f"W{l} of initialize_parameters_he({dims})", HE_HINT
        )


@pytest.mark.graded("initialize_parameters_he", points=1, shape_points=0.25)
def test_he_layers_independent(learner, reference):
    """initialize_parameters_he draws new, independent random numbers for every layer and every entry."""
    dims = INDEPENDENCE_DIMS
    params = learner.initialize_parameters_he(dims)
    expected = reference.initialize_parameters_he(dims)
    check_structure(params, expected, dims, "initialize_parameters_he")
    check_independent(params, dims, "initialize_parameters_he", HE_HINT)
