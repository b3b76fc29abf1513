"""Planted bugs of the Batch normalization assignment, and other correct answers (format: autograder/course/mutants.py).

``dlgrade validate batch_norm --mutants`` applies each edit (an exact text of the
function's solution source, replaced once) to the solution notebook, grades
it, and fails unless the mutant loses points on the functions in ``costs``
(default: its own) and keeps full marks everywhere else.
"""

from autograder.course.bindings import FORMS, bound_source
from autograder.course.mutants import Alternative, Mutant

MUTANTS = [
    # N - 1 instead of the notebook's 1/N batch variance.
    Mutant(
        "forward_unbiased_variance",
        "batchnorm_forward",
        ("var = np.var(x, axis=0)  ", "var = np.var(x, axis=0, ddof=1)  "),
    ),
    # The momentum weighs the new batch instead of the old average.
    Mutant(
        "forward_momentum_swapped",
        "batchnorm_forward",
        (
            "running_mean = momentum * running_mean + (1 - momentum) * mu",
            "running_mean = (1 - momentum) * running_mean + momentum * mu",
        ),
    ),
    # eps left out of the square root.
    Mutant(
        "forward_ignores_eps",
        "batchnorm_forward",
        ("x_hat = (x - mu) / np.sqrt(var + eps)", "x_hat = (x - mu) / np.sqrt(var)"),
    ),
    # eps folded into the running variance: at the default eps = 1e-5 it is within the tolerance.
    Mutant(
        "forward_eps_in_running_variance",
        "batchnorm_forward",
        (
            "running_var = momentum * running_var + (1 - momentum) * var",
            "running_var = momentum * running_var + (1 - momentum) * (var + eps)",
        ),
        fails=["running = momentum * running"],
    ),
    # A test-mode cache (the spec: None, there is no backward pass at test time).
    Mutant(
        "forward_test_mode_cache",
        "batchnorm_forward",
        (
            "        x_hat = (x - running_mean) / np.sqrt(running_var + eps)\n",
            "        x_hat = (x - running_mean) / np.sqrt(running_var + eps)\n"
            "        cache = (x, x_hat, running_mean, running_var, gamma, beta, eps)\n",
        ),
        fails=["the cache is None"],
    ),
    # Test mode normalizes with the batch's statistics and updates the running averages.
    Mutant(
        "forward_test_mode_uses_batch_statistics",
        "batchnorm_forward",
        (
            "x_hat = (x - running_mean) / np.sqrt(running_var + eps)",
            "running_mean, running_var = np.mean(x, axis=0), np.var(x, axis=0)\n"
            "        x_hat = (x - running_mean) / np.sqrt(running_var + eps)",
        ),
    ),
    # The updated running averages never stored back into bn_param: the grader must see what the
    # learner's function leaves in its argument (an in-place update in the sandbox).
    Mutant(
        "forward_running_averages_not_stored",
        "batchnorm_forward",
        ('    bn_param["running_mean"] = running_mean\n    bn_param["running_var"] = running_var\n', ""),
    ),
    # Backward: the path through the variance is missing.
    Mutant(
        "backward_missing_variance_path",
        "batchnorm_backward",
        ("dxmu = dx_hat * inv_std + dvar * 2.0 * xmu / N", "dxmu = dx_hat * inv_std"),
    ),
    # Backward: the path through the mean is missing.
    Mutant("backward_missing_mean_path", "batchnorm_backward", ("dx = dxmu + dmu / N", "dx = dxmu")),
    # Closed form: dgamma summed over the features instead of the examples.
    Mutant(
        "alt_dgamma_wrong_axis",
        "batchnorm_backward_alt",
        ("dgamma = np.sum(dout * x_hat, axis=0)", "dgamma = np.sum(dout * x_hat, axis=1)"),
    ),
    # Closed form: dbeta summed on the wrong axis (kept as a column).
    Mutant(
        "alt_dbeta_wrong_axis",
        "batchnorm_backward_alt",
        ("dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout, axis=1, keepdims=True)"),
    ),
    # Shape slips (grading/shapes.py): the right values with keepdims shapes, (1, D) where the
    # notebook says (D,), lose only the points of the shape checks, never those of the values.
    Mutant(
        "forward_keepdims_statistics",
        "batchnorm_forward",
        [
            ("mu = np.mean(x, axis=0)  ", "mu = np.mean(x, axis=0, keepdims=True)  "),
            ("var = np.var(x, axis=0)  ", "var = np.var(x, axis=0, keepdims=True)  "),
        ],
        fails=["Shapes as specified"],
        feedback=["values right; shape (1, 5), expected (5,)"],
    ),
    Mutant(
        "backward_keepdims_sums",
        "batchnorm_backward",
        [
            ("dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout, axis=0, keepdims=True)"),
            ("dgamma = np.sum(dout * x_hat, axis=0)", "dgamma = np.sum(dout * x_hat, axis=0, keepdims=True)"),
        ],
        fails=["Shapes as specified"],
        feedback=["values right; shape (1, 5), expected (5,)"],
    ),
    Mutant(
        "alt_keepdims_sums",
        "batchnorm_backward_alt",
        [
            ("dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout, axis=0, keepdims=True)"),
            ("dgamma = np.sum(dout * x_hat, axis=0)", "dgamma = np.sum(dout * x_hat, axis=0, keepdims=True)"),
        ],
        fails=["Shapes as specified"],
        feedback=["values right; shape (1, 5), expected (5,)"],
    ),
    # Layer: ReLU before batch normalization.
    Mutant(
        "layer_relu_before_batchnorm",
        "affine_bn_relu_forward",
        (
            "    a_bn, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)\n"
            "    out, relu_cache = relu_forward(a_bn)",
            "    r, relu_cache = relu_forward(a)\n    out, bn_cache = batchnorm_forward(r, gamma, beta, bn_param)",
        ),
    ),
    # Layer: the affine output cached in place of batchnorm's cache (the backward pass needs bn_cache).
    Mutant(
        "layer_caches_the_affine_output",
        "affine_bn_relu_forward",
        ("cache = (fc_cache, bn_cache, relu_cache)", "cache = (fc_cache, a, relu_cache)"),
    ),
    # Backward: a constant eps instead of the cache's.
    Mutant(
        "backward_constant_eps",
        "batchnorm_backward",
        ("inv_std = 1.0 / np.sqrt(var + eps)", "inv_std = 1.0 / np.sqrt(var + 1e-5)"),
    ),
    # Layer backward: the ReLU's mask forgotten.
    Mutant(
        "layer_backward_skips_relu",
        "affine_bn_relu_backward",
        ("da_bn = relu_backward(dout, relu_cache)", "da_bn = dout"),
    ),
]

