"""Assertions for hidden suites that produce learner-safe feedback.

A failed check raises :class:`CheckFailed` with a sentence that names what was
checked and a hint. It never embeds the expected array: only shapes, dtypes,
counts and error magnitudes appear in messages, so feedback cannot leak the
hidden reference values. Suites should use these helpers (or raise
``CheckFailed`` themselves) instead of bare ``assert`` on arrays, whose pytest
rewriting would print both operands.
"""

from __future__ import annotations

import math

import numpy as np

from autograder.grading import shapes

_SHARED_RNG = np.random.RandomState()


def seeded_rng(seed: int) -> np.random.RandomState:
    """The stream of ``np.random.RandomState(seed)``, without building a new one.

    Suites make hundreds of seeded test inputs per grade: building a
    RandomState costs about 0.27 ms, reseeding one about 3 us. The generator is
    shared, so draw what you need before the next ``seeded_rng`` call.
    """
    _SHARED_RNG.seed(seed)
    return _SHARED_RNG


class CheckFailed(AssertionError):
    """A hidden check failed; ``message`` and ``hint`` are shown to the learner."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


def check(condition, message: str, hint: str = "") -> None:
    """Fail with ``message``/``hint`` unless ``condition`` is truthy.

    ``condition`` must be a plain bool (or numpy bool); anything else is a bug in
    the suite, since an object's truthiness could come from learner code.
    """
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(f"check() needs a bool, got {type(condition).__name__}")
    if not condition:
        raise CheckFailed(message, hint)


def as_array(value, what: str, hint: str = "") -> np.ndarray:
    """Return ``value`` as a numeric ndarray or fail saying it is not one."""
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        arr = np.asarray(value)
    else:
        raise CheckFailed(f"{what} should be a numpy array, got {type(value).__name__}", hint)
    if arr.dtype.kind not in "biuf":
        raise CheckFailed(f"{what} should hold numbers, got dtype {arr.dtype}", hint)
    return arr


def check_type(value, expected_type, what: str, hint: str = "") -> None:
    if not isinstance(value, expected_type):
        names = (
            " or ".join(t.__name__ for t in expected_type)
            if isinstance(expected_type, tuple)
            else expected_type.__name__
        )
        raise CheckFailed(f"{what} should be a {names}, got {type(value).__name__}", hint)


MAX_QUOTED = 10  # items a message quotes of a learner's collection; then "... N more"


def quoted(items, at_most: int = MAX_QUOTED, width: int = 60) -> str:
    """``[a, b, ...]`` of the first ``at_most`` items (each repr cut to ``width``), then "... N more"."""
    items = list(items)
    shown = []
    for item in items[:at_most]:
        text = repr(item)
        shown.append(text if len(text) <= width else text[: width - 3] + "...")
    more = f", ... {len(items) - at_most:,} more" if len(items) > at_most else ""
    return f"[{', '.join(shown)}{more}]"


def _sorted_keys(keys) -> list:
    try:
        return sorted(keys)
    except TypeError:  # keys of several types
        return sorted(keys, key=repr)


def check_keys(mapping, expected_keys, what: str, hint: str = "") -> None:
    check_type(mapping, dict, what, hint)
    missing = _sorted_keys(set(expected_keys) - set(mapping))
    extra = _sorted_keys(set(mapping) - set(expected_keys))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {quoted(missing)}")
        if extra:
            parts.append(f"unexpected keys {quoted(extra)}")
        raise CheckFailed(f"{what}: " + ", ".join(parts), hint)


def check_shape(value, shape, what: str, hint: str = "") -> np.ndarray:
    """``value`` as an array of ``shape``, or a failure naming both shapes.

    In a test with ``shape_points`` (grading/shapes.py), a shape that differs only
    by size-1 axes is recorded as a slip and the array comes back reshaped, so
    that the values are still compared."""
    arr = as_array(value, what, hint)
    return _shaped(arr, tuple(shape), what, hint)


def _shaped(arr: np.ndarray, shape: tuple, what: str, hint: str) -> np.ndarray:
    if arr.shape == shape:
        shapes.matched()
        return arr
    if shapes.tolerated(arr.shape, shape, what):
        return arr.reshape(shape)
    message = f"{what} has shape {arr.shape}, expected {shape}"
    shapes.wrong(message)
    raise CheckFailed(message, hint)


def _allclose(arr: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """np.allclose, with a fast path for finite float arrays (suites call this thousands of times)."""
    if arr.dtype.kind == "f" and expected.dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):
            if bool(np.all(np.abs(arr - expected) <= atol + rtol * np.abs(expected))):
                return True
    return bool(np.allclose(arr, expected, rtol=rtol, atol=atol))


def check_close(value, expected, what: str, hint: str = "", rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Values match the reference within tolerance; reports error size only (nothing for a single number)."""
    expected = np.asarray(expected)
    arr = check_shape(value, expected.shape, what, hint)
    if not np.all(np.isfinite(arr)) and np.all(np.isfinite(expected)):
        raise CheckFailed(f"{what} contains NaN or inf", hint)
    if not _allclose(arr, expected, rtol, atol):
        if arr.size == 1:
            # An error size would give the expected value away.
            raise CheckFailed(f"{what} is not the expected value", hint)
        diff = np.abs(arr.astype(np.float64) - expected.astype(np.float64))
        bad = int(np.count_nonzero(~np.isclose(arr, expected, rtol=rtol, atol=atol)))
        raise CheckFailed(
            f"{what} differs from the expected values in {bad} of {arr.size} entries "
            f"(largest absolute error {float(np.nanmax(diff)):.3g})",
            hint,
        )


