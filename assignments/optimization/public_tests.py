"""Public tests for the Optimization assignment, run inside the notebook.

Each `<function>_test(target)` calls your function on small fixed inputs and
prints "All tests passed." or raises AssertionError with a message saying what
to look at. The autograder runs more checks than these (other layer counts,
other hyperparameters, other step counts t), so passing here is a first step.
"""
import numpy as np


def _make_inputs(seed, layer_dims):
    """Random parameters, grads, v (any sign) and s (nonnegative) for a network.

    Returns four dicts: parameters ("Wl", "bl") and grads, v, s ("dWl", "dbl"),
    with Wl of shape (layer_dims[l], layer_dims[l-1]) and bl of shape (layer_dims[l], 1).
    """
    rng = np.random.RandomState(seed)
    parameters, grads, v, s = {}, {}, {}, {}
    for l in range(1, len(layer_dims)):
        shapes = {"W": (layer_dims[l], layer_dims[l - 1]), "b": (layer_dims[l], 1)}
        for name in ("W", "b"):
            parameters[name + str(l)] = rng.randn(*shapes[name])
            grads["d" + name + str(l)] = rng.randn(*shapes[name])
            v["d" + name + str(l)] = rng.randn(*shapes[name])
            s["d" + name + str(l)] = rng.rand(*shapes[name])
    return parameters, grads, v, s


def _copy(d):
    """A copy of a dict of arrays whose arrays can be changed without touching d."""
    return {k: np.array(a, dtype=float) for k, a in d.items()}


def _check_dict(got, expected, what):
    """got is a dict with the keys of expected and arrays close to its arrays."""
    assert isinstance(got, dict), f"{what} should be a dict, got {type(got).__name__} (did you forget to return it?)"
    assert set(got) == set(expected), f"{what} has keys {sorted(got)}, expected {sorted(expected)}"
    for k in expected:
        value = np.asarray(got[k])
        assert value.shape == expected[k].shape, f"{what}['{k}'] has shape {value.shape}, expected {expected[k].shape}"
        assert np.allclose(value, expected[k], rtol=1e-6, atol=1e-7), f"{what}['{k}'] has wrong values"


def _check_zeros_like(got, parameters, what):
    """got has keys "dWl", "dbl" holding zeros shaped like parameters["Wl"], parameters["bl"]."""
    assert isinstance(got, dict), f"{what} should be a dict, got {type(got).__name__}"
    expected_keys = {"d" + k for k in parameters}
    assert set(got) == expected_keys, f"{what} has keys {sorted(got)}, expected {sorted(expected_keys)}"
    for k, p in parameters.items():
        value = np.asarray(got["d" + k])
        assert value.shape == p.shape, f"{what}['d{k}'] has shape {value.shape}, expected {p.shape}"
        assert np.all(value == 0), f"{what}['d{k}'] should be all zeros"


# Expected outputs on _make_inputs(1, [3, 2, 1]), computed with the reference solution.
_EXPECTED = {
    "gd": {
        "W1": np.array([[1.44986419, -0.53563572, -0.56007566], [-1.04803158, 0.71919684, -2.09552463]]),
        "b1": np.array([[0.91314497], [-0.59015092]]),
        "W2": np.array([[-0.62004809, -0.84393918]]),
        "b2": np.array([[-0.10307266]]),
    },
    "momentum_parameters": {
        "W1": np.array([[1.63591479, -0.56957945, -0.63340139], [-0.97148470, 0.86630509, -2.20193003]]),
        "b1": np.array([[0.92619478], [-0.72210216]]),
        "W2": np.array([[-0.57990231, -0.86617641]]),
        "b2": np.array([[-0.11571502]]),
    },
    "momentum_v": {
        "dW1": np.array([[-0.11569431, -0.42176961, 1.05229641], [-1.01483918, -0.00897459, -0.99608665]]),
        "db1": np.array([[-0.25338829], [0.38374298]]),
        "dW2": np.array([[-1.07270393, 0.20970767]]),
        "db2": np.array([[-0.76120536]]),
    },
    "rmsprop_parameters": {
        "W1": np.array([[1.60670889, -0.60133604, -0.53202378], [-1.06851119, 0.84794473, -2.27943542]]),
        "b1": np.array([[0.90315770], [-0.65849065]]),
        "W2": np.array([[-0.67841836, -0.84505348]]),
        "b2": np.array([[-0.15476492]]),
    },
    "rmsprop_s": {
        "dW1": np.array([[0.97875432, 0.53362799, 0.68597620], [0.31298233, 0.70101351, 0.86872121]]),
        "db1": np.array([[0.28504861], [0.13748493]]),
        "dW2": np.array([[0.58791820, 0.69276238]]),
        "db2": np.array([[0.05733278]]),
    },
    "adam_parameters": {
        "W1": np.array([[1.62362426, -0.60682688, -0.53735803], [-1.05994363, 0.86396166, -2.29216908]]),
        "b1": np.array([[0.90436258], [-0.68873989]]),
        "W2": np.array([[-0.67666446, -0.84694758]]),
        "b2": np.array([[-0.16646116]]),
    },
    "adam_v": {
        "dW1": np.array([[0.09102859, -0.45948486, 0.97082337], [-0.92978709, 0.15447902, -1.11431488]]),
        "db1": np.array([[-0.23888851], [0.23713049]]),
        "dW2": np.array([[-1.02809751, 0.18499964]]),
        "db2": np.array([[-0.77525243]]),
    },
    "adam_s": {
        "dW1": np.array([[0.97875432, 0.53362799, 0.68597620], [0.31298233, 0.70101351, 0.86872121]]),
        "db1": np.array([[0.28504861], [0.13748493]]),
        "dW2": np.array([[0.58791820, 0.69276238]]),
        "db2": np.array([[0.05733278]]),
    },
    "adam_v_corrected": {
        "dW1": np.array([[0.25285719, -1.27634684, 2.69673159], [-2.58274191, 0.42910839, -3.09531910]]),
        "db1": np.array([[-0.66357919], [0.65869580]]),
        "dW2": np.array([[-2.85582640, 0.51388788]]),
        "db2": np.array([[-2.15347897]]),
    },
    "adam_s_corrected": {
        "dW1": np.array([[49.18363396, 26.81547696, 34.47116594], [15.72775530, 35.22680978, 43.65433229]]),
        "db1": np.array([[14.32405052], [6.90879049]]),
        "dW2": np.array([[29.54362790, 34.81217992]]),
        "db2": np.array([[2.88104403]]),
    },
}


