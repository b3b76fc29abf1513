"""The course page, --out/index.html: course totals, then per assignment an inline SVG score
histogram, the pass rate of each hidden check and every learner's score with a link to their feedback.
One self-contained file, rewritten only when it changes."""

from __future__ import annotations

from pathlib import Path

from autograder.batch.gradebook import (
    UNREADABLE,
    by_assignment,
    cell_text,
    course_summary_rows,
    grade_result,
    problem,
    status,
    write_if_changed,
)
from autograder.batch.names import feedback_href
from autograder.batch.plots import check_label, graded_scores, histogram_bins, pass_rates, rate_colour
from autograder.grading.reports import NOT_JUDGED, esc, page

COURSE_PAGE = "index.html"


def _histogram_svg(assignment: str, grades: list) -> str:
    """The score histogram as inline SVG: the page stays one self-contained file."""
    import numpy as np

    scores, top = graded_scores(grades)
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
            f'<td>{esc(check_label(name, width=10_000))}</td><td class="rate"><span class="bar"><span style="width:{100 * fraction:.0f}%;'
            f'background:{rate_colour(fraction)}"></span></span> {100 * fraction:.0f}%</td>'
            f'<td class="num">{passed} / {total}</td></tr>'
        )
    rows.append("</table>")
    return rows


def course_page_html(grades: list) -> str:
    """The batch on one page: course totals, then per assignment its histogram, the pass rate of each
    hidden check (bars coloured by rate) and every learner's score with a link to their feedback."""
    import statistics

    assignments = by_assignment(grades)
    body = [
        "<h1>Course results</h1>",
        f'<p class="muted">{len(grades)} submission(s) of {len({g.learner for g in grades})} learner(s), '
        f'{len(assignments)} assignment(s). Files: <a href="gradebook.csv">gradebook.csv</a>, '
        '<a href="course-summary.csv">course-summary.csv</a>, '
        '<a href="canvas-gradebook.csv">canvas-gradebook.csv</a>.</p>',
    ]
    summary = [[cell_text(cell) for cell in row] for row in course_summary_rows(grades)]
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
        results = [(g, grade_result(g)) for g in sorted(group, key=lambda g: g.learner)]
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
            late_cell = _late_cell(late)
            shown = UNREADABLE if result.unreadable and not result.max_score else f"{result.score:g}"
            state = status(result) + (f": {problem(result)}" if problem(result) else "")
            body.append(
                f'<tr class="score-row" data-learner="{esc(grade.learner)}" data-assignment="{esc(assignment)}" '
                f'data-total="{result.score:g}" data-max="{result.max_score:g}" data-status="{status(result)}">'
                f'<td>{esc(grade.learner)}</td><td class="num">{shown}</td><td class="num">{result.max_score:g}</td>'
                f"<td>{esc(state[:200])}</td><td>{late_cell}</td>"
                f'<td><a href="{esc(feedback_href(grade.learner, grade.assignment))}">feedback</a></td></tr>'
            )
        body += ["</table>", "</section>"]
    return page("Course results", body)


def _late_cell(late) -> str:
    """The late column: days and penalty, "time unknown: not judged late", and any extension."""
    if late is None:
        return ""
    parts = []
    if not late.judged:
        parts.append(NOT_JUDGED)
    elif late.days_late:
        parts.append(f"{late.days_late} day(s), -{late.penalty:g}")
    if late.extension:
        parts.append(late.extension)
    return esc("; ".join(parts))


def write_course_page(grades: list, out: Path) -> Path:
    path = Path(out) / COURSE_PAGE
    write_if_changed(path, course_page_html(grades))
    return path
