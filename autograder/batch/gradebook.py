"""The course's view of a batch: gradebooks, plots, the course page and the score table.

Files (under the batch's --out):
- gradebook.csv          one row per learner and assignment (total, max, status, lateness, problem);
- gradebooks/<a>.csv     one assignment: a column per graded function and a row of maxima;
- course-summary.csv     learner x assignment totals (like nbgrader's grades export);
- canvas-gradebook.csv   the same totals in the CSV Canvas' gradebook imports;
- plots/<a>-scores.png, plots/<a>-pass-rate.png;
- index.html             the course page: totals, histograms, pass rates, links to each feedback.html.

Everything here is computed from the batch state's grades (see state.py), so a
resumed or repeated batch always regenerates the same files from the same grades.
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections import defaultdict
from pathlib import Path

from autograder.grading.reports import atomic_write, clean_text, esc, page
from autograder.grading.results import Result, as_result

GRADEBOOK_COLUMNS = [
    "learner",
    "assignment",
    "total",
    "max",
    "status",
    "submitted_at",
    "days_late",
    "late_penalty",
    "problem",
]
MAX_ROW = "(max)"  # the learner cell of a gradebook's row of maxima
UNREADABLE = "unreadable"  # a notebook that was submitted but could not be graded: not "0 / 0"


def _number(value) -> str:
    return f"{float(value):g}"


def _result(grade) -> Result:
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


def _late_cells(result: Result) -> list:
    late = result.late
    if late is None:
        return ["", "", ""]
    return [late.submitted_at, str(late.days_late), _number(late.penalty)]


def _csv(rows: list) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def gradebook_csv(grades: list) -> str:
    """The course's long gradebook (like nbgrader's grades export): one row per learner and assignment."""
    rows = [GRADEBOOK_COLUMNS]
    for grade in sorted(grades, key=lambda g: (g.learner, g.assignment)):
        result = _result(grade)
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
    results = [(g.learner, _result(g)) for g in sorted(grades, key=lambda g: g.learner)]
    functions: dict = {}  # function -> max, in notebook order
    for _, result in results:
        for name, entry in result.functions.items():
            functions.setdefault(name, entry.max_score)
    max_score = max((r.max_score for _, r in results), default=0.0)
    header = ["learner", "total", *functions, "status", "submitted_at", "days_late", "late_penalty", "problem"]
    rows = [header, [MAX_ROW, _number(max_score), *(_number(m) for m in functions.values()), "", "", "", "", ""]]
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
    assignments = _by_assignment(grades)
    maxima = {name: max((_result(g).max_score for g in group), default=0.0) for name, group in assignments.items()}
    cells: dict = defaultdict(dict)
    for grade in grades:
        result = _result(grade)
        cells[grade.learner][grade.assignment] = status(result) if result.unreadable else _number(result.score)
    rows = [
        ["learner", *assignments, "total", "max"],
        [MAX_ROW, *(_number(maxima[a]) if maxima[a] else "" for a in assignments), _number(sum(maxima.values())), ""],
    ]
    for learner in sorted(cells):
        row = cells[learner]
        total = sum(float(v) for v in row.values() if v not in (UNREADABLE, "grader error"))
        rows.append([learner, *(row.get(a, "") for a in assignments), _number(total), _number(sum(maxima.values()))])
    return _csv(rows)


CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_csv(grades: list) -> str:
    """A gradebook Canvas imports (Grades > Import): its fixed columns, a "Points Possible" row, one column
    per assignment. The learner name goes in Student and SIS Login ID, which Canvas matches on; a blank cell
    leaves Canvas' grade alone, an unreadable notebook is a 0 (its feedback says why)."""
    assignments = {
        name: group for name, group in _by_assignment(grades).items() if any(_result(g).max_score for g in group)
    }
    titles = {}
    for name, group in assignments.items():
        titles[name] = next((_result(g).title for g in group if _result(g).max_score), name)
    maxima = {name: max(_result(g).max_score for g in group) for name, group in assignments.items()}
    rows = [
        CANVAS_FIXED + [titles[a] for a in assignments],
        ["    Points Possible", "", "", "", ""] + [_number(maxima[a]) for a in assignments],
    ]
    by_learner: dict = defaultdict(dict)
    for grade in grades:
        if grade.assignment in assignments:
            by_learner[grade.learner][grade.assignment] = _number(_result(grade).score)
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
    for assignment, group in _by_assignment(grades).items():
        path = out / GRADEBOOKS_DIR / f"{assignment}.csv"
        write_if_changed(path, assignment_gradebook_csv(assignment, group))
        written.append(path)
    return written


