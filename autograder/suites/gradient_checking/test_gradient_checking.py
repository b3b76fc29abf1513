"""Hidden suite for the Gradient Checking assignment.

The checkers are tested on gradients whose error is known:

- 1-D gradient_check: the learner's checker calls forward_propagation and
  backward_propagation by name, so a broken forward/backward would break it.
  probes.call_with_stand_ins swaps known functions into the learner's namespace for the
  duration of one call (and puts the learner's own back): a curved cost
  J = x * theta**3, for which the two-sided difference has the closed form
  eps**2 / (6 theta**2 + eps**2), and backward functions that are off by a
  known factor. So gradient_check is graded independently of the learner's
  forward_propagation / backward_propagation.
- gradient_check_n receives the gradients as data: we pass the correct
  gradients of the provided network, the provided (buggy)
  backward_propagation_n, and correct gradients with one entry off by 1e-2 or
  1e-4 (relative), or all scaled, and compare with the reference checker.

Small differences are compared with a relative tolerance (atol=0) or on a log
scale, never with an absolute tolerance that would accept 0. Epsilons of
1e-4 .. 1e-2 make the two-sided truncation error dominate rounding, so a
one-sided difference (error O(eps) instead of O(eps^2)) or a hard-coded
epsilon lands orders of magnitude away from the expected value. The test
cases below are free of ReLU kinks for every parameter moved by the largest
epsilon used on them (tests/test_gradient_checking_suite.py checks this).

Every clause of the notebook's spec, and the check that tests it (the planted
bugs of mutants.py that it catches). The verdict printing is given code.

forward_propagation
- J = theta x for scalars: test_forward_propagation_values (forward_theta_plus_x)
backward_propagation
- dJ/dtheta = x: test_backward_propagation_values (backward_returns_theta)
gradient_check
- two-sided gradapprox with forward_propagation called by name at theta +- epsilon:
  test_gradient_check_curved_cost (gc_one_sided, gc_divides_by_epsilon, gc_inlines_theta_x)
- grad from backward_propagation called by name; difference = ||grad - gradapprox|| /
  (||grad|| + ||gradapprox||): test_gradient_check_detects_wrong_backward (gc_returns_zero,
  gc_no_denominator, gc_compares_norms, gc_norm_of_sum_denominator)
- the epsilon argument: test_gradient_check_uses_epsilon (gc_hard_coded_epsilon)
gradient_check_n
- J_plus[i], J_minus[i] of a copy with entry i alone moved, the cost of forward_propagation_n:
  test_gradient_check_n_correct_gradients (gcn_forgets_copy)
- two-sided: test_gradient_check_n_two_sided (gcn_one_sided)
- the gradients passed in, as a vector, compared by the relative difference:
  test_gradient_check_n_planted_bugs, test_gradient_check_n_small_bugs
  (gcn_ignores_the_given_gradients, gcn_returns_zero, gcn_no_denominator,
  gcn_divides_by_grad_norm_only, gcn_compares_norms, gcn_norm_of_sum_denominator,
  gcn_compares_sorted_entries, gcn_compares_absolute_values)
- the epsilon argument: test_gradient_check_n_uses_epsilon (gcn_hard_coded_epsilon)
"""

import numpy as np
import pytest

from autograder.grading.checks import (
    check_log_close,
    check_scalar_close,
    helper_module,
)
from autograder.grading.probes import (
    call_with_stand_ins,
    call_with_stand_ins_here,
)

utils = helper_module("gradient_checking")

# (x, theta) pairs for the 1-D functions: integers, fractions, negatives.
SCALAR_CASES = [(2.0, 4.0), (-3.0, 1.5), (0.5, -2.25), (-1.25, -0.8), (7.0, 0.1)]

# (epsilon, (x, theta)) on J = x * theta**3, other than 1e-3: a checker with a
# hard-coded 1e-7 returns about 1e-10 instead of eps**2 / (6 theta**2).
CUBIC_EPSILON_CASES = [(1e-2, (2.0, 4.0)), (1e-2, (-1.25, -0.8)), (3e-3, (0.5, -2.25))]

# ((x, theta), delta, epsilon): a backward function off by a factor (1 + delta)
# on J = theta * x. epsilon None uses the default (1e-7); the smallest bug gets
# a larger epsilon, so that rounding (about 1e-8 / epsilon relative to the
# gradient) stays far below its effect. delta < -1 is a gradient of the wrong
# sign (difference 1): a checker that compares only the sizes |grad| and
# |gradapprox|, or divides by |grad + gradapprox|, gets it wrong.
LINEAR_BUG_CASES = [
    ((2.0, 4.0), 1e-2, None),
    ((-3.0, 1.5), 1e-4, 1e-5),
    ((0.5, -2.25), -0.5, None),
    ((7.0, 0.1), 1.0, 1e-3),
    ((2.0, 4.0), -2.0, None),
    ((-1.25, -0.8), -1.5, 1e-3),
]

