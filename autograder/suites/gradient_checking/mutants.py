"""Planted bugs of the Gradient Checking assignment, and other correct answers.

Format: autograder/course/mutants.py. The cells are written whole: the
checkers are short, and most bugs change several of their lines.
"""

from autograder.course.bindings import FORMS, bound_source
from autograder.course.mutants import Alternative, Mutant

HEADER_1D = """
# GRADED FUNCTION: {name}

def {name}(x, theta):
"""

FORWARD_WRONG = (
    HEADER_1D.format(name="forward_propagation")
    + """
    J = theta + x
    return J
"""
)

BACKWARD_RETURNS_THETA = (
    HEADER_1D.format(name="backward_propagation")
    + """
    dtheta = theta
    return dtheta
"""
)

GC_HEADER = """
# GRADED FUNCTION: gradient_check

import numpy as np

def gradient_check(x, theta, epsilon=1e-7, print_msg=False):
"""

GC_ONE_SIDED = (
    GC_HEADER
    + """
    J = forward_propagation(x, theta)
    J_plus = forward_propagation(x, theta + epsilon)
    gradapprox = (J_plus - J) / epsilon
    grad = backward_propagation(x, theta)
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
"""
)

GC_FIXED_EPSILON = (
    GC_HEADER
    + """
    eps = 1e-7
    J_plus = forward_propagation(x, theta + eps)
    J_minus = forward_propagation(x, theta - eps)
    gradapprox = (J_plus - J_minus) / (2 * eps)
    grad = backward_propagation(x, theta)
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
"""
)

GC_ZERO = (
    GC_HEADER
    + """
    return 0.0
"""
)

GC_NO_DENOMINATOR = (
    GC_HEADER
    + """
    J_plus = forward_propagation(x, theta + epsilon)
    J_minus = forward_propagation(x, theta - epsilon)
    gradapprox = (J_plus - J_minus) / (2 * epsilon)
    grad = backward_propagation(x, theta)
    return np.linalg.norm(grad - gradapprox)
"""
)

GC_NO_FACTOR_2 = (
    GC_HEADER
    + """
    J_plus = forward_propagation(x, theta + epsilon)
    J_minus = forward_propagation(x, theta - epsilon)
    gradapprox = (J_plus - J_minus) / epsilon
    grad = backward_propagation(x, theta)
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
"""
)

# Computes theta * x and x itself instead of calling the two functions.
GC_INLINED = (
    GC_HEADER
    + """
    gradapprox = ((theta + epsilon) * x - (theta - epsilon) * x) / (2 * epsilon)
    grad = x
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
"""
)

GC_ALTERNATIVE = (
    GC_HEADER
    + """
    # Same math, other spelling: abs instead of norm, a float result.
    gradapprox = (forward_propagation(x, theta + epsilon) - forward_propagation(x, theta - epsilon)) / epsilon / 2
    grad = backward_propagation(x, theta)
    if print_msg:
        print("difference computed")
    return float(abs(grad - gradapprox) / (abs(grad) + abs(gradapprox)))
"""
)

GCN_HEADER = """
# GRADED FUNCTION: gradient_check_n

import numpy as np

def gradient_check_n(parameters, gradients, X, Y, epsilon=1e-7, print_msg=False):
    parameters_values, _ = dictionary_to_vector(parameters)
    grad = gradients_to_vector(gradients)
    n = parameters_values.shape[0]
    gradapprox = np.zeros((n, 1))
"""

GCN_DIFFERENCE = """
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
"""

GCN_ONE_SIDED = (
    GCN_HEADER
    + """
    J, _ = forward_propagation_n(X, Y, vector_to_dictionary(parameters_values))
    for i in range(n):
        theta_plus = np.copy(parameters_values)
        theta_plus[i] += epsilon
        J_plus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_plus))
        gradapprox[i] = (J_plus - J) / epsilon
"""
    + GCN_DIFFERENCE
)

TWO_SIDED_LOOP = """
    for i in range(n):
        theta_plus = np.copy(parameters_values)
        theta_plus[i] += {eps}
        J_plus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_plus))
        theta_minus = np.copy(parameters_values)
        theta_minus[i] -= {eps}
        J_minus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_minus))
        gradapprox[i] = (J_plus - J_minus) / (2 * {eps})
"""

GCN_NO_DENOMINATOR = (
    GCN_HEADER
    + TWO_SIDED_LOOP.format(eps="epsilon")
    + """
    return np.linalg.norm(grad - gradapprox)
"""
)