def write_gradebook(grades: list, path: Path) -> Path:
    atomic_write(Path(path), gradebook_csv(grades))
    return Path(path)


# ------------------------------------------------------------------ plots


def _by_assignment(grades: list) -> dict:
    groups = defaultdict(list)
    for grade in grades:
        groups[grade.assignment].append(grade)
    return dict(sorted(groups.items()))


def pass_rates(grades: list) -> dict:
    """Hidden check name -> (passed, graded) over the submissions whose suite ran."""
    rates: dict = {}
    for grade in grades:
        result = _result(grade)
        if result.unreadable:
            continue  # never graded: it says nothing about which checks are hard
        for test in result.tests:
            passed, total = rates.get(test.name, (0, 0))
            rates[test.name] = (passed + test.passed, total + 1)
    return rates


def rate_colour(fraction: float) -> str:
    """Red (nobody passes) through amber to green (everybody passes), as #rrggbb."""
    import colorsys

    red, green, blue = colorsys.hls_to_rgb(max(0.0, min(1.0, fraction)) * 120 / 360, 0.42, 0.65)
    return f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"


def _save(figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write(path, buffer.getvalue())


def _scores(grades: list) -> tuple:
    """(scores of the graded submissions, the assignment's maximum)."""
    results = [_result(g) for g in grades]
    scores = [r.score for r in results if not r.unreadable]
    top = max([r.max_score for r in results] + [max(scores, default=0), 1.0])
    return scores, top


def histogram_bins(top: float) -> list:
    """Bin edges: one bar per whole point (centred on it) while that stays readable; 20 bins beyond."""
    import numpy as np

    return list(np.arange(-0.5, np.ceil(top) + 1)) if top <= 40 else list(np.linspace(0, top, 21))


def score_histogram(assignment: str, grades: list, path: Path) -> Path:
    from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend, Agg canvas
    from matplotlib.ticker import MaxNLocator

    scores, top = _scores(grades)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.hist(scores, bins=histogram_bins(top), color="#4477aa", edgecolor="white")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"score (out of {top:g})")
    axes.set_ylabel("submissions")
    axes.set_title(f"{assignment}: scores of {len(scores)} graded submission(s)", fontsize=11)
    figure.tight_layout()
    _save(figure, path)
    return path


def _check_label(name: str, width: int = 60) -> str:
    """'f: f returns W1' -> 'f: returns W1', wrapped on two lines at most."""
    function, _, check = name.partition(": ")
    if check.startswith(function + " "):
        check = check[len(function) + 1 :]
    lines = textwrap.wrap(f"{function}: {check}" if check else name, width) or [name]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 3] + "..."]
    return "\n".join(lines)


