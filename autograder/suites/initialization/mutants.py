"""Planted bugs of the Initialization assignment, and other correct answers (format: autograder/course/mutants.py).

Each graded cell here is written whole (``source``): the three functions are
short, and a bug in one line is a bug in the loop that every layer shares.
"""

from autograder.course.mutants import Alternative, Mutant

ZEROS = "initialize_parameters_zeros"
RANDOM = "initialize_parameters_random"
HE = "initialize_parameters_he"


def source(name, seed_line, w_expr, b_expr="np.zeros((layers_dims[l], 1))", loop="range(1, len(layers_dims))"):
    """A graded cell for ``name`` whose W{l} is ``w_expr`` (n = layers_dims[l], n_prev = layers_dims[l-1])."""
    return f"""
# GRADED FUNCTION: {name}

def {name}(layers_dims):
    {seed_line}
    parameters = {{}}
    for l in {loop}:
        n, n_prev = layers_dims[l], layers_dims[l - 1]
        parameters["W" + str(l)] = {w_expr}
        parameters["b" + str(l)] = {b_expr}
    return parameters
"""


SEED = "np.random.seed(3)"
NO_SEED = "pass"

MUTANTS = [
    # The three of the brief.
    Mutant(
        "he_sqrt_1_over_n_prev",
        HE,
        source(HE, SEED, "np.random.randn(n, n_prev) * np.sqrt(1 / n_prev)"),
        feedback=["which is the scale sqrt(1 / n_prev)"],
    ),
    Mutant(
        "random_forgets_times_10",
        RANDOM,
        source(RANDOM, SEED, "np.random.randn(n, n_prev)"),
        feedback=["which is the scale 1 (randn without scaling)"],
    ),
    # A shape slip (grading/shapes.py): zero biases of shape (n,) where the notebook says (n, 1)
    # lose only the points of the shape checks, never those of the values.
    Mutant(
        "zeros_bias_1d",
        ZEROS,
        source(ZEROS, NO_SEED, "np.zeros((n, n_prev))", b_expr="np.zeros(n)"),
        fails=["Shapes as specified"],
        feedback=["values right; shape (1,), expected (1, 1)"],
    ),
    # More of the usual mistakes.
    Mutant("he_sqrt_2_over_n_l", HE, source(HE, SEED, "np.random.randn(n, n_prev) * np.sqrt(2 / n)")),
    Mutant(
        "he_reseeds_every_layer",
        HE,
        source(HE, NO_SEED, "np.random.RandomState(3).randn(n, n_prev) * np.sqrt(2 / n_prev)"),
    ),
    Mutant("random_times_0_01", RANDOM, source(RANDOM, SEED, "np.random.randn(n, n_prev) * 0.01")),
    Mutant("random_uniform_rand", RANDOM, source(RANDOM, SEED, "np.random.rand(n, n_prev) * 10")),
    # One clause each that no mutant above touches.
    Mutant(
        "zeros_misses_the_last_layer",
        ZEROS,
        source(ZEROS, NO_SEED, "np.zeros((n, n_prev))", loop="range(1, len(layers_dims) - 1)"),
    ),
    Mutant("random_transposed_W", RANDOM, source(RANDOM, SEED, "np.random.randn(n_prev, n) * 10")),
    Mutant(
        "random_biases_drawn_too",
        RANDOM,
        source(RANDOM, SEED, "np.random.randn(n, n_prev) * 10", b_expr="np.random.randn(n, 1) * 10"),
    ),
    Mutant(
        "random_reseeds_every_layer",
        RANDOM,
        source(RANDOM, NO_SEED, "np.random.RandomState(3).randn(n, n_prev) * 10"),
    ),
    Mutant(
        "he_small_random_biases",
        HE,
        source(HE, SEED, "np.random.randn(n, n_prev) * np.sqrt(2 / n_prev)", b_expr="np.random.randn(n, 1) * 0.01"),
    ),
    # The same slip in He: every test of it checks the shapes, so it loses their shape points only.
    Mutant(
        "he_bias_1d",
        HE,
        source(HE, SEED, "np.random.randn(n, n_prev) * np.sqrt(2 / n_prev)", b_expr="np.zeros(n)"),
        fails=["Shapes as specified"],
        feedback=["values right; shape (1,), expected (1, 1)"],
    ),
    Mutant(
        "zeros_integer_dtype",
        ZEROS,
        source(ZEROS, NO_SEED, "np.zeros((n, n_prev), dtype=int)", b_expr="np.zeros((n, 1), dtype=int)"),
    ),
]

ALTERNATIVES = [
    Alternative(
        "unseeded_default_rng",
        {
            RANDOM: source(RANDOM, "rng = np.random.default_rng()", "rng.standard_normal((n, n_prev)) * 10"),
            HE: source(HE, "rng = np.random.default_rng()", "rng.normal(0.0, np.sqrt(2 / n_prev), size=(n, n_prev))"),
        },
    ),
    Alternative(
        "float32_reverse_order",
        {
            ZEROS: source(
                ZEROS,
                NO_SEED,
                "np.zeros((n, n_prev), dtype=np.float32)",
                b_expr="np.zeros((n, 1), dtype=np.float32)",
                loop="reversed(range(1, len(layers_dims)))",
            ),
            RANDOM: source(
                RANDOM,
                "np.random.seed(0)",
                "(10 * np.random.normal(size=(n, n_prev))).astype(np.float32)",
                loop="reversed(range(1, len(layers_dims)))",
            ),
            HE: source(
                HE,
                NO_SEED,
                "np.random.randn(n, n_prev) / np.sqrt(n_prev / 2)",
                b_expr="np.zeros(shape=(n, 1))",
                loop="reversed(range(1, len(layers_dims)))",
            ),
        },
    ),
]