GCN_FIXED_EPSILON = GCN_HEADER + TWO_SIDED_LOOP.format(eps="1e-7") + GCN_DIFFERENCE

GCN_ZERO = (
    GCN_HEADER
    + """
    return 0.0
"""
)

# Forgets np.copy: theta_plus and theta_minus are the same array as parameters_values.
GCN_NO_COPY = (
    GCN_HEADER
    + """
    for i in range(n):
        theta_plus = parameters_values
        theta_plus[i] += epsilon
        J_plus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_plus))
        theta_minus = parameters_values
        theta_minus[i] -= epsilon
        J_minus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta_minus))
        gradapprox[i] = (J_plus - J_minus) / (2 * epsilon)
"""
    + GCN_DIFFERENCE
)

GCN_GRAD_NORM_ONLY = (
    GCN_HEADER
    + TWO_SIDED_LOOP.format(eps="epsilon")
    + """
    return np.linalg.norm(grad - gradapprox) / np.linalg.norm(grad)
"""
)

# Other correct answers: theta_minus from theta_plus (different rounding), and
# perturbing copies of the dictionary without vector_to_dictionary.
GCN_ALTERNATIVE_MINUS_FROM_PLUS = (
    GCN_HEADER
    + """
    for i in range(n):
        theta = np.copy(parameters_values)
        theta[i] = theta[i] + epsilon
        J_plus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta))
        theta[i] = theta[i] - 2 * epsilon
        J_minus, _ = forward_propagation_n(X, Y, vector_to_dictionary(theta))
        gradapprox[i] = (J_plus - J_minus) / 2 / epsilon
    return float(np.sqrt(np.sum((grad - gradapprox) ** 2)) / (np.sqrt(np.sum(grad ** 2)) + np.sqrt(np.sum(gradapprox ** 2))))
"""
)

GCN_ALTERNATIVE_DICT = """
# GRADED FUNCTION: gradient_check_n

import numpy as np

def gradient_check_n(parameters, gradients, X, Y, epsilon=1e-7, print_msg=False):
    grads, approx = [], []
    for name in ["W1", "b1", "W2", "b2", "W3", "b3"]:
        for index in np.ndindex(*parameters[name].shape):
            shifted = {key: np.array(value, dtype=float) for key, value in parameters.items()}
            shifted[name][index] += epsilon
            J_plus, _ = forward_propagation_n(X, Y, shifted)
            shifted[name][index] -= 2 * epsilon
            J_minus, _ = forward_propagation_n(X, Y, shifted)
            approx.append((J_plus - J_minus) / (2 * epsilon))
            grads.append(gradients["d" + name][index])
    grads, approx = np.array(grads), np.array(approx)
    return np.linalg.norm(grads - approx) / (np.linalg.norm(grads) + np.linalg.norm(approx))
"""

MUTANTS = [
    Mutant("forward_theta_plus_x", "forward_propagation", FORWARD_WRONG),
    Mutant("backward_returns_theta", "backward_propagation", BACKWARD_RETURNS_THETA),
    Mutant("gc_one_sided", "gradient_check", GC_ONE_SIDED),
    Mutant("gc_hard_coded_epsilon", "gradient_check", GC_FIXED_EPSILON),
    Mutant("gc_returns_zero", "gradient_check", GC_ZERO),
    Mutant("gc_no_denominator", "gradient_check", GC_NO_DENOMINATOR),
    Mutant("gc_divides_by_epsilon", "gradient_check", GC_NO_FACTOR_2),
    Mutant("gc_inlines_theta_x", "gradient_check", GC_INLINED),
    Mutant("gcn_one_sided", "gradient_check_n", GCN_ONE_SIDED),
    Mutant("gcn_no_denominator", "gradient_check_n", GCN_NO_DENOMINATOR),
    Mutant("gcn_hard_coded_epsilon", "gradient_check_n", GCN_FIXED_EPSILON),
    Mutant("gcn_returns_zero", "gradient_check_n", GCN_ZERO),
    Mutant("gcn_forgets_copy", "gradient_check_n", GCN_NO_COPY),
    Mutant("gcn_divides_by_grad_norm_only", "gradient_check_n", GCN_GRAD_NORM_ONLY),
    # Checks the provided backward_propagation_n instead of the gradients it is given.
    Mutant(
        "gcn_ignores_the_given_gradients",
        "gradient_check_n",
        (
            "grad = gradients_to_vector(gradients)",
            "grad = gradients_to_vector(backward_propagation_n(X, Y, forward_propagation_n(X, Y, parameters)[1]))",
        ),
    ),
]

