"""The course page, --out/index.html: course totals, then per assignment an inline SVG score
histogram, the pass rate of each hidden check and every learner's score with a link to their feedback.
One self-contained file, rewritten only when it changes."""

from __future__ import annotations

from pathlib import Path

from autograder.batch import ledger as course
from autograder.batch.gradebook import (
    MAX_ROW,
    UNREADABLE,
    cell_text,
    ledger_of,
    maxima,
    summary_cell,
    write_if_changed,
)
from autograder.batch.ledger import Ledger
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


# The totals table stays readable with the course's seven assignments on a 1,280 px screen: the page is
# wider than a report's, headers wrap at underscores, and the table scrolls inside its own box rather
# than pushing the page wider (tests/test_course_page_layout.py measures it in headless Chromium).
COURSE_STYLE = (
    "body{max-width:76rem}"
    ".totals-box{overflow-x:auto;max-width:100%}"
    "#course-summary{font-size:.85rem}"
    "#course-summary th,#course-summary td{padding:.25rem .45rem}"
    "#course-summary th{vertical-align:bottom;max-width:7rem}"
    "#course-summary td{white-space:nowrap}"
    "#course-summary td.missing,#course-summary td.not-submitted{white-space:normal;max-width:5.5rem}"
    "#course-summary td.learner{max-width:14rem;overflow:hidden;text-overflow:ellipsis}"
    "td.missing{color:#b42318;font-style:italic}td.not-submitted{color:#666;font-style:italic}"
    "td.unreadable,td.wrong-assignment,td.grader-error{color:#b42318}"
    "tr.off-roster td.learner::after{content:' (not on roster)';color:#b42318;font-size:.8rem}"
    ".ext{color:#8250df;font-size:.75rem;margin-left:.25rem}"
    ".legend span{margin-right:1rem}"
)


def _state_class(state: str) -> str:
    return state.replace(" ", "-")


def _header(assignment: str) -> str:
    """An assignment's header: its name, breakable after each underscore."""
    return "_<wbr>".join(esc(part) for part in assignment.split("_"))


def _totals_table(ledger: Ledger) -> list:
    """Learner x assignment: the score, or the state that stands for one (missing, not submitted,
    unreadable, wrong assignment...), each state with its own look; an extended deadline is marked."""
    assignments = list(ledger.by_assignment())
    tops = maxima(ledger)
    total_max = sum(tops.values())
    head = "".join(f'<th title="{esc(a)}">{_header(a)}</th>' for a in assignments)
    rows = [
        '<div class="totals-box">',
        '<table id="course-summary">',
        f"<tr><th>learner</th>{head}<th>total</th><th>max</th></tr>",
        f'<tr class="max-row"><td class="learner">{esc(MAX_ROW)}</td>'
        + "".join(f'<td class="num">{cell_text(tops[a]) if tops[a] else ""}</td>' for a in assignments)
        + f'<td class="num">{cell_text(float(total_max))}</td><td></td></tr>',
    ]
    by_learner: dict = {}
    for row in ledger.rows:
        by_learner.setdefault(row.learner, {})[row.assignment] = row
    for learner in sorted(by_learner):
        mine = by_learner[learner]
        cells, total = [], 0.0
        for assignment in assignments:
            row = mine.get(assignment)
            if row is None:
                cells.append("<td></td>")
                continue
            value = summary_cell(row)
            if isinstance(value, float):
                total += value
            mark = f'<span class="ext" title="{esc(row.extension)}">ext.</span>' if row.extension else ""
            title = esc(row.reason or row.state) + (f"; {esc(row.extension)}" if row.extension else "")
            cells.append(
                f'<td class="num {_state_class(row.state)}" data-learner="{esc(learner)}" '
                f'data-assignment="{esc(assignment)}" data-state="{esc(row.state)}" '
                f'data-extended="{"yes" if row.extension else "no"}" title="{title}">'
                f"{esc(cell_text(value))}{mark}</td>"
            )
        off = ledger.roster is not None and all(r.state == course.NOT_ON_ROSTER for r in mine.values())
        rows.append(
            f'<tr class="total-row{" off-roster" if off else ""}" data-learner="{esc(learner)}">'
            f'<td class="learner" title="{esc(learner)}">{esc(learner)}</td>{"".join(cells)}'
            f'<td class="num">{cell_text(total)}</td><td class="num">{cell_text(float(total_max))}</td></tr>'
        )
    rows += ["</table>", "</div>"]
    counts = ledger.counts()
    legend = "".join(f"<span>{esc(state)}: {counts[state]}</span>" for state in course.STATES if counts[state])
    extended = sum(1 for row in ledger.rows if row.extension)
    if extended:
        legend += f'<span><span class="ext">ext.</span> extended deadline: {extended}</span>'
    rows.append(f'<p class="legend muted">{legend}</p>')
    return rows


