"""Planted bugs of the Batch normalization assignment: each must cost only its own function.

``dlgrade validate batch_norm --mutants`` applies each edit (an exact text of the
function's solution source, replaced once) to the solution notebook, grades
it, and fails unless the mutant loses points on the functions in ``costs``
(default: its own) and keeps full marks everywhere else.
"""
from autograder.course.mutants import Mutant

MUTANTS = [
    # N - 1 instead of the notebook's 1/N batch variance.
    Mutant("forward_unbiased_variance", "batchnorm_forward",
           ("var = np.var(x, axis=0)  ", "var = np.var(x, axis=0, ddof=1)  ")),
    # The momentum weighs the new batch instead of the old average.
    Mutant("forward_momentum_swapped", "batchnorm_forward",
           ("running_mean = momentum * running_mean + (1 - momentum) * mu",
            "running_mean = (1 - momentum) * running_mean + momentum * mu")),
    # eps left out of the square root.
    Mutant("forward_ignores_eps", "batchnorm_forward",
           ("x_hat = (x - mu) / np.sqrt(var + eps)", "x_hat = (x - mu) / np.sqrt(var)")),
    # Test mode normalizes with the batch's statistics and updates the running averages.
    Mutant("forward_test_mode_uses_batch_statistics", "batchnorm_forward",
           ("x_hat = (x - running_mean) / np.sqrt(running_var + eps)",
            "running_mean, running_var = np.mean(x, axis=0), np.var(x, axis=0)\n"
            "        x_hat = (x - running_mean) / np.sqrt(running_var + eps)")),
    # Backward: the path through the variance is missing.
    Mutant("backward_missing_variance_path", "batchnorm_backward",
           ("dxmu = dx_hat * inv_std + dvar * 2.0 * xmu / N", "dxmu = dx_hat * inv_std")),
    # Backward: the path through the mean is missing.
    Mutant("backward_missing_mean_path", "batchnorm_backward",
           ("dx = dxmu + dmu / N", "dx = dxmu")),
    # Closed form: dgamma summed over the features instead of the examples.
    Mutant("alt_dgamma_wrong_axis", "batchnorm_backward_alt",
           ("dgamma = np.sum(dout * x_hat, axis=0)", "dgamma = np.sum(dout * x_hat, axis=1)")),
    # Closed form: dbeta summed on the wrong axis (kept as a column).
    Mutant("alt_dbeta_wrong_axis", "batchnorm_backward_alt",
           ("dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout, axis=1, keepdims=True)")),
    # Layer: ReLU before batch normalization.
    Mutant("layer_relu_before_batchnorm", "affine_bn_relu_forward",
           ("    a_bn, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)\n"
            "    out, relu_cache = relu_forward(a_bn)",
            "    r, relu_cache = relu_forward(a)\n"
            "    out, bn_cache = batchnorm_forward(r, gamma, beta, bn_param)")),
    # Layer backward: the ReLU's mask forgotten.
    Mutant("layer_backward_skips_relu", "affine_bn_relu_backward",
           ("da_bn = relu_backward(dout, relu_cache)", "da_bn = dout")),
]
