"""Shape slips: right values whose shape differs from the specified one only by size-1 axes.

A learner who writes ``np.sum(dout, axis=0, keepdims=True)`` returns the right
numbers with shape (1, D) where the notebook specifies (D,). Shape and value
are then separate checks: a test marked ``@pytest.mark.graded(fn, points=2,
shape_points=0.5)`` records, while it runs, every shape that :func:`checks.check_shape`
(and so ``check_close``, the dict helpers and ``tf_value(shape=...)``) sees
differ only by size-1 axes, compares the values as if the shape were right, and
the plugin (grading/plugin.py) reports two checks: the values (``points -
shape_points``) and the shapes (``shape_points``), whose failure says "values
right; shape (1, 5), expected (5,)". A test without ``shape_points`` keeps
shape and value as one check: a slip fails it, as any wrong shape does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SHAPE_CHECK_PREFIX = "Shapes as specified: "  # the name of a test's shape check is this + the test's name
VALUES_RIGHT = "values right; shape"  # in a shape check's failure only when its values check passed


def follows_its_values_check(name: str, output: str) -> bool:
    """A failed shape check that only repeats its values check's failure (a wrong shape, or nothing
    compared): one mistake, already named by the values check. Mutant accounting counts it once."""
    return SHAPE_CHECK_PREFIX in name and VALUES_RIGHT not in output


@dataclass
class ShapeRecord:
    """What one test's shape checks saw."""

    matched: int = 0  # shapes exactly as specified
    slips: list = field(default_factory=list)  # [(what, shape, expected shape, hint)]
    wrong: str = ""  # the message of a shape that differs otherwise (the test failed on it)

    def passed(self) -> bool:
        return self.matched > 0 and not self.slips and not self.wrong

    def message(self, values_passed: bool) -> str:
        """Why the shape check failed; "values right; ..." when the test's value checks passed."""
        if self.slips:
            what, shape, expected, _ = self.slips[0]
            more = f" (and {len(self.slips) - 1} more like it)" if len(self.slips) > 1 else ""
            if values_passed:
                return f"{what}: values right; shape {shape}, expected {expected}{more}"
            return f"{what} has shape {shape}, expected {expected}{more}"
        if self.wrong:
            return self.wrong
        return "the shapes could not be checked: the check above failed before any result was compared"

    def hint(self) -> str:
        if not self.slips:
            return ""
        _, shape, expected, hint = self.slips[0]
        if hint:
            return hint
        if len(shape) < len(expected):  # (n,) for (n, 1): an axis missing
            return (
                f"the notebook specifies shape {expected}: add the missing size-1 axes "
                "(keepdims=True, or a reshape, keeps them; np.zeros(n) gives shape (n,), np.zeros((n, 1)) gives (n, 1))"
            )
        if len(shape) == len(expected):  # (1, n) for (n, 1): a row for a column
            return (
                f"the notebook specifies shape {expected}: put the size-1 axis where it says "
                f"(a row (1, n) is not a column (n, 1); .reshape({expected}) or np.zeros({expected}) gives that shape)"
            )
        return (
            f"the notebook specifies shape {expected}: remove the size-1 axes "
            "(keepdims=True, or a reshape, adds them; np.squeeze or .reshape removes them)"
        )


_recording: ShapeRecord | None = None


def start() -> ShapeRecord:
    """Record the shape checks of the test about to run (the plugin calls this)."""
    global _recording
    _recording = ShapeRecord()
    return _recording


def stop() -> None:
    global _recording
    _recording = None


def only_size_one_axes_differ(shape: tuple, expected: tuple) -> bool:
    """(1, 5) against (5,), (5, 1) against (5,), (1, 1) against (): the same entries in the same order."""
    return shape != expected and tuple(d for d in shape if d != 1) == tuple(d for d in expected if d != 1)


def tolerated(shape: tuple, expected: tuple, what: str, hint: str = "") -> bool:
    """True (and the slip recorded) when the running test takes ``shape`` for ``expected`` on its values."""
    if _recording is None or not only_size_one_axes_differ(shape, expected):
        return False
    _recording.slips.append((what, shape, expected, hint))
    return True


def matched() -> None:
    if _recording is not None:
        _recording.matched += 1


def wrong(message: str) -> None:
    if _recording is not None and not _recording.wrong:
        _recording.wrong = message