def update_parameters_with_gd_test(target):
    parameters, grads, _, _ = _make_inputs(1, [3, 2, 1])
    result = target(_copy(parameters), grads, 0.1)
    _check_dict(result, _EXPECTED["gd"], "parameters returned by update_parameters_with_gd")
    print("All tests passed.")


def random_mini_batches_test(target):
    m = 148
    # Column j of X is (j, -j) and its label is j % 2, so the pairs can be checked.
    X = np.vstack([np.arange(m), -np.arange(m)]).astype(float)
    Y = (np.arange(m) % 2).reshape(1, m).astype(float)
    mini_batches = target(X, Y, 64, seed=0)
    assert isinstance(mini_batches, list), f"random_mini_batches should return a list, got {type(mini_batches).__name__}"
    sizes = [mb[1].shape[1] for mb in mini_batches]
    assert sizes == [64, 64, 20], f"with m = 148 and mini_batch_size = 64 the mini-batch sizes should be [64, 64, 20], got {sizes}"
    for k, (mb_X, mb_Y) in enumerate(mini_batches):
        assert mb_X.shape == (2, sizes[k]), f"mini_batch_X number {k} has shape {mb_X.shape}, expected {(2, sizes[k])}"
        assert mb_Y.shape == (1, sizes[k]), f"mini_batch_Y number {k} has shape {mb_Y.shape}, expected {(1, sizes[k])}"
        assert np.array_equal(mb_X[1], -mb_X[0]), "the columns of X were broken apart: shuffle whole columns, X[:, permutation]"
        assert np.array_equal(mb_Y[0], mb_X[0] % 2), "X and Y are no longer paired: use the same permutation for both"
    order = np.concatenate([mb_X[0] for mb_X, _ in mini_batches])
    assert np.array_equal(np.sort(order), np.arange(m)), "every example should appear in exactly one mini-batch"
    assert not np.array_equal(order, np.arange(m)), "the examples are not shuffled: use np.random.permutation(m)"
    again = target(X, Y, 64, seed=0)
    order_again = np.concatenate([mb_X[0] for mb_X, _ in again])
    assert np.array_equal(order, order_again), "the same seed should give the same mini-batches: call np.random.seed(seed)"
    exact = target(X[:, :128], Y[:, :128], 64, seed=1)
    sizes = [mb[1].shape[1] for mb in exact]
    assert sizes == [64, 64], f"with m = 128 and mini_batch_size = 64 the sizes should be [64, 64] (no empty batch), got {sizes}"
    print("All tests passed.")


def initialize_velocity_test(target):
    parameters, _, _, _ = _make_inputs(1, [3, 2, 1])
    v = target(_copy(parameters))
    _check_zeros_like(v, parameters, "v")
    print("All tests passed.")


def update_parameters_with_momentum_test(target):
    parameters, grads, v, _ = _make_inputs(1, [3, 2, 1])
    result = target(_copy(parameters), grads, _copy(v), 0.9, 0.1)
    assert isinstance(result, tuple) and len(result) == 2, "return the tuple (parameters, v)"
    _check_dict(result[1], _EXPECTED["momentum_v"], "v (check v = beta * v + (1 - beta) * dW)")
    _check_dict(result[0], _EXPECTED["momentum_parameters"], "parameters (check W = W - learning_rate * v)")
    print("All tests passed.")


