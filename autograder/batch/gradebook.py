"""The course's gradebooks, as CSV, and the score table ``dlgrade batch`` prints.

Files (under the batch's --out):
- gradebook.csv          one row per learner and assignment (total, max, status, lateness: submitted_at,
                         time_source, days_late, late_penalty, extension; problem);
- gradebooks/<a>.csv     one assignment: a column per graded function and a row of maxima;
- course-summary.csv     learner x assignment totals (like nbgrader's grades export);
- canvas-gradebook.csv   the same totals in the CSV Canvas' gradebook imports.

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
UNREADABLE = "unreadable"  # a notebook that was submitted but could not be graded: not "0 / 0"


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


def status(result: Result) -> str:
    if result.unreadable:
        return "grader error" if result.grader_error else UNREADABLE
    if result.grader_error:
        return "grader error"
    return "late" if result.late is not None and result.late.days_late else "graded"


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


def gradebook_csv(grades: list) -> str:
    """The course's long gradebook (like nbgrader's grades export): one row per learner and assignment."""
    rows: list = [GRADEBOOK_COLUMNS]
    for grade in sorted(grades, key=lambda g: (g.learner, g.assignment)):
        result = grade_result(grade)
        known = result.max_score > 0 or not result.unreadable
        rows.append(
            [
                grade.learner,
                grade.assignment,
                _number(result.score),
                _number(result.max_score) if known else "",
                status(result),
                *_late_cells(result),
                problem(result),
            ]
        )
    return _csv(rows)


def assignment_gradebook_csv(assignment: str, grades: list) -> str:
    """One assignment's gradebook: a column per graded function, a row of maxima, then one row per learner."""
    results = [(g.learner, grade_result(g)) for g in sorted(grades, key=lambda g: g.learner)]
    functions: dict = {}  # function -> max, in notebook order
    for _, result in results:
        for name, entry in result.functions.items():
            functions.setdefault(name, entry.max_score)
    max_score = max((r.max_score for _, r in results), default=0.0)
    header = ["learner", "total", *functions, "status", *LATE_COLUMNS, "problem"]
    blank = [""] * (len(LATE_COLUMNS) + 2)
    rows = [header, [MAX_ROW, _number(max_score), *(_number(m) for m in functions.values()), *blank]]
    for learner, result in results:
        scores = (
            []
            if result.unreadable
            else [_number(result.functions[f].score) if f in result.functions else "" for f in functions]
        )
        rows.append(
            [
                learner,
                _number(result.score),
                *(scores or [""] * len(functions)),
                status(result),
                *_late_cells(result),
                problem(result),
            ]
        )
    return _csv(rows)


def course_summary_csv(grades: list) -> str:
    """Learner x assignment totals: a number, "unreadable" or "grader error" (submitted, not graded),
    or blank (nothing submitted)."""
    return _csv(course_summary_rows(grades))


def course_summary_rows(grades: list) -> list:
    """course-summary.csv's rows, its numbers as numbers (the course page shows them with cell_text)."""
    assignments = by_assignment(grades)
    maxima = {name: max((grade_result(g).max_score for g in group), default=0.0) for name, group in assignments.items()}
    cells: dict = defaultdict(dict)
    for grade in grades:
        result = grade_result(grade)
        cells[grade.learner][grade.assignment] = status(result) if result.unreadable else _number(result.score)
    rows = [
        ["learner", *assignments, "total", "max"],
        [MAX_ROW, *(_number(maxima[a]) if maxima[a] else "" for a in assignments), _number(sum(maxima.values())), ""],
    ]
    for learner in sorted(cells):
        row = cells[learner]
        total = sum(v for v in row.values() if isinstance(v, float))
        rows.append([learner, *(row.get(a, "") for a in assignments), _number(total), _number(sum(maxima.values()))])
    return rows


CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_csv(grades: list) -> str:
    """A gradebook Canvas imports (Grades > Import): its fixed columns, a "Points Possible" row, one column
    per assignment. The learner name goes in Student and SIS Login ID, which Canvas matches on; a blank cell
    leaves Canvas' grade alone, an unreadable notebook is a 0 (its feedback says why)."""
    assignments = {
        name: group for name, group in by_assignment(grades).items() if any(grade_result(g).max_score for g in group)
    }
    titles = {}
    for name, group in assignments.items():
        titles[name] = next((grade_result(g).title for g in group if grade_result(g).max_score), name)
    maxima = {name: max(grade_result(g).max_score for g in group) for name, group in assignments.items()}
    rows = [
        CANVAS_FIXED + [titles[a] for a in assignments],
        ["    Points Possible", "", "", "", ""] + [_number(maxima[a]) for a in assignments],
    ]
    by_learner: dict = defaultdict(dict)
    for grade in grades:
        if grade.assignment in assignments:
            by_learner[grade.learner][grade.assignment] = _number(grade_result(grade).score)
    for learner in sorted(by_learner):
        rows.append([learner, "", "", learner, ""] + [by_learner[learner].get(a, "") for a in assignments])
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


def write_gradebooks(grades: list, out: Path) -> list:
    """gradebook.csv, course-summary.csv, canvas-gradebook.csv and gradebooks/<assignment>.csv under ``out``."""
    out = Path(out)
    written = [out / "gradebook.csv", out / "course-summary.csv", out / "canvas-gradebook.csv"]
    write_if_changed(written[0], gradebook_csv(grades))
    write_if_changed(written[1], course_summary_csv(grades))
    write_if_changed(written[2], canvas_csv(grades))
    for assignment, group in by_assignment(grades).items():
        path = out / GRADEBOOKS_DIR / f"{assignment}.csv"
        write_if_changed(path, assignment_gradebook_csv(assignment, group))
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