def pass_rate_chart(assignment: str, grades: list, path: Path) -> Path:
    from matplotlib.figure import Figure

    rates = pass_rates(grades)
    graded = sum(1 for g in grades if not _result(g).unreadable)
    figure = Figure(figsize=(10, 1.5 + 0.45 * max(1, len(rates))))
    axes = figure.add_subplot()
    if rates:
        values = [100 * passed / total for passed, total in rates.values()]
        axes.barh(range(len(rates)), values, color=[rate_colour(v / 100) for v in values])
        axes.set_yticks(range(len(rates)), [_check_label(name) for name in rates], fontsize=8)
        axes.invert_yaxis()  # suite order, top to bottom
        for row, ((passed, total), value) in enumerate(zip(rates.values(), values)):
            axes.text(min(value, 100) + 1, row, f"{passed}/{total}", va="center", fontsize=8)
    else:
        axes.text(0.5, 0.5, "no submission could be graded", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlim(0, 110)
    axes.set_xticks(range(0, 101, 20))
    axes.set_xlabel("submissions passing (%)")
    axes.set_title(f"{assignment}: pass rate per hidden check ({graded} graded submission(s))", fontsize=11)
    figure.tight_layout()
    _save(figure, path)
    return path


def _digest(grades: list) -> str:
    """What a plot depends on: the scores and check outcomes of the group."""
    import hashlib

    rows = sorted(
        (
            g.learner,
            _result(g).score,
            _result(g).max_score,
            _result(g).unreadable,
            tuple((t.name, t.passed) for t in _result(g).tests),
        )
        for g in grades
    )
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def write_plots(grades: list, folder: Path) -> list:
    """Draw each assignment's histogram and pass-rate chart; only those whose grades changed (matplotlib
    costs ~1 s a figure). Returns the plots drawn now."""
    folder = Path(folder)
    drawn = []
    for assignment, group in _by_assignment(grades).items():
        if not any(_result(g).max_score for g in group):
            continue  # notebooks no assignment could be told for: nothing to plot
        digest = _digest(group)
        stamp = folder / f".{assignment}.digest"
        scores, rates = folder / f"{assignment}-scores.png", folder / f"{assignment}-pass-rate.png"
        try:
            unchanged = stamp.read_text() == digest and scores.exists() and rates.exists()
        except OSError:
            unchanged = False
        if unchanged:
            continue
        drawn.append(score_histogram(assignment, group, scores))
        drawn.append(pass_rate_chart(assignment, group, rates))
        atomic_write(stamp, digest)
    return drawn


# ------------------------------------------------------------------ the table a newcomer reads


def score_table(grades: list) -> str:
    rows = [("learner", "assignment", "score", "status")]
    for grade in sorted(grades, key=lambda g: (g.assignment, g.learner)):
        result = _result(grade)
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
        note = clean_text(" ".join(note.split()))
        rows.append(
            (clean_text(grade.learner), grade.assignment, score, note if len(note) <= 90 else note[:87] + "...")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths + [max(len(row[3]) for row in rows)]))
    return "\n".join(lines)


# ------------------------------------------------------------------ the course page (index.html)

COURSE_PAGE = "index.html"


def _histogram_svg(assignment: str, grades: list) -> str:
    """The score histogram as inline SVG: the page stays one self-contained file."""
    import numpy as np

    scores, top = _scores(grades)
    edges = histogram_bins(top)
    counts, _ = np.histogram(scores, bins=edges)
    width, height, pad = 480, 200, 30
    tallest = max(int(counts.max()) if len(counts) else 0, 1)
    bar = (width - 2 * pad) / max(len(counts), 1)
    parts = [
        f'<svg class="histogram" data-assignment="{esc(assignment)}" width="{width}" height="{height + 40}" '
        f'viewBox="0 0 {width} {height + 40}" role="img" aria-label="{esc(assignment)} score histogram">',
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#888"/>',
    ]
    for i, count in enumerate(counts):
        h = (height - pad) * int(count) / tallest
        x = pad + i * bar
        low, high = edges[i], edges[i + 1]
        label = f"{(low + high) / 2:g}" if top <= 40 else f"{low:.0f}-{high:.0f}"
        parts.append(
            f'<rect class="bin" data-count="{int(count)}" data-label="{label}" x="{x + 1:.1f}" '
            f'y="{height - h:.1f}" width="{max(bar - 2, 1):.1f}" height="{h:.1f}" fill="#4477aa">'
            f"<title>{label}: {int(count)}</title></rect>"
        )
        if count:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - h - 4:.1f}" font-size="11" '
                f'text-anchor="middle">{int(count)}</text>'
            )
        if top <= 40 or i % 4 == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height + 15}" font-size="10" text-anchor="middle">{label}</text>'
            )
    parts.append(
        f'<text x="{width / 2}" y="{height + 34}" font-size="11" text-anchor="middle">'
        f"score (out of {top:g}), {len(scores)} graded submission(s)</text></svg>"
    )
    return "".join(parts)