def initialize_rmsprop_test(target):
    parameters, _, _, _ = _make_inputs(1, [3, 2, 1])
    s = target(_copy(parameters))
    _check_zeros_like(s, parameters, "s")
    print("All tests passed.")


def update_parameters_with_rmsprop_test(target):
    parameters, grads, _, s = _make_inputs(1, [3, 2, 1])
    result = target(_copy(parameters), grads, _copy(s), 0.99, 0.01, epsilon=1e-8)
    assert isinstance(result, tuple) and len(result) == 2, "return the tuple (parameters, s)"
    _check_dict(result[1], _EXPECTED["rmsprop_s"], "s (check s = beta2 * s + (1 - beta2) * dW**2)")
    _check_dict(result[0], _EXPECTED["rmsprop_parameters"],
                "parameters (check W = W - learning_rate * dW / (np.sqrt(s) + epsilon))")
    print("All tests passed.")


def initialize_adam_test(target):
    parameters, _, _, _ = _make_inputs(1, [3, 2, 1])
    result = target(_copy(parameters))
    assert isinstance(result, tuple) and len(result) == 2, "return the tuple (v, s)"
    v, s = result
    _check_zeros_like(v, parameters, "v")
    _check_zeros_like(s, parameters, "s")
    for k in v:
        assert v[k] is not s[k], f"v['{k}'] and s['{k}'] are the same array: create separate np.zeros for s"
    print("All tests passed.")


def update_parameters_with_adam_test(target):
    parameters, grads, v, s = _make_inputs(1, [3, 2, 1])
    result = target(_copy(parameters), grads, _copy(v), _copy(s), 2, 0.02, 0.8, 0.99, 1e-8)
    assert isinstance(result, tuple) and len(result) == 5, \
        "return the tuple (parameters, v, s, v_corrected, s_corrected)"
    got_parameters, got_v, got_s, got_v_corrected, got_s_corrected = result
    _check_dict(got_v, _EXPECTED["adam_v"], "v (check v = beta1 * v + (1 - beta1) * dW)")
    _check_dict(got_s, _EXPECTED["adam_s"], "s (check s = beta2 * s + (1 - beta2) * dW**2)")
    _check_dict(got_v_corrected, _EXPECTED["adam_v_corrected"], "v_corrected (check v / (1 - beta1**t))")
    _check_dict(got_s_corrected, _EXPECTED["adam_s_corrected"], "s_corrected (check s / (1 - beta2**t))")
    _check_dict(got_parameters, _EXPECTED["adam_parameters"],
                "parameters (check W = W - learning_rate * v_corrected / (np.sqrt(s_corrected) + epsilon))")

    # On the very first step (t = 1, v = s = 0) bias correction gives back the gradient exactly.
    v0 = {k: np.zeros_like(g) for k, g in grads.items()}
    s0 = {k: np.zeros_like(g) for k, g in grads.items()}
    result = target(_copy(parameters), grads, v0, s0, 1)
    v_corrected, s_corrected = result[3], result[4]
    for k, g in grads.items():
        assert np.allclose(v_corrected[k], g), \
            f"at t = 1 with v = 0, v_corrected['{k}'] should equal the gradient: check 1 - beta1**t"
        assert np.allclose(s_corrected[k], g ** 2), \
            f"at t = 1 with s = 0, s_corrected['{k}'] should equal the squared gradient: check 1 - beta2**t"
    print("All tests passed.")


def update_lr_test(target):
    assert np.isclose(target(0.5, 0, 1), 0.5), "at epoch 0 the learning rate should be learning_rate0"
    assert np.isclose(target(0.5, 2, 1), 0.5 / 3), "update_lr(0.5, 2, 1) should be 0.5 / (1 + 1 * 2)"
    assert np.isclose(target(0.3, 10, 0.5), 0.3 / 6), "update_lr(0.3, 10, 0.5) should be 0.3 / (1 + 0.5 * 10)"
    print("All tests passed.")


def schedule_lr_decay_test(target):
    assert np.isclose(target(0.5, 999, 1), 0.5), \
        "before epoch 1000 the learning rate should not change yet: use math.floor(epoch_num / time_interval)"
    assert np.isclose(target(0.5, 1000, 1), 0.25), "schedule_lr_decay(0.5, 1000, 1) should be 0.5 / (1 + 1 * 1)"
    assert np.isclose(target(0.5, 1999, 1), 0.25), \
        "schedule_lr_decay(0.5, 1999, 1) should be 0.5 / (1 + 1 * floor(1999 / 1000))"
    assert np.isclose(target(0.3, 250, 0.5, time_interval=100), 0.15), \
        "schedule_lr_decay(0.3, 250, 0.5, time_interval=100) should be 0.3 / (1 + 0.5 * floor(250 / 100))"
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