def course_page_html(grades: list, ledger: Ledger | None = None) -> str:
    """The batch on one page: course totals (every learner and assignment, submitted or not), then per
    assignment its histogram, the pass rate of each hidden check (bars coloured by rate) and every
    learner's row with a link to their feedback."""
    import statistics

    ledger = ledger_of(grades, ledger)
    assignments = ledger.by_assignment()
    roster = "" if ledger.roster is None else f", roster of {len(ledger.roster.people)}"
    body = [
        f"<style>{COURSE_STYLE}</style>",
        "<h1>Course results</h1>",
        f'<p class="muted">{len(grades)} submission(s) of {len({g.learner for g in grades})} learner(s), '
        f"{len(assignments)} assignment(s){roster}. Files: "
        '<a href="gradebook.csv">gradebook.csv</a>, '
        '<a href="course-summary.csv">course-summary.csv</a>, '
        '<a href="canvas-gradebook.csv">canvas-gradebook.csv</a>.</p>',
        "<h2>Totals</h2>",
        *_totals_table(ledger),
    ]
    for assignment, rows in assignments.items():
        group = [row.grade for row in rows if row.grade is not None]
        results = [(row, row.result) for row in rows]
        scores = [r.score for _, r in results if r is not None and not r.unreadable]
        title = next((r.title for _, r in results if r is not None and r.max_score), assignment)
        body.append(f'<section class="assignment" id="{esc(assignment)}" data-assignment="{esc(assignment)}">')
        body.append(f'<h2>{esc(title)} <span class="muted">({esc(assignment)})</span></h2>')
        stats = f"{len(group)} submission(s), {len(scores)} graded"
        unsubmitted = len(rows) - len(group)
        if unsubmitted:
            stats += f", {unsubmitted} without a submission"
        if scores:
            stats += f"; mean {statistics.mean(scores):.2f}, median {statistics.median(scores):g}"
        body.append(f'<p class="stats">{stats}.</p>')
        if any(r.max_score for _, r in results if r is not None):
            body += [_histogram_svg(assignment, group), "<h3>Pass rate per hidden check</h3>", *_pass_rate_rows(group)]
        body += [
            "<h3>Scores</h3>",
            '<table class="scores">',
            "<tr><th>learner</th><th>score</th><th>max</th><th>status</th><th>late</th><th>feedback</th></tr>",
        ]
        for row, result in results:
            body.append(_score_row(row, result))
        body += ["</table>", "</section>"]
    return page("Course results", body)


def _score_row(row, result) -> str:
    """One learner's row of an assignment's scores table."""
    state = row.state + (f": {row.reason}" if row.reason else "")
    common = f'data-learner="{esc(row.learner)}" data-assignment="{esc(row.assignment)}" data-status="{esc(row.state)}"'
    if result is None:
        extension = esc(row.extension)
        return (
            f'<tr class="score-row unsubmitted" {common} data-total="" data-max="">'
            f'<td>{esc(row.learner)}</td><td class="num"></td><td class="num"></td>'
            f'<td class="{_state_class(row.state)}">{esc(state[:200])}</td><td>{extension}</td><td></td></tr>'
        )
    shown = UNREADABLE if result.unreadable and not result.max_score else f"{result.score:g}"
    return (
        f'<tr class="score-row" {common} data-total="{result.score:g}" data-max="{result.max_score:g}">'
        f'<td>{esc(row.learner)}</td><td class="num">{shown}</td><td class="num">{result.max_score:g}</td>'
        f"<td>{esc(state[:200])}</td><td>{_late_cell(result.late)}</td>"
        f'<td><a href="{esc(feedback_href(row.learner, row.assignment))}">feedback</a></td></tr>'
    )


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


def write_course_page(grades: list, out: Path, ledger: Ledger | None = None) -> Path:
    path = Path(out) / COURSE_PAGE
    write_if_changed(path, course_page_html(grades, ledger))
    return path