# Known forward/backward functions, put in place of the learner's own while
# its gradient_check runs (probes.call_with_stand_ins).
KNOWN_COSTS = '''
def stand_ins(cost, delta):
    """cost: "linear" (J = theta * x) or "cubic" (J = x * theta**3);
    the backward function is the true derivative times (1 + delta)."""
    if cost == "linear":
        return {"forward_propagation": lambda x, theta: theta * x,
                "backward_propagation": lambda x, theta: x * (1.0 + delta)}
    return {"forward_propagation": lambda x, theta: x * theta ** 3,
            "backward_propagation": lambda x, theta: 3.0 * x * theta ** 2 * (1.0 + delta)}
'''

# (seed, m) of gradient_check_n_test_case; all kink-free at eps = 1e-3,
# (7, 7) and (1, 3) also at eps = 1e-2. One gradient_check_n call runs 94
# forward passes (about 17 ms of the learner's time): each check below uses two
# or three of these networks, and together they use all five.
NETWORK_CASES = [(1, 3), (2, 5), (4, 10), (5, 4), (7, 7)]

GC1_HINT = (
    "thetaplus = theta + epsilon, thetaminus = theta - epsilon; "
    "gradapprox = (J_plus - J_minus) / (2 * epsilon) with J from forward_propagation; "
    "grad from backward_propagation; difference = ||grad - gradapprox|| / "
    "(||grad|| + ||gradapprox||). Use the epsilon argument, not a constant."
)
DIRECTION_HINT = (
    "a gradient of the wrong sign has the right size: compare the vectors themselves, "
    "numerator ||grad - gradapprox|| (not | ||grad|| - ||gradapprox|| |), denominator ||grad|| + ||gradapprox|| "
    "(not ||grad + gradapprox||). "
)
ORDER_HINT = (
    "the same entries in another order (a backward pass that fills dW1 in the wrong order) have the same norm "
    "and the same sorted values: compare grad and gradapprox entry by entry, numerator ||grad - gradapprox|| "
    "of the vectors as they are (not sorted, not their absolute values or norms). "
)
GCN_HINT = (
    "for each i: copy parameters_values, add (then subtract) epsilon to entry i only, "
    "J_plus[i], _ = forward_propagation_n(X, Y, vector_to_dictionary(thetaplus)); "
    "gradapprox[i] = (J_plus[i] - J_minus[i]) / (2 * epsilon); then "
    "difference = ||grad - gradapprox|| / (||grad|| + ||gradapprox||) with np.linalg.norm. "
    "Use the epsilon argument, not a constant."
)


def network_case(seed, m):
    """X, Y, parameters and the correct gradients of one test case."""
    X, Y, parameters = utils.gradient_check_n_test_case(seed, m)
    _, cache = utils.forward_propagation_n(X, Y, parameters)
    gradients = utils.backward_propagation_n_fixed(X, Y, cache)
    return X, Y, parameters, gradients


def with_entry_scaled(parameters, gradients, factor):
    """Copy of gradients whose largest entry (in absolute value) is multiplied by factor."""
    grad = utils.gradients_to_vector(gradients)
    _, keys = utils.dictionary_to_vector(parameters)
    i = int(np.argmax(np.abs(grad)))
    name = keys[i]
    offset = i - keys.index(name)  # position of entry i inside its parameter
    bad = {key: np.array(value, dtype=np.float64) for key, value in gradients.items()}
    flat = bad["d" + name].reshape(-1)  # a view: writes go into bad["d" + name]
    flat[offset] *= factor
    return bad


def check_n_like_reference(learner, reference, args, epsilon, what, rtol, hint=GCN_HINT):
    """The learner's gradient_check_n(*args[, epsilon]) equals the reference's within rtol (no atol)."""
    kwargs = {} if epsilon is None else {"epsilon": epsilon}
    check_scalar_close(
        learner.gradient_check_n(*args, **kwargs),
        reference.gradient_check_n(*args, **kwargs),
        what,
        hint=hint,
        rtol=rtol,
        atol=0.0,
    )


def learner_check_1d(learner, x, theta, epsilon, cost, delta=0.0):
    return call_with_stand_ins(
        learner,
        "gradient_check",
        KNOWN_COSTS,
        {"cost": cost, "delta": delta},
        (x, theta),
        {} if epsilon is None else {"epsilon": epsilon},
    )


# ---------------------------------------------------------------- forward_propagation


