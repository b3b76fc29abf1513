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


def check_keys(mapping, expected_keys, what: str, hint: str = "") -> None:
    check_type(mapping, dict, what, hint)
    missing = sorted(set(expected_keys) - set(mapping))
    extra = sorted(set(mapping) - set(expected_keys))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if extra:
            parts.append(f"unexpected keys {extra}")
        raise CheckFailed(f"{what}: " + ", ".join(parts), hint)


def check_shape(value, shape, what: str, hint: str = "") -> np.ndarray:
    arr = as_array(value, what, hint)
    if arr.shape != tuple(shape):
        raise CheckFailed(f"{what} has shape {arr.shape}, expected {tuple(shape)}", hint)
    return arr


def _allclose(arr: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    """np.allclose, with a fast path for finite float arrays (suites call this thousands of times)."""
    if arr.dtype.kind == "f" and expected.dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):
            if bool(np.all(np.abs(arr - expected) <= atol + rtol * np.abs(expected))):
                return True
    return bool(np.allclose(arr, expected, rtol=rtol, atol=atol))


def check_close(value, expected, what: str, hint: str = "", rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Values match the reference within tolerance; reports error size only."""
    expected = np.asarray(expected)
    arr = check_shape(value, expected.shape, what, hint)
    if not np.all(np.isfinite(arr)) and np.all(np.isfinite(expected)):
        raise CheckFailed(f"{what} contains NaN or inf", hint)
    if not _allclose(arr, expected, rtol, atol):
        diff = np.abs(arr.astype(np.float64) - expected.astype(np.float64))
        bad = int(np.count_nonzero(~np.isclose(arr, expected, rtol=rtol, atol=atol)))
        raise CheckFailed(
            f"{what} differs from the expected values in {bad} of {arr.size} entries "
            f"(largest absolute error {float(np.nanmax(diff)):.3g})",
            hint,
        )


def check_scalar_close(value, expected: float, what: str, hint: str = "", rtol: float = 1e-5, atol: float = 1e-8) -> float:
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