def check_scalar_close(
    value, expected: float, what: str, hint: str = "", rtol: float = 1e-5, atol: float = 1e-8
) -> float:
    arr = as_array(value, what, hint)
    if arr.size != 1:
        raise CheckFailed(f"{what} should be a single number, got shape {arr.shape}", hint)
    got = float(arr.reshape(()))
    if not math.isclose(got, float(expected), rel_tol=rtol, abs_tol=atol):
        raise CheckFailed(f"{what} is {got:.6g}, which is not the expected value", hint)
    return got


def check_log_close(value, expected: float, what: str, hint: str = "", decades: float = 0.5) -> float:
    """Positive small numbers agree within ``decades`` orders of magnitude.

    Used for quantities such as gradient-check differences (1e-7 vs 1e-2) where
    an absolute tolerance would accept 0 for anything tiny.
    """
    arr = as_array(value, what, hint)
    got = float(arr.reshape(()))
    if not (got > 0 and math.isfinite(got)):
        raise CheckFailed(f"{what} should be a positive finite number, got {got:.3g}", hint)
    if abs(math.log10(got) - math.log10(float(expected))) > decades:
        raise CheckFailed(f"{what} is {got:.3g}, off by more than {decades} orders of magnitude", hint)
    return got


def tf_value(
    value, what: str, kinds=("EagerTensor",), dtype: str | None = None, hint: str = "", *, shape=None, shape_hint=""
) -> np.ndarray:
    """The numpy array of a learner's TensorFlow value (a ``codec.TFValue``), after checking it.

    ``kinds``: the accepted kinds (``"EagerTensor"``, ``"Variable"``); ``dtype``: the
    TF dtype name it must have (e.g. ``"float32"``), if any; ``shape``: the
    shape it must have, if any (``shape_hint``: a string or a function of the
    shape it has). Checked in that order: kind, dtype, numbers, shape.
    """
    from autograder.sandbox.codec import TFValue

    if not isinstance(value, TFValue):
        got = type(value).__name__
        raise CheckFailed(
            f"{what} should be a TensorFlow {' or '.join(kinds)}, got a {got}",
            hint or "compute with TensorFlow operations and return the tensor itself, not .numpy()",
        )
    if value.kind not in kinds:
        raise CheckFailed(f"{what} should be a TensorFlow {' or '.join(kinds)}, got a {value.kind}", hint)
    if dtype is not None and value.dtype != dtype:
        raise CheckFailed(f"{what} has dtype {value.dtype}, expected {dtype}", hint or f"use tf.cast(..., tf.{dtype})")
    arr = as_array(value.value, what, hint)
    if shape is not None and arr.shape != tuple(shape):
        arr = _shaped(arr, tuple(shape), what, _hint_text(shape_hint, arr.shape))
    elif shape is not None:
        shapes.matched()
    return arr


def number_list(
    items, what: str, per: str, hint: str = "", *, length: int | None = None, length_hint: str = ""
) -> np.ndarray:
    """The numbers of the list ``items`` (one per ``per``, e.g. per epoch) as a float array of shape (n,).

    Each item is a Python int or float, or an array (or TensorFlow ``TFValue``)
    of one element; anything else fails with ``hint``. ``length``: ``items``
    must also be a list of that many items (``length_hint`` on a failure).
    """
    from autograder.sandbox.codec import TFValue

    if length is not None:
        check(
            isinstance(items, list) and len(items) == length,
            f"{what} should be a list with one value per {per} ({length})",
            length_hint,
        )
    numbers = []
    for item in items:
        if isinstance(item, TFValue):
            item = item.value
        if isinstance(item, bool) or not isinstance(item, (int, float, np.ndarray)) or np.size(item) != 1:
            raise CheckFailed(f"{what} should hold one number per {per}, got a {type(item).__name__}", hint)
        numbers.append(float(np.asarray(item, dtype=float).reshape(())))
    return np.array(numbers)


# ------------------------------------------------------------------ helpers shared by the suites


def helper_module(assignment: str):
    """The assignment's helper module (``assignments/<name>/<name>_utils.py``), importable at collection.

    The reference puts the assignment folder on ``sys.path`` when it is first
    built, which may be after a suite is collected.
    """
    import importlib
    import sys

    from autograder.grading import catalogue

    folder = str(catalogue.load(assignment).release_dir)
    if folder not in sys.path:
        sys.path.append(folder)
    return importlib.import_module(f"{assignment}_utils")