# A layer that binds the batchnorm function when its cell runs (an alias at the top of the cell,
# a default argument, a closure, a class attribute) is graded with the reference one all the same
# (grading/stand_ins.py): the batchnorm bug costs only its own function, never the layer beside it.
MUTANTS += [
    Mutant(
        f"forward_unbiased_variance_layer_binds_it_by_{form}",
        "batchnorm_forward",
        ("var = np.var(x, axis=0)  ", "var = np.var(x, axis=0, ddof=1)  "),
        beside={
            "affine_bn_relu_forward": bound_source("batch_norm", "affine_bn_relu_forward", ["batchnorm_forward"], form)
        },
    )
    for form in FORMS
] + [
    Mutant(
        f"alt_dgamma_wrong_axis_layer_binds_it_by_{form}",
        "batchnorm_backward_alt",
        ("dgamma = np.sum(dout * x_hat, axis=0)", "dgamma = np.sum(dout * x_hat, axis=1)"),
        beside={
            "affine_bn_relu_backward": bound_source(
                "batch_norm", "affine_bn_relu_backward", ["batchnorm_backward_alt"], form
            )
        },
    )
    for form in FORMS
]

# function -> the whole source of its graded cell, written differently from the reference.
WRITTEN_DIFFERENTLY = {
    "batchnorm_forward": """
import numpy as np

def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    bn_param.setdefault("running_mean", np.zeros(D))
    bn_param.setdefault("running_var", np.zeros(D))
    if mode == "train":
        sample_mean = x.sum(axis=0) / N
        centered = x - sample_mean
        sample_var = (centered ** 2).sum(axis=0) / N
        std = (sample_var + eps) ** 0.5
        x_norm = centered / std
        bn_param["running_mean"] *= momentum
        bn_param["running_mean"] += (1 - momentum) * sample_mean
        bn_param["running_var"] = momentum * bn_param["running_var"] + (1.0 - momentum) * sample_var
        return x_norm * gamma + beta, (x, x_norm, sample_mean, sample_var, gamma, beta, eps)
    out = gamma * ((x - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + eps)) + beta
    return out, None
""",
    # CS231n's staged backward: every node of the graph, recomputed from the cache.
    "batchnorm_backward": """
import numpy as np

def batchnorm_backward(dout, cache):
    x, xhat, mu, var, gamma, beta, eps = cache
    N, D = dout.shape
    xmu = x - mu
    sqrtvar = np.sqrt(var + eps)
    ivar = 1. / sqrtvar
    dbeta = np.sum(dout, axis=0)
    dgammax = dout
    dgamma = np.sum(dgammax * xhat, axis=0)
    dxhat = dgammax * gamma
    divar = np.sum(dxhat * xmu, axis=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1. / (sqrtvar ** 2) * divar
    dvar = 0.5 * 1. / np.sqrt(var + eps) * dsqrtvar
    dsq = 1. / N * np.ones((N, D)) * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -1 * np.sum(dxmu1 + dxmu2, axis=0)
    dx2 = 1. / N * np.ones((N, D)) * dmu
    dx = dx1 + dx2
    return dx, dgamma, dbeta
""",
    # The closed form written with x - mu instead of x_hat.
    "batchnorm_backward_alt": """
import numpy as np

def batchnorm_backward_alt(dout, cache):
    x, _, mu, var, gamma, _, eps = cache
    N = x.shape[0]
    inv = (var + eps) ** -0.5
    dbeta = dout.sum(0)
    dgamma = (dout * (x - mu) * inv).sum(0)
    dx = (1. / N) * gamma * inv * (N * dout - dout.sum(0) - (x - mu) * inv ** 2 * np.sum(dout * (x - mu), axis=0))
    return dx, dgamma, dbeta
""",
    "affine_bn_relu_forward": """
import numpy as np

def affine_bn_relu_forward(x, w, b, gamma, beta, bn_param):
    z = np.dot(x, w) + b
    z_bn, bn_cache = batchnorm_forward(z, gamma, beta, bn_param)
    return np.maximum(z_bn, 0), ((x, w, b), bn_cache, z_bn)
""",
    "affine_bn_relu_backward": """
import numpy as np

def affine_bn_relu_backward(dout, cache):
    (x, w, b), bn_cache, z_bn = cache
    dz, dgamma, dbeta = batchnorm_backward(np.where(z_bn > 0, dout, 0.0), bn_cache)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0), dgamma, dbeta
""",
}

# All of them in one notebook (the layer functions call the other alternatives): full marks.
ALTERNATIVES = [Alternative("written_differently", WRITTEN_DIFFERENTLY)]

# The layer functions call the batchnorm functions (the suite swaps in the reference ones while it
# grades a layer): a batchnorm bug never shares a notebook with a layer bug, so a leak into a layer shows.
KEEP_APART = [
    (
        {"batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt"},
        {"affine_bn_relu_forward", "affine_bn_relu_backward"},
    )
]