@pytest.mark.graded("forward_propagation", points=1)
def test_forward_propagation_values(learner, reference):
    """forward_propagation returns J = theta * x for positive and negative scalars."""
    for x, theta in SCALAR_CASES:
        check_scalar_close(
            learner.forward_propagation(x, theta),
            reference.forward_propagation(x, theta),
            f"forward_propagation(x={x}, theta={theta})",
            hint="J = theta * x",
            rtol=1e-9,
            atol=0.0,
        )


# ---------------------------------------------------------------- backward_propagation


@pytest.mark.graded("backward_propagation", points=1)
def test_backward_propagation_values(learner, reference):
    """backward_propagation returns dJ/dtheta = x for positive and negative scalars."""
    for x, theta in SCALAR_CASES:
        check_scalar_close(
            learner.backward_propagation(x, theta),
            reference.backward_propagation(x, theta),
            f"backward_propagation(x={x}, theta={theta})",
            hint="J = theta * x, so dJ/dtheta = x (not theta)",
            rtol=1e-9,
            atol=0.0,
        )


# ---------------------------------------------------------------- gradient_check


def reference_check_1d(reference, x, theta, epsilon, cost, delta=0.0):
    """The reference gradient_check, run here with the same known functions swapped in."""
    return call_with_stand_ins_here(
        vars(reference),
        "gradient_check",
        KNOWN_COSTS,
        {"cost": cost, "delta": delta},
        (x, theta),
        {} if epsilon is None else {"epsilon": epsilon},
    )


@pytest.mark.graded("gradient_check", points=2)
def test_gradient_check_curved_cost(learner, reference):
    """On J = x * theta**3 with a correct backward and eps = 1e-3, gradient_check returns the two-sided value (about eps**2 / (6 theta**2))."""
    epsilon = 1e-3
    for x, theta in SCALAR_CASES:
        check_scalar_close(
            learner_check_1d(learner, x, theta, epsilon, "cubic"),
            reference_check_1d(reference, x, theta, epsilon, "cubic"),
            f"gradient_check(x={x}, theta={theta}, epsilon={epsilon}) on the cost x * theta**3 "
            "with a correct backward function",
            hint="use the two-sided difference (J(theta + eps) - J(theta - eps)) / (2 eps): "
            "a one-sided difference has an O(eps) error, the two-sided one O(eps**2). " + GC1_HINT,
            rtol=1e-3,
            atol=0.0,
        )


@pytest.mark.graded("gradient_check", points=1)
def test_gradient_check_uses_epsilon(learner, reference):
    """gradient_check uses its epsilon argument (checked on J = x * theta**3 with eps = 1e-2 and 3e-3)."""
    for epsilon, (x, theta) in CUBIC_EPSILON_CASES:
        check_scalar_close(
            learner_check_1d(learner, x, theta, epsilon, "cubic"),
            reference_check_1d(reference, x, theta, epsilon, "cubic"),
            f"gradient_check(x={x}, theta={theta}, epsilon={epsilon}) on the cost x * theta**3",
            hint=GC1_HINT,
            rtol=1e-3,
            atol=0.0,
        )


@pytest.mark.graded("gradient_check", points=1)
def test_gradient_check_detects_wrong_backward(learner, reference):
    """On J = theta * x with a backward off by a factor (1 + delta), also of the wrong sign, gradient_check returns about |delta| / (|1 + delta| + 1)."""
    for (x, theta), delta, epsilon in LINEAR_BUG_CASES:
        shown = "" if epsilon is None else f", epsilon={epsilon}"
        sign = " (the wrong sign)" if delta < -1 else ""
        check_scalar_close(
            learner_check_1d(learner, x, theta, epsilon, "linear", delta),
            reference_check_1d(reference, x, theta, epsilon, "linear", delta),
            f"gradient_check(x={x}, theta={theta}{shown}) with a backward_propagation that returns "
            f"x * (1 + {delta}) instead of x{sign}",
            hint=(DIRECTION_HINT if delta < -1 else "") + GC1_HINT,
            rtol=1e-3,
            atol=0.0,
        )


# ---------------------------------------------------------------- gradient_check_n


@pytest.mark.graded("gradient_check_n", points=1)
def test_gradient_check_n_planted_bugs(learner, reference):
    """gradient_check_n on the gradients of the provided buggy backward_propagation_n matches the reference."""
    for seed, m in NETWORK_CASES[:2]:
        X, Y, parameters = utils.gradient_check_n_test_case(seed, m)
        _, cache = utils.forward_propagation_n(X, Y, parameters)
        gradients = utils.backward_propagation_n(X, Y, cache)
        check_n_like_reference(
            learner,
            reference,
            (parameters, gradients, X, Y),
            None,
            f"gradient_check_n on the buggy backward_propagation_n (a test network with {m} examples)",
            rtol=1e-3,
        )


