"""The course's gradebooks, as CSV, and the score table ``dlgrade batch`` prints.

Files (under the batch's --out):
- gradebook.csv          one row per learner and assignment, submitted or not (ledger.py: total, max,
                         status, lateness: submitted_at, time_source, days_late, late_penalty,
                         extension; problem: why, for any status but graded);
- gradebooks/<a>.csv     one assignment: a column per graded function and a row of maxima;
- course-summary.csv     learner x assignment totals (like nbgrader's grades export);
- canvas-gradebook.csv   the same totals in the CSV Canvas' gradebook imports, with the roster's ids.

Each function takes the grades and, optionally, the course's :class:`ledger.Ledger` (the roster, the
learners who submitted nothing, the deadlines); without one, the rows are the grades' own.

Every cell goes through :func:`csv_cell`, the one place a CSV cell is made: text that a spreadsheet
would run as a formula (a learner folder named ``=HYPERLINK(...)``, ``+1``, ``-2``, ``@SUM(A1)``) gets
OWASP's neutralising single quote, and the csv module quotes the rest; the numbers the course
computes (scores, maxima, days late, penalties) are passed as numbers and stay numbers.

The plots are plots.py's, the course page (index.html) course_page.py's. Everything is computed
from the batch state's grades (see state.py), so a resumed or repeated batch always regenerates
the same files from the same grades.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from autograder.batch import ledger as course
from autograder.batch.ledger import Ledger
from autograder.grading.reports import NOT_JUDGED, atomic_write, clean_text
from autograder.grading.results import Result, as_result

GRADEBOOK_COLUMNS = [
    "learner",
    "assignment",
    "total",
    "max",
    "status",
    "submitted_at",
    "time_source",
    "days_late",
    "late_penalty",
    "extension",
    "problem",
]
MAX_ROW = "(max)"  # the learner cell of a gradebook's row of maxima
UNREADABLE = course.UNREADABLE  # a notebook that was submitted but could not be graded: not "0 / 0"


# OWASP, CSV injection: a cell starting with one of these is a formula to Excel, LibreOffice or Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _number(value) -> float:
    """A number the course computed (a score, a maximum): a number in every gradebook."""
    return float(value)


def cell_text(value) -> str:
    """A gradebook value as text: numbers the course computed as ``:g`` (4, 2.5), text as it is."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def csv_cell(value) -> str:
    """One CSV cell: numbers as numbers; text that starts like a formula (= + - @ tab CR) behind a
    single quote, which spreadsheets show and never run (OWASP's CSV injection guidance)."""
    text = cell_text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return text
    if text.startswith(FORMULA_START):
        text = "'" + text
    # The csv module quotes a cell holding "\n" (our line end) but not one holding a lone "\r", which
    # a reader takes for a line end: a CR in a cell is a line break inside the quoted cell.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def grade_result(grade) -> Result:
    return as_result(grade.result)


def problem(result) -> str:
    """Why a submission has no real grade (empty when it has one)."""
    return as_result(result).problem()


LATE_COLUMNS = ["submitted_at", "time_source", "days_late", "late_penalty", "extension"]


def _late_cells(result: Result) -> list:
    """submitted_at, time_source (staff-csv | nbgrader | mtime | timestamp-file | none, see late.py),
    days_late ("time unknown: not judged late" when no trusted time), late_penalty, extension."""
    late = result.late
    if late is None:
        return [""] * len(LATE_COLUMNS)
    source = late.time_source or late.source
    if not late.judged:
        return ["", source, NOT_JUDGED, "", late.extension]
    return [late.submitted_at, source, int(late.days_late), _number(late.penalty), late.extension]


