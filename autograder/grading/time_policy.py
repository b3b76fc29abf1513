"""Every time limit of grading one submission, derived in one place from assignment.toml.

The rule (fixed shares):

- ``submission`` (``submission_timeout``) bounds the learner time of one whole
  submission, and each graded function gets a fixed share of it:
  ``function = submission / n`` for the assignment's ``n`` graded functions.
  The shares sum to the total, and one function's share is never lent to
  another: a function that hangs or is slow uses up its own share and
  nothing else (a bug in one function costs only that function). Coming back
  to a function later goes on from what it has left; it does not start a new
  share. Whatever runs outside any function's checks (no ``begin_function``:
  ``dlgrade check``, a suite without graded functions) has the submission's
  whole budget, less what the functions used; and no function is ever given
  more than the submission has left, so the total holds even for a suite
  that grades more functions than the assignment has.
- ``call`` (``call_timeout``) bounds one learner call, and one graded cell's
  definitions; ``imports`` (3 calls) bounds the assignment's imports cell.
  A configuration whose share is less than ``MIN_CALLS_PER_FUNCTION`` (3)
  full calls is rejected (:class:`ConfigError`, naming both ways out): a
  function must have room for a slow call and the checks after it.
- ``long_call`` (``long_call_timeout``; by default ``call``) bounds a call a
  suite marks as long (the TensorFlow model's training runs:
  ``learner.time_policy.long_call``); it may not exceed the share, which
  bounds it anyway.

What counts as learner time: the time from sending a request to the learner
child (a cell, a call, a probe) until its reply, or until the limit that cut
it. What does not: starting a sandbox (forking from the zygote, or a cold
sandbox: the grader's cost, not the learner's), killing one, and the
grader's own work between requests (reference answers, pytest). Those are
bounded by the sandbox's own waits (``autograder/sandbox/spawn.py``: 120 s for
a zygote to start, 15 s for a learner child to end; ``prepared.py``: 60 s for a
prepared process, 8 s to sweep a uid) and, for a whole submission, by
``batch_task_timeout``.

Derived for the sandbox and the batch:

- ``cpu_seconds``: RLIMIT_CPU of each sandboxed process, a backstop a little
  above the submission's budget (the wall-clock budgets normally act first);
- ``batch_task_timeout``: the last-resort wall-clock limit of one
  submission's grading in ``dlgrade batch`` (``--task-timeout`` overrides
  it), far above the learner's budget because starts, teardowns and the
  grader's own work are not in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_CALLS_PER_FUNCTION = 3  # a function's share holds at least this many full calls
IMPORTS_CALLS = 3  # the imports cell may take this many calls' time
CPU_SLACK_SECONDS = 30  # RLIMIT_CPU above the submission's budget
TASK_TIMEOUT_FACTOR = 3  # batch_task_timeout = 3 x submission + 300 s
TASK_TIMEOUT_SLACK_SECONDS = 300
# The batch's last resort for a notebook no assignment claims (grade_notebook explains it within seconds).
UNKNOWN_ASSIGNMENT_TASK_TIMEOUT = TASK_TIMEOUT_FACTOR * 600.0 + TASK_TIMEOUT_SLACK_SECONDS


class ConfigError(ValueError):
    """An assignment.toml with an unknown key, a value of the wrong type, or time limits that cannot hold.

    (``autograder.grading.catalogue.ConfigError`` is this class.)
    """


@dataclass(frozen=True, kw_only=True)
class TimePolicy:
    """The time limits of one submission, in seconds (see the module's docstring for the rule).

    Build it with :meth:`from_config` (or ``Assignment.time_policy``); the
    constructor itself only checks that the numbers are positive and that a
    function's share is not more than the submission's, so tests may state
    any small policy they need.
    """

    call: float  # one learner call, or one graded cell's definitions
    submission: float  # all learner time of one submission
    function: float | None = None  # each graded function's fixed share (None: the submission's)
    long_call: float | None = None  # a call a suite marks as long (None: ``call``)

    def __post_init__(self):
        if self.function is None:
            object.__setattr__(self, "function", self.submission)
        if self.long_call is None:
            object.__setattr__(self, "long_call", self.call)
        for name in ("call", "submission", "function", "long_call"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"time policy: {name} must be a positive number of seconds, not {value!r}")
        if self.share > self.submission * (1 + 1e-9):
            raise ConfigError(
                f"time policy: a function's share ({self.function:g} s) is more than the "
                f"submission's budget ({self.submission:g} s)"
            )

    @property
    def share(self) -> float:
        """Each graded function's fixed share (``function``, set by ``__post_init__``)."""
        assert self.function is not None
        return self.function

    @property
    def long(self) -> float:
        """The budget of a call a suite marks as long (``long_call``, set by ``__post_init__``)."""
        assert self.long_call is not None
        return self.long_call

    @classmethod
    def split(cls, *, call: float, submission: float, functions: int, long_call: float | None = None) -> TimePolicy:
        """``submission`` split into ``functions`` equal shares (at least one), without the config's checks."""
        return cls(call=call, submission=submission, function=submission / max(1, int(functions)), long_call=long_call)

    @classmethod
    def from_config(cls, config, n_functions: int, *, source: str = "assignment.toml") -> TimePolicy:
        """The policy of an assignment (its ``AssignmentConfig`` and number of graded functions).

        Raises :class:`ConfigError`, naming ``source`` and the keys, when the
        numbers cannot hold: a share of fewer than MIN_CALLS_PER_FUNCTION
        calls, or a long call longer than a share.
        """
        call, submission = float(config.call_timeout), float(config.submission_timeout)
        long_call = float(config.long_call_timeout) if config.long_call_timeout else call
        for key, value in (
            ("call_timeout", call),
            ("submission_timeout", submission),
            ("long_call_timeout", long_call),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{source}: {key!r} must be a positive number of seconds, not {value:g}")
        n = max(1, int(n_functions))
        policy = cls.split(call=call, submission=submission, functions=n, long_call=long_call)
        share = policy.share
        if share < MIN_CALLS_PER_FUNCTION * call * (1 - 1e-9):
            raise ConfigError(
                f"{source}: submission_timeout {submission:g} s split over {n} graded function(s) gives each "
                f"{share:.3g} s, less than {MIN_CALLS_PER_FUNCTION} x call_timeout ({MIN_CALLS_PER_FUNCTION * call:g} s): "
                f"raise submission_timeout to at least {MIN_CALLS_PER_FUNCTION * call * n:g} or lower call_timeout to "
                f"at most {_floor(share / MIN_CALLS_PER_FUNCTION):g}"
            )
        if long_call < call:
            raise ConfigError(f"{source}: long_call_timeout {long_call:g} s is less than call_timeout {call:g} s")
        if long_call > share * (1 + 1e-9):
            raise ConfigError(
                f"{source}: long_call_timeout {long_call:g} s is more than each graded function's share "
                f"({share:.3g} s = submission_timeout {submission:g} s / {n}), which bounds it anyway: lower it to at "
                f"most {_floor(share):g} or raise submission_timeout to at least {long_call * n:g}"
            )
        return policy

    @property
    def imports(self) -> float:
        """The limit of the assignment's imports cell (trusted, but run in the learner's child)."""
        return IMPORTS_CALLS * self.call

    @property
    def cpu_seconds(self) -> int:
        """RLIMIT_CPU of each sandboxed process: a backstop above the submission's budget."""
        return int(math.ceil(self.submission)) + CPU_SLACK_SECONDS

    @property
    def batch_task_timeout(self) -> float:
        """``dlgrade batch``'s last-resort wall-clock limit for grading one submission."""
        return TASK_TIMEOUT_FACTOR * self.submission + TASK_TIMEOUT_SLACK_SECONDS


def _floor(value: float) -> float:
    """``value`` rounded down to a tenth (a number to suggest that satisfies the rule)."""
    return math.floor(value * 10 + 1e-9) / 10