def with_dW1_reversed(parameters, gradients):
    """Copy of gradients whose dW1 holds its entries in reverse order: the same size, another direction."""
    return dict(
        gradients, dW1=np.asarray(gradients["dW1"], dtype=np.float64).ravel()[::-1].reshape(np.shape(gradients["dW1"]))
    )


@pytest.mark.graded("gradient_check_n", points=2)
def test_gradient_check_n_small_bugs(learner, reference):
    """gradient_check_n measures bugs of size 1e-2, 1e-4 (one entry) and 10% (all entries), and bugs of direction (sign, order), like the reference."""
    epsilon = 1e-5
    wrong = [  # (what, how, network, hint): each bug on another network
        ("the largest gradient entry off by 1e-2 (relative)", lambda p, g: with_entry_scaled(p, g, 1 + 1e-2), 1, ""),
        ("the largest gradient entry off by 1e-4 (relative)", lambda p, g: with_entry_scaled(p, g, 1 - 1e-4), 2, ""),
        ("all gradients scaled by 1.1", lambda p, g: {key: 1.1 * value for key, value in g.items()}, 3, ""),
        # Order before sign: a checker blind to a permutation (sorted entries) fails on the first, one
        # blind to the sign (absolute values) on the second, so each is told which bug it missed.
        ("the entries of dW1 in reverse order", with_dW1_reversed, 4, ORDER_HINT),
        ("all gradients of the wrong sign", lambda p, g: {key: -value for key, value in g.items()}, 0, DIRECTION_HINT),
    ]
    for what, make_wrong, case, hint in wrong:
        seed, m = NETWORK_CASES[case]
        X, Y, parameters, gradients = network_case(seed, m)
        bad = make_wrong(parameters, gradients)
        check_n_like_reference(
            learner,
            reference,
            (parameters, bad, X, Y),
            epsilon,
            f"gradient_check_n(epsilon={epsilon}) with {what} (a test network with {m} examples)",
            rtol=1e-2,
            hint=hint + GCN_HINT,
        )


@pytest.mark.graded("gradient_check_n", points=1)
def test_gradient_check_n_correct_gradients(learner, reference):
    """On correct gradients gradient_check_n returns a small positive difference of the reference's order of magnitude."""
    for seed, m in NETWORK_CASES[:2]:
        X, Y, parameters, gradients = network_case(seed, m)
        # eps = 1e-7 (the default) is dominated by rounding: one decade of slack.
        check_log_close(
            learner.gradient_check_n(parameters, gradients, X, Y),
            reference.gradient_check_n(parameters, gradients, X, Y),
            f"gradient_check_n with the default epsilon on correct gradients (a test network with {m} examples)",
            hint=GCN_HINT,
            decades=1.0,
        )
        # eps = 1e-5: near the sweet spot; a one-sided difference is over 2 decades larger.
        check_log_close(
            learner.gradient_check_n(parameters, gradients, X, Y, epsilon=1e-5),
            reference.gradient_check_n(parameters, gradients, X, Y, epsilon=1e-5),
            f"gradient_check_n(epsilon=1e-05) on correct gradients (a test network with {m} examples)",
            hint=GCN_HINT,
            decades=0.5,
        )


@pytest.mark.graded("gradient_check_n", points=1)
def test_gradient_check_n_two_sided(learner, reference):
    """With epsilon = 1e-4 on correct gradients, gradient_check_n shows the O(eps**2) error of a two-sided difference."""
    epsilon = 1e-4
    for seed, m in NETWORK_CASES[2:]:
        X, Y, parameters, gradients = network_case(seed, m)
        check_log_close(
            learner.gradient_check_n(parameters, gradients, X, Y, epsilon=epsilon),
            reference.gradient_check_n(parameters, gradients, X, Y, epsilon=epsilon),
            f"gradient_check_n(epsilon={epsilon}) on correct gradients (a test network with {m} examples)",
            hint="a one-sided difference (J(theta + eps) - J(theta)) / eps has an O(eps) error, "
            "orders of magnitude above the two-sided O(eps**2). " + GCN_HINT,
            decades=0.3,
        )


@pytest.mark.graded("gradient_check_n", points=1)
def test_gradient_check_n_uses_epsilon(learner, reference):
    """gradient_check_n uses its epsilon argument (correct gradients, eps = 1e-3 and 1e-2, compared with the reference)."""
    for epsilon, (seed, m) in [(1e-3, (4, 10)), (1e-3, (7, 7)), (1e-2, (7, 7))]:
        X, Y, parameters, gradients = network_case(seed, m)
        check_n_like_reference(
            learner,
            reference,
            (parameters, gradients, X, Y),
            epsilon,
            f"gradient_check_n(epsilon={epsilon}) on correct gradients (a test network with {m} examples)",
            rtol=1e-2,
        )
