"""Late submissions: when each notebook came in, and what the course's policy makes of it.

The policy is a TOML file the course writes (``dlgrade batch --late-policy late.toml``)::

    [default]                        # every assignment without its own table
    grace_minutes = 15               # lateness below this is forgiven
    penalty_per_day = 0.10           # fraction of the maximum per day (or part of one) late
    zero_after_days = 5              # later than this: zero (optional)

    [initialization]
    deadline = 2026-03-01T23:59:00+09:00      # a TOML datetime, with its offset
    [regularization]
    deadline = 2026-03-08T23:59:00+09:00
    late = "zero"                    # "penalty" (the default) or "zero": any lateness scores 0

An assignment with no deadline has no lateness. The submission time is read,
first match wins, from the ``--submission-times`` CSV (columns ``learner``,
``submitted_at`` and optionally ``assignment``), from nbgrader's ``timestamp.txt``
beside the notebook (a per-learner folder only), or from the file's mtime.

The stored grade stays the raw one: the policy is applied when the reports and
gradebooks are written, so a corrected deadline needs no regrading.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from autograder.grading.results import Late, Result, as_result

POLICY_KEYS = {
    "deadline": "a TOML datetime with its offset, e.g. 2026-03-01T23:59:00+09:00",
    "grace_minutes": "minutes after the deadline still on time (default 0)",
    "penalty_per_day": "fraction of the maximum taken off per day or part of a day late (default 0)",
    "zero_after_days": "more days late than this scores 0 (default: never)",
    "late": '"penalty" (default) or "zero"',
}


class LatePolicyError(Exception):
    """The policy or times file cannot be used; ``str()`` names the file and what is wrong."""


@dataclass(frozen=True)
class Policy:
    deadline: datetime | None = None
    grace: timedelta = timedelta(0)
    penalty_per_day: float = 0.0
    zero_after_days: int | None = None
    late: str = "penalty"

    def describe(self) -> str:
        if self.late == "zero":
            rule = "late work scores 0"
        else:
            rule = f"{100 * self.penalty_per_day:g}% of the maximum per day late"
            if self.zero_after_days is not None:
                rule += f", 0 after {self.zero_after_days} day(s)"
        if self.grace:
            rule += f" (grace {self.grace.total_seconds() / 60:g} min)"
        return f"Late policy: {rule}"

    def days_late(self, submitted: datetime) -> int:
        """Whole days (or parts of one) after deadline + grace; 0 when on time."""
        if self.deadline is None:
            return 0
        over = submitted - (self.deadline + self.grace)
        return max(0, math.ceil(over / timedelta(days=1))) if over > timedelta(0) else 0

    def apply(self, result, submitted: datetime, source: str) -> Result:
        """``result`` with its score after this policy and a ``late`` record saying why."""
        result = as_result(result)
        if self.deadline is None or result.unreadable:
            return result
        days = self.days_late(submitted)
        raw = result.score
        if days == 0:
            penalty = 0.0
        elif self.late == "zero" or (self.zero_after_days is not None and days > self.zero_after_days):
            penalty = raw
        else:
            penalty = min(raw, round(self.penalty_per_day * days * result.max_score, 6))
        late = Late(
            submitted_at=submitted.isoformat(timespec="seconds"),
            source=source,
            deadline=self.deadline.isoformat(timespec="seconds"),
            days_late=days,
            raw_score=raw,
            penalty=penalty,
            rule=self.describe(),
        )
        return dataclasses.replace(result, score=round(raw - penalty, 6), late=late)


def _aware(value, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):  # a bare date: the end of that day
        moment = datetime.combine(value, time(23, 59, 59))
    else:
        raise LatePolicyError(f"{where}: deadline must be a TOML datetime such as 2026-03-01T23:59:00+09:00")
    if moment.tzinfo is None:
        raise LatePolicyError(f"{where}: deadline {moment.isoformat()} has no UTC offset (write e.g. +09:00 or Z)")
    return moment


def _policy(table: dict, where: str) -> Policy:
    unknown = sorted(set(table) - set(POLICY_KEYS))
    if unknown:
        raise LatePolicyError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(POLICY_KEYS)}")
    late = table.get("late", "penalty")
    if late not in ("penalty", "zero"):
        raise LatePolicyError(f'{where}: late = {late!r}; expected "penalty" or "zero"')
    try:
        return Policy(
            deadline=_aware(table["deadline"], where) if "deadline" in table else None,
            grace=timedelta(minutes=float(table.get("grace_minutes", 0))),
            penalty_per_day=float(table.get("penalty_per_day", 0.0)),
            zero_after_days=int(table["zero_after_days"]) if "zero_after_days" in table else None,
            late=late,
        )
    except (TypeError, ValueError) as exc:
        raise LatePolicyError(f"{where}: {exc}") from exc


@dataclass
class CoursePolicy:
    """Each assignment's Policy: its own table over [default]."""

    per_assignment: dict
    default: dict

    def for_assignment(self, assignment: str) -> Policy:
        table = {**self.default, **self.per_assignment.get(assignment, {})}
        return _policy(table, f"late policy [{assignment}]")