# Checkers that measure the size of the gradients, not their direction (issue 13). The suite
# before it gave the 1-D ones full marks: it only fed gradients off by a scale. (It caught the
# gradient_check_n ones through the provided buggy backward_propagation_n.)
GC_TWO_SIDED = (
    GC_HEADER
    + """
    J_plus = forward_propagation(x, theta + epsilon)
    J_minus = forward_propagation(x, theta - epsilon)
    gradapprox = (J_plus - J_minus) / (2 * epsilon)
    grad = backward_propagation(x, theta)
"""
)
MUTANTS += [
    Mutant(
        "gc_compares_norms",
        "gradient_check",
        GC_TWO_SIDED
        + """
    return abs(np.linalg.norm(grad) - np.linalg.norm(gradapprox)) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
""",
        feedback=["wrong sign"],
    ),
    Mutant(
        "gc_norm_of_sum_denominator",
        "gradient_check",
        GC_TWO_SIDED
        + """
    return np.linalg.norm(grad - gradapprox) / np.linalg.norm(grad + gradapprox)
""",
        feedback=["wrong sign"],
    ),
    Mutant(
        "gcn_compares_norms",
        "gradient_check_n",
        GCN_HEADER
        + TWO_SIDED_LOOP.format(eps="epsilon")
        + """
    return abs(np.linalg.norm(grad) - np.linalg.norm(gradapprox)) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
""",
    ),
    Mutant(
        "gcn_norm_of_sum_denominator",
        "gradient_check_n",
        GCN_HEADER
        + TWO_SIDED_LOOP.format(eps="epsilon")
        + """
    return np.linalg.norm(grad - gradapprox) / np.linalg.norm(grad + gradapprox)
""",
        feedback=["wrong sign"],
    ),
    # Compares the two vectors as sorted multisets: blind to a permutation of the entries
    # (a backward pass that fills dW1 in the wrong order), though not to a sign error.
    Mutant(
        "gcn_compares_sorted_entries",
        "gradient_check_n",
        GCN_HEADER
        + TWO_SIDED_LOOP.format(eps="epsilon")
        + """
    grad, gradapprox = np.sort(grad, axis=0), np.sort(gradapprox, axis=0)
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
""",
        feedback=["in reverse order", "entry by entry"],
    ),
    # Compares absolute values: blind to a sign error; caught by the permutation case first
    # (reversing dW1 moves entries of both signs).
    Mutant(
        "gcn_compares_absolute_values",
        "gradient_check_n",
        GCN_HEADER
        + TWO_SIDED_LOOP.format(eps="epsilon")
        + """
    grad, gradapprox = np.abs(grad), np.abs(gradapprox)
    return np.linalg.norm(grad - gradapprox) / (np.linalg.norm(grad) + np.linalg.norm(gradapprox))
""",
        feedback=["not their absolute values"],
    ),
]

# A gradient_check that binds forward_propagation and backward_propagation when its cell runs (an
# alias at the top of the cell, a default argument, a closure, a class attribute) still gets the
# suite's known functions (grading/stand_ins.py, probes.call_with_stand_ins): the forward bug
# costs only forward_propagation, never the checker beside it.
MUTANTS += [
    Mutant(
        f"forward_theta_plus_x_checker_binds_it_by_{form}",
        "forward_propagation",
        FORWARD_WRONG,
        beside={
            "gradient_check": bound_source(
                "gradient_checking", "gradient_check", ["forward_propagation", "backward_propagation"], form
            )
        },
    )
    for form in FORMS
]

ALTERNATIVES = [
    Alternative("gc_abs_float", {"gradient_check": GC_ALTERNATIVE}),
    Alternative("gcn_minus_from_plus", {"gradient_check_n": GCN_ALTERNATIVE_MINUS_FROM_PLUS}),
    Alternative("gcn_dictionary", {"gradient_check_n": GCN_ALTERNATIVE_DICT}),
]

# gradient_check is graded with known forward/backward functions swapped in:
# a notebook with a broken forward_propagation or backward_propagation and the
# solution's gradient_check shows that they cost gradient_check nothing.
KEEP_APART = [({"gradient_check"}, {"forward_propagation", "backward_propagation"})]
