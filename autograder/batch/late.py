"""Late submissions: when each notebook came in, and what the course's policy makes of it.

The policy file's format (deadlines, grace, penalties, per-learner ``[extensions]``) is documented in
docs/LATE_POLICY.md. A submission time comes only from a source the course controls, first match wins:

staff-csv       ``--times FILE`` (columns ``learner``, ``assignment`` (may be empty: every assignment)
                and ``submitted_at``, an ISO 8601 time with its offset);
nbgrader        ``timestamp.txt`` beside the notebook in nbgrader's own ``submitted/`` tree
                (``submitted/<learner>/<assignment>/<name>.ipynb``): nbgrader's exchange wrote it;
mtime           the file's modification time, only with ``--times-from mtime``;
timestamp-file  a ``timestamp.txt`` beside the notebook in any learner folder, only with
                ``--times-from timestamp-file`` (the learner may have written it);
none            nothing else: the submission is not judged late ("time unknown: not judged late"),
                and the batch says how to give times.

``dlgrade serve`` has its own source, ``server``: the service's clock when the upload arrived.

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


STAFF_CSV, NBGRADER, MTIME, TIMESTAMP_FILE, NONE = "staff-csv", "nbgrader", "mtime", "timestamp-file", "none"
SERVER = "server"  # dlgrade serve: the time the upload reached the service
SOURCES = (STAFF_CSV, NBGRADER, MTIME, TIMESTAMP_FILE, NONE, SERVER)
TIMES_FROM = (MTIME, TIMESTAMP_FILE)  # what --times-from may ask for: sources a learner can set
NBGRADER_ROOT = "submitted"  # the folder nbgrader's exchange collects into
EXTENSIONS = "extensions"  # the policy's table of per-learner extensions


class LatePolicyError(Exception):
    """The policy or times file cannot be used; ``str()`` names the file and what is wrong."""


@dataclass(frozen=True)
class Policy:
    deadline: datetime | None = None
    grace: timedelta = timedelta(0)
    penalty_per_day: float = 0.0
    zero_after_days: int | None = None
    late: str = "penalty"
    extension: str = ""  # this learner's extension, in words (the deadline is already moved)

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
            time_source=source if source in SOURCES else "",
            extension=self.extension,
        )
        return dataclasses.replace(result, score=round(raw - penalty, 6), late=late)

    def not_judged(self, result) -> Result:
        """``result`` unchanged in score, with a record saying its time is unknown: no penalty computed."""
        result = as_result(result)
        if self.deadline is None or result.unreadable:
            return result
        late = Late(
            submitted_at="",
            source=NONE,
            deadline=self.deadline.isoformat(timespec="seconds"),
            days_late=0,
            raw_score=result.score,
            penalty=0.0,
            rule=self.describe(),
            time_source=NONE,
            extension=self.extension,
            judged=False,
        )
        return dataclasses.replace(result, late=late)


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


@dataclass(frozen=True)
class Extension:
    """One learner's extension: a new deadline, or extra days on the assignment's own."""

    learner: str
    assignment: str | None = None  # None: every assignment with a deadline
    deadline: datetime | None = None
    days: float = 0.0

    def move(self, deadline: datetime | None) -> tuple:
        """(the learner's deadline, the extension in words); the deadline unchanged when it had none."""
        if deadline is None:
            return None, ""
        if self.deadline is not None:
            return self.deadline, f"extension: deadline {self.deadline.isoformat(timespec='seconds')}"
        return deadline + timedelta(days=self.days), f"extension: +{self.days:g} day(s)"


def _extension(learner: str, value, where: str) -> Extension:
    if isinstance(value, bool):
        raise LatePolicyError(f"{where}: expected extra days (a number), a deadline or {{ days = ... }}")
    if isinstance(value, (int, float)):
        value = {"days": value}
    elif isinstance(value, (datetime, date)):
        value = {"deadline": value}
    if not isinstance(value, dict):
        raise LatePolicyError(f"{where}: expected extra days (a number), a deadline or {{ days = ... }}")
    unknown = sorted(set(value) - {"days", "deadline", "assignment"})
    if unknown:
        raise LatePolicyError(f"{where}: unknown key(s) {', '.join(unknown)}; known: days, deadline, assignment")
    if ("days" in value) == ("deadline" in value):
        raise LatePolicyError(f"{where}: give either days (extra days) or deadline (a new one), not both or neither")
    assignment = value.get("assignment")
    if assignment is not None and not isinstance(assignment, str):
        raise LatePolicyError(f"{where}: assignment must be a string")
    if "deadline" in value:
        if assignment is None:
            raise LatePolicyError(f'{where}: a new deadline needs assignment = "<assignment>" (or use days)')
        return Extension(learner, assignment, deadline=_aware(value["deadline"], where))
    days = value["days"]
    if isinstance(days, bool) or not isinstance(days, (int, float)) or days < 0:
        raise LatePolicyError(f"{where}: days = {days!r}; expected a number of days, 0 or more")
    return Extension(learner, assignment, days=float(days))


def _extensions(table, path: Path) -> list:
    if not isinstance(table, dict):
        raise LatePolicyError(f"{path}: [{EXTENSIONS}] must be a table: <learner> = <days>, a deadline or {{...}}")
    found = []
    for learner, value in table.items():
        entries = value if isinstance(value, list) else [value]
        for number, entry in enumerate(entries, start=1):
            where = f"{path} [{EXTENSIONS}] {learner}" + (f" (entry {number})" if isinstance(value, list) else "")
            found.append(_extension(learner, entry, where))
    for i, one in enumerate(found):
        for other in found[:i]:
            if (one.learner, one.assignment) == (other.learner, other.assignment):
                which = one.assignment or "every assignment"
                raise LatePolicyError(f"{path} [{EXTENSIONS}] {one.learner}: two extensions for {which}")
    return found


@dataclass
class CoursePolicy:
    """Each assignment's Policy: its own table over [default]; a learner's extension moves its deadline."""

    per_assignment: dict
    default: dict
    extensions: list = dataclasses.field(default_factory=list)  # [Extension]

    def for_assignment(self, assignment: str, learner: str | None = None) -> Policy:
        table = {**self.default, **self.per_assignment.get(assignment, {})}
        policy = _policy(table, f"late policy [{assignment}]")
        mine = [e for e in self.extensions if e.learner == learner and e.assignment in (assignment, None)]
        if learner is None or not mine:
            return policy
        extension = min(mine, key=lambda e: e.assignment is None)  # the assignment's own first
        deadline, words = extension.move(policy.deadline)
        return dataclasses.replace(policy, deadline=deadline, extension=words)


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
        if name == EXTENSIONS:
            continue
        if not isinstance(table, dict):
            raise LatePolicyError(f"{path}: {name} = ... must be inside a table, [default] or [<assignment>]")
        _policy({**data.get("default", {}), **table}, f"{path} [{name}]")  # rejects bad keys now, not later
        tables[name] = table
    return CoursePolicy(
        per_assignment={k: v for k, v in tables.items() if k != "default"},
        default=tables.get("default", {}),
        extensions=_extensions(data.get(EXTENSIONS, {}), path),
    )


# ------------------------------------------------------------------ submission times


def parse_time(text: str) -> datetime:
    """A timestamp as nbgrader writes it ("2026-03-01 12:00:00.000000 UTC") or ISO 8601; naive means UTC."""
    from nbgrader.utils import parse_utc  # nbgrader's own reader of its timestamp.txt

    return parse_utc(text.strip()).replace(tzinfo=UTC)


def _staff_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (or nbgrader's "... UTC"): a time without a zone is refused."""
    text = text.strip()
    if text.endswith(" UTC"):
        return parse_time(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        raise ValueError("it has no UTC offset (write e.g. 2026-03-01T23:59:00+09:00 or ...Z)")
    return moment


def read_times_csv(path) -> dict:
    """(learner, assignment or None) -> submission time, from the staff's CSV (``--times``): columns
    learner, submitted_at and optionally assignment. Any bad row is refused, naming its line."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"learner", "submitted_at"} - set(reader.fieldnames or ())
            if missing:
                raise LatePolicyError(
                    f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                    "expected learner, assignment (may be empty) and submitted_at"
                )
            times: dict = {}
            for row in reader:
                number = reader.line_num
                learner = (row.get("learner") or "").strip()
                stamp = row.get("submitted_at")
                if not learner or stamp is None:
                    raise LatePolicyError(f"{path} line {number}: needs a learner and a submitted_at time")
                key = (learner, (row.get("assignment") or "").strip() or None)
                if key in times:
                    raise LatePolicyError(f"{path} line {number}: a second time for {learner} / {key[1] or 'every'}")
                try:
                    times[key] = _staff_time(stamp)
                except (ValueError, OverflowError) as exc:
                    raise LatePolicyError(f"{path} line {number}: cannot read {stamp!r} as a time ({exc})") from exc
            return times
    except UnicodeDecodeError as exc:
        raise LatePolicyError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise LatePolicyError(f"{path}: not a CSV file ({exc})") from exc
    except OSError as exc:
        raise LatePolicyError(f"cannot read {path}: {exc.strerror}") from exc


def _stamp(notebook: Path):
    """The time in the timestamp.txt beside ``notebook``; None when there is none or it cannot be read."""
    try:
        return parse_time((notebook.parent / "timestamp.txt").read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError, OverflowError):
        return None


def submission_time(notebook: Path, learner: str, assignment: str, times: dict, *, nbgrader: bool, times_from=None):
    """(time or None, its source: staff-csv | nbgrader | mtime | timestamp-file | none) for one submission.

    ``nbgrader``: the notebook is in nbgrader's own submitted/ tree (its timestamp.txt is nbgrader's);
    ``times_from``: what the course accepted beyond that (--times-from mtime or timestamp-file)."""
    for key in ((learner, assignment), (learner, None)):
        if key in times:
            return times[key], STAFF_CSV
    if nbgrader:
        when = _stamp(notebook)
        if when is not None:
            return when, NBGRADER
    if times_from == TIMESTAMP_FILE:
        when = _stamp(notebook)
        if when is not None:
            return when, TIMESTAMP_FILE
    if times_from == MTIME:
        try:
            return datetime.fromtimestamp(notebook.lstat().st_mtime, UTC), MTIME
        except OSError:
            pass
    return None, NONE


def in_nbgrader_tree(root: Path, source: str) -> bool:
    """``source`` is ``<learner>/<assignment>/<name>.ipynb`` in a folder named ``submitted``: nbgrader's
    exchange collected it and wrote its timestamp.txt (a learner's own folder is never named by them)."""
    return Path(root).name == NBGRADER_ROOT and source.count("/") == 2


class Lateness:
    """What the batch calls: the policy, the staff's times and what the course accepts beyond them."""

    def __init__(self, policy: CoursePolicy, times: dict, root: Path, times_from: str | None = None):
        if times_from not in (None, *TIMES_FROM):
            raise LatePolicyError(f"--times-from {times_from}: expected one of {', '.join(TIMES_FROM)}")
        self.policy, self.times, self.root, self.times_from = policy, times, Path(root), times_from
        self.unknown: set = set()  # (learner, assignment) not judged late: no time from a trusted source

    def apply(self, learner: str, assignment: str, source: str, result) -> Result:
        policy = self.policy.for_assignment(assignment, learner)
        result = as_result(result)
        if policy.deadline is None or result.unreadable:
            return result
        when, where = submission_time(
            self.root / source,
            learner,
            assignment,
            self.times,
            nbgrader=in_nbgrader_tree(self.root, source),
            times_from=self.times_from,
        )
        if when is None:
            self.unknown.add((learner, assignment))
            return policy.not_judged(result)
        self.unknown.discard((learner, assignment))
        return policy.apply(result, when, where)

    def deadline(self, learner: str, assignment: str) -> tuple:
        """(the learner's deadline for ``assignment`` or None, their extension in words or "")."""
        policy = self.policy.for_assignment(assignment, learner)
        return policy.deadline, policy.extension

    def assignments(self) -> list:
        """The assignments the policy gives a deadline of their own: the course expects them."""
        return sorted(a for a in self.policy.per_assignment if self.policy.for_assignment(a).deadline is not None)

    def unknown_message(self) -> str:
        """What the terminal says when some submissions had no trusted time ("" when all had one)."""
        if not self.unknown:
            return ""
        shown = ", ".join(f"{learner} / {assignment}" for learner, assignment in sorted(self.unknown)[:3])
        more = f" and {len(self.unknown) - 3} more" if len(self.unknown) > 3 else ""
        return (
            f"{len(self.unknown)} submission(s) have no submission time from a source the course controls "
            f"({shown}{more}): time unknown, not judged late and no penalty applied. Give times with "
            "--times FILE (learner,assignment,submitted_at), grade nbgrader's submitted/ folder, or accept "
            "--times-from mtime (file times) or --times-from timestamp-file (a timestamp.txt the learner may "
            "have written). See docs/LATE_POLICY.md."
        )
