"""Nothing submitted is lost: the course as rows, exactly one per learner and assignment.

The batch state holds the grades (state.py); this module adds what a grade alone cannot say: who
should have submitted and did not. :func:`build` turns the grades, the roster (roster.py, when the
course gives one), the learner folders the batch found (an empty one too) and the deadlines into
:class:`Row` s, each in exactly one state:

graded            graded, on time or with no deadline
late              graded, after the deadline (the late policy's penalty applied)
unreadable        submitted, could not be graded (a link, too big, not JSON...): 0, with the reason
grader error      the grader failed on it: not the learner's fault, staff have the traceback
wrong assignment  the only notebook is another assignment's: 0 for this one, the reason names which
missing           nothing submitted and the deadline (with any extension) has passed, or there is none
not submitted     nothing submitted yet, and the learner's deadline is still ahead
not on roster     graded, but the learner is not on the roster (a typo in a folder name, a late join)

Rows are computed, not stored: every run rebuilds them from the same state, so a changed roster or
deadline changes the gradebooks without a regrade. The learners are the roster's (when given) plus
everyone with a grade or a learner folder; the assignments are those with a grade, the one asked
for, and those the late policy gives a deadline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from autograder.batch.roster import Person, Roster
from autograder.batch.state import Grade
from autograder.grading import catalogue
from autograder.grading.results import Result, as_result

GRADED, LATE, UNREADABLE, GRADER_ERROR = "graded", "late", "unreadable", "grader error"
WRONG_ASSIGNMENT, MISSING, NOT_SUBMITTED, NOT_ON_ROSTER = (
    "wrong assignment",
    "missing",
    "not submitted",
    "not on roster",
)
STATES = (GRADED, LATE, UNREADABLE, GRADER_ERROR, WRONG_ASSIGNMENT, MISSING, NOT_SUBMITTED, NOT_ON_ROSTER)
NEEDS_A_LOOK = (WRONG_ASSIGNMENT, NOT_ON_ROSTER)  # staff should look: the exit status says so
UNKNOWN = "unknown"  # the label of a notebook nobody could identify (plan.UNKNOWN)
WRONG_KIND = "wrong-assignment"  # TestResult.kind of a wrong-assignment zero (pool.wrong_assignment_result)

# (learner, assignment) -> (the learner's deadline or None, their extension in words or "")
Deadlines = Callable[[str, str], tuple]


def status(result: Result) -> str:
    """A grade's state (see the module's docstring), from its result alone."""
    if result.unreadable:
        if result.grader_error:
            return GRADER_ERROR
        return WRONG_ASSIGNMENT if any(t.kind == WRONG_KIND for t in result.tests) else UNREADABLE
    if result.grader_error:
        return GRADER_ERROR
    return LATE if result.late is not None and result.late.days_late else GRADED


@dataclass(frozen=True, kw_only=True)
class Row:
    """One learner and one assignment: ``grade`` is the state's Grade, None when nothing was submitted."""

    learner: str
    assignment: str
    state: str  # one of STATES
    grade: Grade | None = None  # None: nothing submitted
    person: Person | None = None  # None: no roster, or not on it
    reason: str = ""  # why, in one line, for any state but graded
    extension: str = ""  # the learner's extension for this assignment, in words ("" when none)
    due: str = ""  # the learner's deadline (ISO 8601), "" when the assignment has none

    @property
    def result(self) -> Result | None:
        return None if self.grade is None else as_result(self.grade.result)

    @property
    def submitted(self) -> bool:
        return self.grade is not None


@dataclass(kw_only=True)
class Ledger:
    """Every row of the course, sorted by learner then assignment, and what they were built from."""

    rows: list = field(default_factory=list)  # [Row]
    assignments: list = field(default_factory=list)  # the course's assignments, in name order
    roster: Roster | None = None

    def counts(self) -> Counter:
        return Counter(row.state for row in self.rows)

    def needs_a_look(self) -> list:
        return [row for row in self.rows if row.state in NEEDS_A_LOOK]

    def learners(self) -> list:
        return sorted({row.learner for row in self.rows})

    def by_assignment(self) -> dict:
        groups: dict = {name: [] for name in self.assignments}
        for row in self.rows:
            groups.setdefault(row.assignment, []).append(row)
        return dict(sorted(groups.items()))

    def summary_line(self) -> str:
        """The terminal's count of each state, e.g. "12 graded, 1 late, 3 missing"."""
        counts = self.counts()
        return ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])


def _reason(grade, state: str, result: Result) -> str:
    if state == NOT_ON_ROSTER:
        return (
            f"{grade.learner} is not on the roster (graded {result.score:g} / {result.max_score:g} from {grade.source})"
        )
    return result.problem()


def build(
    grades: list,
    *,
    roster: Roster | None = None,
    found: frozenset | set = frozenset(),
    assignments: list | tuple = (),
    deadlines: Deadlines | None = None,
    now: datetime | None = None,
) -> Ledger:
    """The course's rows (see the module's docstring).

    ``grades``: the state's grades (late policy applied); ``roster``: a roster.Roster or None;
    ``found``: learner names the batch found, with or without a notebook; ``assignments``: assignments
    the course expects besides those graded (the one asked for, those with a deadline);
    ``deadlines``: a learner's deadline and extension per assignment (None: no deadlines);
    ``now``: the time a deadline is compared with (aware; None: the current time).
    """
    from datetime import UTC

    now = now or datetime.now(UTC)
    known = set(catalogue.names())
    expected = sorted(
        {g.assignment for g in grades if g.assignment != UNKNOWN} | {a for a in assignments if a in known}
    )
    mine: dict = {}  # learner -> {assignment: Grade}
    for g in grades:
        mine.setdefault(g.learner, {})[g.assignment] = g
    learners = set(found) | set(mine)
    if roster is not None:
        learners |= {person.learner for person in roster.people}
    rows = []
    for learner in sorted(learners):
        graded = mine.get(learner, {})
        person = roster.get(learner) if roster is not None else None
        off_roster = roster is not None and person is None
        # Someone not on the roster has a row per notebook they submitted (an empty folder of theirs is
        # a line in skipped.txt); everyone else has one per assignment of the course.
        labels = sorted(graded) if off_roster else expected + sorted(set(graded) - set(expected))
        for assignment in labels:
            due, extension = deadlines(learner, assignment) if deadlines else (None, "")
            due_text = due.isoformat(timespec="seconds") if due is not None else ""
            grade = graded.get(assignment)
            if grade is not None:
                result = as_result(grade.result)
                state = NOT_ON_ROSTER if off_roster else status(result)
                reason = _reason(grade, state, result)
            else:
                ahead = due is not None and due > now
                state = NOT_SUBMITTED if ahead else MISSING
                if ahead:
                    reason = f"nothing submitted yet; due {due_text}"
                else:
                    where = "their folder has no notebook" if learner in found else "no submission found"
                    reason = f"{where} for {assignment}" + (f" (due {due_text})" if due_text else "")
            rows.append(
                Row(
                    learner=learner,
                    assignment=assignment,
                    state=state,
                    grade=grade,
                    person=person,
                    reason=reason,
                    extension=extension,
                    due=due_text,
                )
            )
    return Ledger(rows=rows, assignments=expected, roster=roster)


def of_grades(grades: list) -> Ledger:
    """The rows of ``grades`` alone: no roster, no deadlines (what a gradebook shows without a batch's context)."""
    return build(grades)
