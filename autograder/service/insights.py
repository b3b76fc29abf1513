"""What a course's grades say about its checks: the pass rate of each hidden check, the frequent mistakes.

Both read a list of :class:`autograder.batch.state.Grade` (the latest grade of each learner, for
one assignment or several) and nothing else; they are plain functions over the results.json
documents the batch stores.

A grade that was not graded at all (an unreadable notebook, another assignment's notebook, a
grader failure: ``Result.unreadable``) says nothing about which checks are hard, and a check the
grader failed to run (kind ``grader-error``) is no attempt either: neither counts.

A *mistake* is a failed check named the way the hidden suite told the learner: its hint (where the
suite diagnoses a known mistake, e.g. ``diagnose()`` in grading/checks.py, the hint names it),
else its message. Numbers in it (sizes, positions, the learner's values) are replaced by ``#`` so
that one mistake made by many learners is one entry; the text is one line of at most
:data:`MAX_WHAT` characters, plain (not escaped: the caller escapes it for its page). The hidden
suite's messages never hold an expected array (checks.py gives shapes, dtypes and counts only),
and with the numbers gone no value of one survives here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from autograder.grading.results import Result, as_result

MAX_WHAT = 200  # characters of a mistake's text
MAX_LEARNERS_SHOWN = 5  # learner ids a Mistake names (its count is all of them)
MAX_MISTAKES = 200  # entries frequent_mistakes returns, whatever ``limit`` asks

# Checks that are no attempt (the grader failed, the notebook was not graded) and failures that
# are no mistake (the function is not there, or is still the released stub: grading/grade.py).
NOT_ATTEMPTED = frozenset({"grader-error", "unreadable", "wrong-assignment"})
NOT_A_MISTAKE = frozenset({"missing"})
_NOT_IMPLEMENTED = "is not implemented yet"  # grade.record_result's message for an untouched stub


@dataclass(frozen=True)
class CheckRate:
    """How many learners passed one hidden check of one graded function, of those who attempted it."""

    assignment: str
    function: str
    check: str
    passed: int
    attempted: int

    @property
    def rate(self) -> float:
        """``passed / attempted``; 0.0 when nobody attempted it."""
        return self.passed / self.attempted if self.attempted else 0.0


@dataclass(frozen=True)
class Mistake:
    """One failed check, as the suite named it, and the learners whose latest grade shows it."""

    assignment: str
    function: str
    check: str
    what: str  # the hint (the diagnosis) or else the message, numbers as '#', one line, capped
    count: int  # learners
    learners: tuple[str, ...]  # the first MAX_LEARNERS_SHOWN of them, sorted


def _graded(grades: Iterable) -> list[tuple[str, str, Result]]:
    """(learner, assignment, result) of each grade that was graded; unreadable documents are skipped."""
    graded = []
    for grade in grades:
        try:
            result = as_result(grade.result)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a document no dlgrade wrote: nothing to count
        if not result.unreadable:
            graded.append((str(grade.learner), str(grade.assignment), result))
    return graded


def _function_order(assignment: str, results: list[Result]) -> dict[str, int]:
    """Function -> its place: the notebook's order (the catalogue), then any other in the order the
    results list them (``Result.functions`` is in notebook order, then the checks')."""
    from autograder.grading import catalogue

    names: list[str] = []
    try:
        if assignment in catalogue.names():
            names = list(catalogue.load(assignment).graded_functions)
    except Exception:  # a course folder with a broken assignment: the results' order alone
        names = []
    for result in results:
        names += list(result.functions) + [t.function for t in result.tests]
    return {name: i for i, name in enumerate(dict.fromkeys(names))}


def check_pass_rates(grades: Iterable) -> list[CheckRate]:
    """One CheckRate per hidden check (assignment, function, check), ordered by assignment name,
    then the notebook's function order, then the suite's check order.

    ``grades``: :class:`autograder.batch.state.Grade` (anything with ``learner``, ``assignment``
    and ``result``, a results.json dict or a Result). A grade not graded at all and a check
    the grader failed to run are not attempts."""
    by_assignment: dict[str, list[Result]] = {}
    for _, assignment, result in _graded(grades):
        by_assignment.setdefault(assignment, []).append(result)
    rates: list[CheckRate] = []
    for assignment in sorted(by_assignment):
        results = by_assignment[assignment]
        counts: dict[tuple[str, str], list[int]] = {}  # (function, check) -> [passed, attempted]
        for result in results:
            for test in result.tests:
                if test.kind in NOT_ATTEMPTED:
                    continue
                count = counts.setdefault((test.function, test.check), [0, 0])
                count[0] += bool(test.passed)
                count[1] += 1
        order = _function_order(assignment, results)
        keys = sorted(counts, key=lambda key: order.get(key[0], len(order)))  # stable: suite order within
        rates += [CheckRate(assignment, function, check, *counts[function, check]) for function, check in keys]
    return rates


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
_NUMBERS = re.compile(r"#(?:\s*,\s*#)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def mistake_text(text: str) -> str:
    """A failure's text as one mistake: its first non-empty line, numbers as ``#`` (a run of them
    as ``#, ...``), control and bidirectional characters removed, spaces collapsed, at most
    :data:`MAX_WHAT` characters."""
    line = next((line for line in str(text).splitlines() if line.strip()), "")
    line = _CONTROL.sub("", line[: MAX_WHAT * 10])
    line = _NUMBERS.sub("#, ...", _NUMBER.sub("#", line))
    line = " ".join(line.split())
    return line if len(line) <= MAX_WHAT else line[: MAX_WHAT - 3].rstrip() + "..."


def frequent_mistakes(grades: Iterable, *, limit: int = 10) -> list[Mistake]:
    """The failed checks most learners share, named by the suite's diagnosis (see the module's text).

    A learner counts once per (assignment, function, check, mistake); failures that are no mistake
    (a missing function, an untouched stub) and checks that were no attempt are left out. Most
    learners first, then by assignment, notebook order and the text; at most ``limit`` (and
    :data:`MAX_MISTAKES`). ``grades`` as for :func:`check_pass_rates`."""
    graded = _graded(grades)
    seen: dict[tuple[str, str, str, str], set[str]] = {}
    for learner, assignment, result in graded:
        for test in result.tests:
            if test.passed or test.kind in NOT_ATTEMPTED or test.kind in NOT_A_MISTAKE:
                continue
            if test.message.startswith(f"{test.function} {_NOT_IMPLEMENTED}"):
                continue
            what = mistake_text(test.hint) or mistake_text(test.message) or mistake_text(test.kind) or "failed"
            seen.setdefault((assignment, test.function, test.check, what), set()).add(learner)
    orders: dict[str, dict[str, int]] = {}
    for assignment in {key[0] for key in seen}:
        orders[assignment] = _function_order(assignment, [r for _, a, r in graded if a == assignment])

    def rank(key):
        assignment, function, check, what = key
        order = orders[assignment]
        return (-len(seen[key]), assignment, order.get(function, len(order)), check, what)

    limit = max(0, min(int(limit), MAX_MISTAKES))
    return [
        Mistake(*key, count=len(seen[key]), learners=tuple(sorted(seen[key])[:MAX_LEARNERS_SHOWN]))
        for key in sorted(seen, key=rank)[:limit]
    ]