def unpack(result, names: str, what: str, hint: str = ""):
    """The items of the tuple ``what`` returned, ``names`` (e.g. ``"parameters, v"``) long, or a failure."""
    n = len(names.split(","))
    if not (isinstance(result, (tuple, list)) and len(result) == n):
        got = f"{len(result)} items" if isinstance(result, (tuple, list)) else type(result).__name__
        raise CheckFailed(
            f"{what} should return a tuple of {n} items ({names}), got {got}",
            hint or f"end the function with return {names}",
        )
    return result


def same_values(got, wrong, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True when ``got`` equals ``wrong`` (numbers, arrays, or dicts/lists of them) within tolerance.

    Never raises: ``got`` is learner data of any structure.
    """
    if isinstance(wrong, dict):
        return (
            isinstance(got, dict)
            and set(got) == set(wrong)
            and all(same_values(got[k], wrong[k], rtol, atol) for k in wrong)
        )
    if isinstance(wrong, (list, tuple)):
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(wrong)
            and all(same_values(g, w, rtol, atol) for g, w in zip(got, wrong))
        )
    if isinstance(got, bool) or not isinstance(got, (int, float, np.number, np.ndarray)):
        return False
    try:
        got, wrong = np.asarray(got, dtype=np.float64), np.asarray(wrong, dtype=np.float64)
        return got.shape == wrong.shape and bool(np.allclose(got, wrong, rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        return False


def diagnose(got, mistakes, default: str = "", matches=same_values) -> str:
    """The label of the first known mistake whose answer is ``got``, else ``default``.

    ``mistakes``: (label, wrong) pairs, where ``wrong`` is what the mistaken
    implementation returns, or a function of no argument computing it, called
    only when the pairs before it did not match. Call ``diagnose`` only once a
    check has failed (e.g. from a hint function): building the wrong answers
    is wasted on a correct one.
    """
    for label, wrong in mistakes:
        if matches(got, wrong() if callable(wrong) else wrong):
            return label
    return default


def _hint_text(hint, *args) -> str:
    return hint(*args) if callable(hint) else hint


def _check_dict_keys(got, expected, keys, extra_keys, what, hint) -> list:
    keys = sorted(expected) if keys is None else list(keys)
    try:
        if extra_keys:
            check_type(got, dict, what)
            missing = [k for k in keys if k not in got]
            check(not missing, f"{what}: missing keys {quoted(missing)}")
        else:
            check_keys(got, keys, what)
    except CheckFailed as failure:
        raise CheckFailed(failure.message, _hint_text(hint)) from None
    return keys


def check_dict_structure(
    got, expected: dict, what: str, hint="", *, key_label: str = "{key} of {what}", shape_hint=None, float_hint=None
) -> dict:
    """``got`` has exactly the keys of ``expected``, each an array of its shape; returns {key: array}.

    ``float_hint``: when given, every array must also have a float dtype (the hint of that failure).
    ``hint`` (a string or a function of no argument) and ``shape_hint`` as in :func:`check_dict_close`.
    """
    keys = _check_dict_keys(got, expected, None, False, what, hint)
    arrays = {}
    for key in keys:
        label = key_label.format(what=what, key=key)
        try:
            arrays[key] = check_shape(got[key], np.shape(expected[key]), label)
        except CheckFailed as failure:
            raise CheckFailed(
                failure.message, _hint_text(shape_hint, key) if shape_hint is not None else _hint_text(hint)
            ) from None
        check(
            float_hint is None or arrays[key].dtype.kind == "f",
            f"{label} has dtype {arrays[key].dtype}, expected a float dtype",
            float_hint or "",
        )
    return arrays


def check_dict_close(
    got,
    expected: dict,
    what: str,
    hint="",
    *,
    keys=None,
    extra_keys: bool = False,
    key_label: str = "{key} of {what}",
    key_hint=None,
    shape_hint=None,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> dict:
    """``got`` is a dict with the keys of ``expected`` whose arrays match it; returns ``got``.

    ``keys``: the keys compared (default: every key of ``expected``, sorted);
    ``extra_keys``: allow keys beyond them. ``hint`` is a string or a function
    of no argument (called only on a failure); ``key_hint`` (a string or
    ``key_hint(key, value)``) and ``shape_hint`` (a string or ``shape_hint(key)``)
    give the hint of a wrong array / a wrong shape instead.
    ``key_label`` names one entry in messages.
    """
    keys = _check_dict_keys(got, expected, keys, extra_keys, what, hint)
    for key in keys:
        label = key_label.format(what=what, key=key)
        want = np.asarray(expected[key])
        try:
            value = check_shape(got[key], want.shape, label)
        except CheckFailed as failure:
            raise CheckFailed(
                failure.message, _hint_text(shape_hint, key) if shape_hint is not None else _hint_text(hint)
            ) from None
        try:
            check_close(value, want, label, rtol=rtol, atol=atol)
        except CheckFailed as failure:
            raise CheckFailed(
                failure.message, _hint_text(key_hint, key, value) if key_hint is not None else _hint_text(hint)
            ) from None
    return got