def _csv(rows: list) -> str:
    """Every gradebook's text: each cell through :func:`csv_cell`, quoted by the csv module."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([csv_cell(cell) for cell in row] for row in rows)
    return out.getvalue()


def ledger_of(grades: list, ledger: Ledger | None) -> Ledger:
    return ledger if ledger is not None else course.of_grades(grades)


def maxima(ledger: Ledger) -> dict:
    """Each assignment's maximum: the largest its grades show, else its spec's points (0 when unknown)."""
    from autograder.grading import catalogue

    found: dict = {}
    for assignment, rows in ledger.by_assignment().items():
        top = max((row.result.max_score for row in rows if row.grade is not None), default=0.0)
        if not top and assignment in catalogue.names():
            top = float(sum(catalogue.load(assignment).points.values()))
        found[assignment] = top
    return found


def _unsubmitted_total(row) -> object:
    """A row with nothing submitted: 0 once it is missing, blank while it is not due."""
    return 0.0 if row.state == course.MISSING else ""


def gradebook_csv(grades: list, ledger: Ledger | None = None) -> str:
    """The course's long gradebook (like nbgrader's grades export): one row per learner and assignment."""
    ledger = ledger_of(grades, ledger)
    tops = maxima(ledger)
    rows: list = [GRADEBOOK_COLUMNS]
    for row in ledger.rows:
        result = row.result
        if result is None:
            top = tops.get(row.assignment, 0.0)
            rows.append(
                [
                    row.learner,
                    row.assignment,
                    _unsubmitted_total(row),
                    _number(top) if top else "",
                    row.state,
                    *["", "", "", "", row.extension],
                    row.reason,
                ]
            )
            continue
        known = result.max_score > 0 or not result.unreadable
        rows.append(
            [
                row.learner,
                row.assignment,
                _number(result.score),
                _number(result.max_score) if known else "",
                row.state,
                *_late_cells(result),
                row.reason,
            ]
        )
    return _csv(rows)


def assignment_gradebook_csv(assignment: str, grades: list, ledger: Ledger | None = None) -> str:
    """One assignment's gradebook: a column per graded function, a row of maxima, then one row per learner."""
    ledger = ledger_of(grades, ledger)
    mine = ledger.by_assignment().get(assignment, [])
    results = [(row, row.result) for row in mine]
    functions: dict = {}  # function -> max, in notebook order
    for _, result in results:
        for name, entry in result.functions.items() if result is not None else ():
            functions.setdefault(name, entry.max_score)
    max_score = max((r.max_score for _, r in results if r is not None), default=0.0)
    header = ["learner", "total", *functions, "status", *LATE_COLUMNS, "problem"]
    blank = [""] * (len(LATE_COLUMNS) + 2)
    rows = [header, [MAX_ROW, _number(max_score), *(_number(m) for m in functions.values()), *blank]]
    for row, result in results:
        if result is None:
            late = ["", "", "", "", row.extension]
            rows.append([row.learner, _unsubmitted_total(row), *[""] * len(functions), row.state, *late, row.reason])
            continue
        scores = (
            []
            if result.unreadable
            else [_number(result.functions[f].score) if f in result.functions else "" for f in functions]
        )
        rows.append(
            [
                row.learner,
                _number(result.score),
                *(scores or [""] * len(functions)),
                row.state,
                *_late_cells(result),
                row.reason,
            ]
        )
    return _csv(rows)


def course_summary_csv(grades: list, ledger: Ledger | None = None) -> str:
    """Learner x assignment totals: a number; "unreadable", "grader error" or "wrong assignment"
    (submitted, not graded); "missing" or "not submitted" (nothing submitted, due or not yet)."""
    return _csv(course_summary_rows(grades, ledger))


def summary_cell(row) -> object:
    """One learner's cell of the totals: their score, or the state that stands for one."""
    result = row.result
    if result is None or result.unreadable:
        return row.state
    return _number(result.score)


def course_summary_rows(grades: list, ledger: Ledger | None = None) -> list:
    """course-summary.csv's rows, its numbers as numbers (the course page shows them with cell_text)."""
    ledger = ledger_of(grades, ledger)
    assignments = list(ledger.by_assignment())
    tops = maxima(ledger)
    cells: dict = defaultdict(dict)
    for row in ledger.rows:
        cells[row.learner][row.assignment] = summary_cell(row)
    rows = [
        ["learner", *assignments, "total", "max"],
        [MAX_ROW, *(_number(tops[a]) if tops[a] else "" for a in assignments), _number(sum(tops.values())), ""],
    ]
    for learner in sorted(cells):
        row = cells[learner]
        total = sum(v for v in row.values() if isinstance(v, float))
        rows.append([learner, *(row.get(a, "") for a in assignments), _number(total), _number(sum(tops.values()))])
    return rows


CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_csv(grades: list, ledger: Ledger | None = None) -> str:
    """A gradebook Canvas imports (Grades > Import): its fixed columns, a "Points Possible" row, one column
    per assignment. With a roster, one row per roster learner with its ids (Student: the name, ID: the
    Canvas user id, SIS User ID, SIS Login ID: the roster's, else the learner), so Canvas matches every
    row; a learner not on the roster is left out (gradebook.csv lists them). Without one, the learner
    name goes in Student and SIS Login ID. A blank cell (nothing submitted) leaves Canvas' grade alone;
    an unreadable or wrong-assignment notebook is a 0 (its feedback says why)."""
    ledger = ledger_of(grades, ledger)
    groups = {name: [row for row in rows if row.grade is not None] for name, rows in ledger.by_assignment().items()}
    assignments = {name: group for name, group in groups.items() if any(row.result.max_score for row in group)}
    titles = {
        name: next((r.result.title for r in group if r.result.max_score), name) for name, group in assignments.items()
    }
    tops = {name: max(row.result.max_score for row in group) for name, group in assignments.items()}
    rows = [
        CANVAS_FIXED + [titles[a] for a in assignments],
        ["    Points Possible", "", "", "", ""] + [_number(tops[a]) for a in assignments],
    ]
    scores: dict = defaultdict(dict)
    for row in ledger.rows:
        if row.grade is not None and row.assignment in assignments:
            scores[row.learner][row.assignment] = _number(row.result.score)
    if ledger.roster is not None:
        for person in ledger.roster.people:
            ids = [person.name or person.learner, person.canvas_user_id, person.sis_user_id]
            ids += [person.sis_login_id or person.learner, person.section]
            rows.append(ids + [scores[person.learner].get(a, "") for a in assignments])
        return _csv(rows)
    for learner in sorted(scores):
        rows.append([learner, "", "", learner, ""] + [scores[learner].get(a, "") for a in assignments])
    return _csv(rows)


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` unless the file already holds it; True when written."""
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    atomic_write(path, text)
    return True


GRADEBOOKS_DIR = "gradebooks"


def write_gradebooks(grades: list, out: Path, ledger: Ledger | None = None) -> list:
    """gradebook.csv, course-summary.csv, canvas-gradebook.csv and gradebooks/<assignment>.csv under ``out``."""
    out = Path(out)
    ledger = ledger_of(grades, ledger)
    written = [out / "gradebook.csv", out / "course-summary.csv", out / "canvas-gradebook.csv"]
    write_if_changed(written[0], gradebook_csv(grades, ledger))
    write_if_changed(written[1], course_summary_csv(grades, ledger))
    write_if_changed(written[2], canvas_csv(grades, ledger))
    for assignment in ledger.by_assignment():
        path = out / GRADEBOOKS_DIR / f"{assignment}.csv"
        write_if_changed(path, assignment_gradebook_csv(assignment, grades, ledger))
        written.append(path)
    return written


def write_gradebook(grades: list, path: Path) -> Path:
    atomic_write(Path(path), gradebook_csv(grades))
    return Path(path)


def by_assignment(grades: list) -> dict:
    """The grades per assignment, assignments in name order."""
    groups = defaultdict(list)
    for grade in grades:
        groups[grade.assignment].append(grade)
    return dict(sorted(groups.items()))


# ------------------------------------------------------------------ the table a newcomer reads


def score_table(grades: list) -> str:
    rows = [("learner", "assignment", "score", "status")]
    for grade in sorted(grades, key=lambda g: (g.assignment, g.learner)):
        result = grade_result(grade)
        failed = [t for t in result.tests if not t.passed]
        why = problem(result)
        if result.unreadable:
            score = UNREADABLE if not result.max_score else f"0 / {result.max_score:g}"
        else:
            score = f"{result.score:g} / {result.max_score:g}"
        if why:
            note = f"not graded: {why}"
        elif failed:
            note = f"{len(failed)} of {len(result.tests)} checks failed"
        else:
            note = "all checks passed"
        if result.late is not None and result.late.days_late:
            note += f"; {result.late.days_late} day(s) late, -{result.late.penalty:g}"
        elif result.late is not None and not result.late.judged:
            note += f"; {NOT_JUDGED}"
        if result.late is not None and result.late.extension:
            note += f"; {result.late.extension}"
        note = clean_text(" ".join(note.split()), one_line=True)
        learner, assignment = clean_text(grade.learner, one_line=True), clean_text(grade.assignment, one_line=True)
        rows.append((learner, assignment, score, note if len(note) <= 90 else note[:87] + "..."))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths + [max(len(row[3]) for row in rows)]))
    return "\n".join(lines)
