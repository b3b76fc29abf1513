"""The course page shows every state distinctly and its totals table fits a 1,280 px screen with the
course's seven assignments (issue 20, item 8), measured in headless Chromium.

Two measurements of the same page at 1,280 x 900:
- the layout: a wrapper page (no CSP: the course page itself runs no script) loads index.html in a
  1,280 px iframe and reads the totals table's box and the page's scroll width;
- a screenshot: the right-hand margin of the picture is blank page, not a table cut at the edge.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from autograder.batch import course_page, gradebook, ledger, roster
from autograder.batch.state import Grade
from autograder.grading import catalogue
from autograder.grading.results import FunctionScore, Late, Result, zero_result
from tests.test_html import chromium, needs_chromium

WIDTH = 1280


def a_grade(learner: str, assignment: str, score: float, *, late_days: int = 0) -> Grade:
    spec = catalogue.load(assignment)
    late = None
    if late_days:
        late = Late("2026-03-02T10:00:00+00:00", "staff-csv", "2026-03-01T00:00:00+00:00", late_days, score, 1.0, "")
    result = Result(
        assignment=assignment,
        submission=f"{assignment}.ipynb",
        title=spec.title,
        score=score,
        max_score=spec.max_score,
        functions={f: FunctionScore(0.0, spec.points.get(f, 0.0)) for f in spec.graded_functions},
        late=late,
    )
    return Grade(learner, assignment, f"{learner}/{assignment}.ipynb", "0" * 64, result.to_dict(), "")


def seven_assignment_course() -> tuple:
    """Six learners (long names among them) over all seven assignments, in every state."""
    names = catalogue.names()
    assert len(names) == 7
    learners = ["alice", "bob.lee-parkinson", "carol_kim_2026", "dave", "erin.jung.kwon@example.edu", "frank"]
    grades = []
    for i, learner in enumerate(learners):
        for j, assignment in enumerate(names):
            if (i + j) % 5 == 4:
                continue  # missing or not submitted
            if (i, j) == (1, 2):
                spec = catalogue.load(assignment)
                unreadable = zero_result(f"{assignment}.ipynb", spec, "not a notebook")
                grades.append(Grade(learner, assignment, f"{learner}/x.ipynb", "", unreadable.to_dict(), ""))
                continue
            grades.append(
                a_grade(learner, assignment, round(catalogue.load(assignment).max_score * 0.8, 1), late_days=(i == 3))
            )
    people = roster.parse_roster("learner\n" + "\n".join(learners) + "\n")
    now = datetime(2026, 12, 7, tzinfo=UTC)

    def deadlines(learner, assignment):
        due = now + timedelta(days=3) if assignment == names[-1] else now - timedelta(days=3)
        if learner == "dave":
            return due + timedelta(days=7), "extension: +7 day(s)"
        return due, ""

    grades.append(a_grade("zed-not-listed", names[0], 1.0))
    course = ledger.build(grades, roster=people, assignments=names, deadlines=deadlines, now=now)
    return grades, course


def test_every_state_has_its_own_cell_on_the_page_and_in_the_summary(tmp_path):
    grades, course = seven_assignment_course()
    states = course.counts()
    for state in (
        ledger.GRADED,
        ledger.LATE,
        ledger.UNREADABLE,
        ledger.MISSING,
        ledger.NOT_SUBMITTED,
        ledger.NOT_ON_ROSTER,
    ):
        assert states[state], state
    html_text = course_page.course_page_html(grades, course)
    cells = re.findall(
        r'<td class="num ([a-z-]+)" data-learner="([^"]+)" data-assignment="([^"]+)" data-state="([^"]+)" data-extended="(yes|no)"',
        html_text,
    )
    assert len(cells) == len(course.rows)
    assert {c[0] for c in cells} >= {"missing", "not-submitted", "graded", "late", "unreadable", "not-on-roster"}
    extended = [c for c in cells if c[4] == "yes"]
    assert extended and all(c[1] == "dave" for c in extended)
    assert 'class="ext"' in html_text
    summary = gradebook.course_summary_rows(grades, course)
    flat = [cell for row in summary[2:] for cell in row]
    assert "missing" in flat and "not submitted" in flat and "unreadable" in flat


def measure(tmp_path: Path, page: Path) -> dict:
    wrapper = tmp_path / "measure.html"
    wrapper.write_text(
        f"""<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{page.as_uri()}" style="border:0;width:{WIDTH}px;height:900px"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById('f').onload = function () {{
  var doc = this.contentDocument, table = doc.getElementById('course-summary');
  var box = table.getBoundingClientRect(), holder = table.parentElement.getBoundingClientRect();
  var clipped = Array.from(table.querySelectorAll('th')).filter(function (th) {{
    return th.scrollWidth > th.clientWidth + 1; }}).length;
  document.getElementById('out').textContent = JSON.stringify({{
    tableRight: box.right, tableWidth: box.width, holderRight: holder.right,
    pageScrollWidth: doc.documentElement.scrollWidth, viewport: doc.documentElement.clientWidth,
    columns: table.rows[0].cells.length, clippedHeaders: clipped}});
}};
</script></body></html>"""
    )
    dom = chromium(
        tmp_path, "--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", wrapper.as_uri()
    ).stdout
    found = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert found and found.group(1) != "pending", dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@needs_chromium
def test_the_totals_table_with_seven_assignments_fits_1280px(tmp_path):
    from matplotlib.image import imread

    grades, course = seven_assignment_course()
    out = tmp_path / "out"
    out.mkdir()
    page = course_page.write_course_page(grades, out, course)
    sizes = measure(tmp_path, page)
    assert sizes["columns"] == 7 + 3  # learner, seven assignments, total, max
    assert sizes["pageScrollWidth"] <= sizes["viewport"] <= WIDTH, sizes  # no sideways scrolling
    assert sizes["tableRight"] <= sizes["viewport"], sizes  # the whole table is on screen, not scrolled
    assert sizes["clippedHeaders"] == 0, sizes  # every assignment's name is readable
    shot = tmp_path / "course.png"
    chromium(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},900", "--hide-scrollbars", page.as_uri())
    pixels = imread(shot)[..., :3]
    assert pixels.shape[1] == WIDTH
    margin = pixels[:, -12:, :]
    assert (margin > 0.95).all(), "the page's right margin is not blank: something runs off the screen"
    table_band = (pixels < 0.9).any(axis=2)
    assert table_band[:, : WIDTH // 2].mean() > 0.01  # and the page is not blank
    out_dir = Path(page).parent
    (out_dir / "course-1280.png").write_bytes(shot.read_bytes())  # for a human to look at


@needs_chromium
def test_the_layout_measurement_can_fail(tmp_path, monkeypatch):
    """The same measurement on the page as it was before the course style (the report's 60rem page,
    headers that do not wrap): the seven-assignment table runs past a 1,280 px screen."""
    grades, course = seven_assignment_course()
    monkeypatch.setattr(course_page, "COURSE_STYLE", "")
    out = tmp_path / "out"
    out.mkdir()
    sizes = measure(tmp_path, course_page.write_course_page(grades, out, course))
    assert sizes["tableRight"] > sizes["viewport"] or sizes["pageScrollWidth"] > sizes["viewport"], sizes