def load_policy(path) -> CoursePolicy:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LatePolicyError(f"cannot read the late policy {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LatePolicyError(f"{path} is not valid TOML: {exc}") from exc
    tables = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise LatePolicyError(f"{path}: {name} = ... must be inside a table, [default] or [<assignment>]")
        _policy({**data.get("default", {}), **table}, f"{path} [{name}]")  # rejects bad keys now, not later
        tables[name] = table
    return CoursePolicy(
        per_assignment={k: v for k, v in tables.items() if k != "default"}, default=tables.get("default", {})
    )


# ------------------------------------------------------------------ submission times


def parse_time(text: str) -> datetime:
    """A timestamp as nbgrader writes it ("2026-03-01 12:00:00.000000 UTC") or ISO 8601; naive means UTC."""
    from nbgrader.utils import parse_utc  # nbgrader's own reader of its timestamp.txt

    return parse_utc(text.strip()).replace(tzinfo=UTC)


def read_times_csv(path) -> dict:
    """(learner, assignment or None) -> submission time, from a CSV with learner and submitted_at columns."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"learner", "submitted_at"} - set(reader.fieldnames or ())
            if missing:
                raise LatePolicyError(
                    f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                    "expected learner, submitted_at and optionally assignment"
                )
            times = {}
            for number, row in enumerate(reader, start=2):
                try:
                    times[(row["learner"], row.get("assignment") or None)] = parse_time(row["submitted_at"])
                except (ValueError, OverflowError) as exc:
                    raise LatePolicyError(
                        f"{path} line {number}: cannot read {row['submitted_at']!r} as a time ({exc})"
                    ) from exc
            return times
    except OSError as exc:
        raise LatePolicyError(f"cannot read {path}: {exc.strerror}") from exc


def submission_time(notebook: Path, learner: str, assignment: str, times: dict, per_learner_folder: bool):
    """(time, where it was read) for one submission."""
    for key in ((learner, assignment), (learner, None)):
        if key in times:
            return times[key], "submission times CSV"
    stamp = notebook.parent / "timestamp.txt"
    if per_learner_folder and stamp.is_file():
        try:
            return parse_time(stamp.read_text(encoding="utf-8", errors="replace")), "timestamp.txt"
        except (ValueError, OverflowError):
            pass  # unreadable stamp: fall back to the file's time
    return datetime.fromtimestamp(notebook.stat().st_mtime, UTC), "file modification time"


class Lateness:
    """What the batch calls: the policy plus the submission times."""

    def __init__(self, policy: CoursePolicy, times: dict, root: Path):
        self.policy, self.times, self.root = policy, times, Path(root)

    def apply(self, learner: str, assignment: str, source: str, result) -> Result:
        policy = self.policy.for_assignment(assignment)
        result = as_result(result)
        if policy.deadline is None:
            return result
        notebook = self.root / source
        try:
            when, where = submission_time(notebook, learner, assignment, self.times, "/" in source)
        except OSError:
            return result  # the file is gone and no time was given: nothing to judge by
        return policy.apply(result, when, where)