def _pass_rate_rows(grades: list) -> list:
    rows = ['<table class="pass-rates">', "<tr><th>hidden check</th><th>pass rate</th><th>passed</th></tr>"]
    for name, (passed, total) in pass_rates(grades).items():
        fraction = passed / total if total else 0.0
        rows.append(
            f'<tr class="rate" data-check="{esc(name)}" data-passed="{passed}" data-total="{total}">'
            f'<td>{esc(_check_label(name, width=10_000))}</td><td class="rate"><span class="bar"><span style="width:{100 * fraction:.0f}%;'
            f'background:{rate_colour(fraction)}"></span></span> {100 * fraction:.0f}%</td>'
            f'<td class="num">{passed} / {total}</td></tr>'
        )
    rows.append("</table>")
    return rows


def _feedback_link(grade) -> str:
    from urllib.parse import quote

    return f"{quote(grade.learner)}/{quote(grade.assignment)}/feedback.html"


def course_page_html(grades: list) -> str:
    """The batch on one page: course totals, then per assignment its histogram, the pass rate of each
    hidden check (bars coloured by rate) and every learner's score with a link to their feedback."""
    import statistics

    assignments = _by_assignment(grades)
    body = [
        "<h1>Course results</h1>",
        f'<p class="muted">{len(grades)} submission(s) of {len({g.learner for g in grades})} learner(s), '
        f'{len(assignments)} assignment(s). Files: <a href="gradebook.csv">gradebook.csv</a>, '
        '<a href="course-summary.csv">course-summary.csv</a>, '
        '<a href="canvas-gradebook.csv">canvas-gradebook.csv</a>.</p>',
    ]
    summary = list(csv.reader(io.StringIO(course_summary_csv(grades))))
    body += [
        "<h2>Totals</h2>",
        '<table id="course-summary">',
        "<tr>" + "".join(f"<th>{esc(cell)}</th>" for cell in summary[0]) + "</tr>",
    ]
    for row in summary[1:]:
        body.append(
            "<tr>"
            + "".join(
                f'<td class="num">{esc(cell)}</td>' if i else f"<td>{esc(cell)}</td>" for i, cell in enumerate(row)
            )
            + "</tr>"
        )
    body.append("</table>")
    for assignment, group in assignments.items():
        results = [(g, _result(g)) for g in sorted(group, key=lambda g: g.learner)]
        scores = [r.score for _, r in results if not r.unreadable]
        title = next((r.title for _, r in results if r.max_score), assignment)
        body.append(f'<section class="assignment" id="{esc(assignment)}" data-assignment="{esc(assignment)}">')
        body.append(f'<h2>{esc(title)} <span class="muted">({esc(assignment)})</span></h2>')
        stats = f"{len(results)} submission(s), {len(scores)} graded"
        if scores:
            stats += f"; mean {statistics.mean(scores):.2f}, median {statistics.median(scores):g}"
        body.append(f'<p class="stats">{stats}.</p>')
        if any(r.max_score for _, r in results):
            body += [_histogram_svg(assignment, group), "<h3>Pass rate per hidden check</h3>", *_pass_rate_rows(group)]
        body += [
            "<h3>Scores</h3>",
            '<table class="scores">',
            "<tr><th>learner</th><th>score</th><th>max</th><th>status</th><th>late</th><th>feedback</th></tr>",
        ]
        for grade, result in results:
            late = result.late
            late_cell = f"{late.days_late} day(s), -{late.penalty:g}" if late is not None and late.days_late else ""
            shown = UNREADABLE if result.unreadable and not result.max_score else f"{result.score:g}"
            state = status(result) + (f": {problem(result)}" if problem(result) else "")
            body.append(
                f'<tr class="score-row" data-learner="{esc(grade.learner)}" data-assignment="{esc(assignment)}" '
                f'data-total="{result.score:g}" data-max="{result.max_score:g}" data-status="{status(result)}">'
                f'<td>{esc(grade.learner)}</td><td class="num">{shown}</td><td class="num">{result.max_score:g}</td>'
                f"<td>{esc(state[:200])}</td><td>{late_cell}</td>"
                f'<td><a href="{esc(_feedback_link(grade))}">feedback</a></td></tr>'
            )
        body += ["</table>", "</section>"]
    return page("Course results", body)


def write_course_page(grades: list, out: Path) -> Path:
    path = Path(out) / COURSE_PAGE
    write_if_changed(path, course_page_html(grades))
    return path
