"""The HTML reports, rendered by a real browser (Debian's headless Chromium).

A batch writes index.html (the course page) and a feedback.html per submission.
Chromium loads them from disk; the test reads the DOM it built (--dump-dom) and
checks its numbers against gradebook.csv, and takes a screenshot to check the
page is not blank. Without chromium these tests skip and say so (``make setup``
installs it when run as root with apt-get).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.batch import course_page, plots
from autograder.batch.run import run_batch
from autograder.grading.reports import feedback_html
from autograder.grading.results import TestResult
from tests.test_batch import fake_grade, quiet, submission
from tests.test_reports import a_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install -y chromium; make setup does it as root)",
)


def chromium(tmp_path: Path, *args, timeout=120) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each <tr>."""

    def __init__(self):
        super().__init__()
        self.elements, self.rows, self._row = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "tr":
            self._row = (attrs, [])
        elif tag in ("td", "th") and self._row is not None:
            self._row[1].append("")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self._row[1]:
            self._row[1][-1] += data


def parse(html_text: str) -> Elements:
    parser = Elements()
    parser.feed(html_text)
    return parser


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A small batch: full, partial and zero scores, and one submission the grader could not grade."""
    root = tmp_path_factory.mktemp("html")
    subs, out = root / "subs", root / "out"
    for learner, score in (("alice", 4), ("bob", 2.5), ("carol", 0), ("dave", 2), ("<eve>", 3)):
        submission(subs, learner, score=score)
    submission(subs, "mallory", behaviour="raise")
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert len(summary.grades) == 6
    return out


def gradebook_rows(out: Path) -> dict:
    with open(out / "gradebook.csv") as handle:
        return {row["learner"]: row for row in csv.DictReader(handle)}


def test_course_page_numbers_match_the_gradebook(batch):
    """Without a browser: the page's own data agrees with gradebook.csv (fast, always runs)."""
    page = parse((batch / "index.html").read_text())
    rows = {attrs["data-learner"]: attrs for attrs, _ in page.rows if attrs.get("class") == "score-row"}
    book = gradebook_rows(batch)
    assert set(rows) == set(book)
    for learner, attrs in rows.items():
        assert float(attrs["data-total"]) == float(book[learner]["total"]), learner
        assert attrs["data-status"] == book[learner]["status"]
    assert book["mallory"]["status"] == "grader error"


@needs_chromium
def test_course_page_renders_in_chromium_with_the_gradebook_numbers(batch, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", (batch / "index.html").as_uri()).stdout
    page = parse(dom)
    book = gradebook_rows(batch)
    shown = {}
    for attrs, cells in page.rows:
        if attrs.get("class") == "score-row":
            learner, score, maximum = cells[0], cells[1], cells[2]
            shown[learner] = (score, maximum)
            assert f"learners/{learner}/unknown/feedback.html".replace("<", "%3C").replace(">", "%3E") in dom
    assert set(shown) == set(book)
    for learner, row in book.items():
        score, _ = shown[learner]
        if row["status"] == "graded":
            assert float(score) == float(row["total"]), learner
    # Pass rates: the bars' numbers are those of the gradebook's functions (fake grader: forward, backward).
    rates = {
        attrs["data-check"]: (int(attrs["data-passed"]), int(attrs["data-total"]))
        for attrs, _ in page.rows
        if attrs.get("class") == "rate"
    }
    assert rates == {"forward has the right shape": (4, 5), "backward has the right shape": (1, 5)}
    bars = [attrs["style"] for tag, attrs in page.elements if tag == "span" and "background" in attrs.get("style", "")]
    assert len(set(bars)) == 2  # coloured by rate: 80% and 20% differ
    bins = [int(attrs["data-count"]) for tag, attrs in page.elements if tag == "rect" and attrs.get("class") == "bin"]
    assert sum(bins) == 5  # the histogram counts the five graded submissions, not the failed one


@needs_chromium
def test_course_page_screenshot_is_not_blank(batch, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "course.png"
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1100,1400",
        "--hide-scrollbars",
        (batch / "index.html").as_uri(),
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    not_white = (pixels < 0.95).any(axis=2).mean()
    assert 0.02 < not_white < 0.9, not_white  # text, tables and bars, on a white page
    colours = {tuple((p * 8).astype(int)) for p in pixels.reshape(-1, 3)[::97]}
    assert len(colours) > 8  # not one flat colour
    shutil.copy(shot, batch / "course-screenshot.png")  # kept beside the page for a human to look at


@needs_chromium
def test_feedback_page_renders_and_shows_the_score(batch, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", (batch / "learners" / "bob" / "unknown" / "feedback.html").as_uri()).stdout
    page = parse(dom)
    scores = [attrs for tag, attrs in page.elements if tag == "span" and "data-score" in attrs]
    assert scores[0]["data-score"] == gradebook_rows(batch)["bob"]["total"] == "2.5"
    assert "<script" not in dom


def test_feedback_page_is_self_contained():
    page = feedback_html(a_result([TestResult("f", "works", 1.0, False, message="<img src=x>")]))
    tags = parse(page).elements
    assert not [attrs for tag, attrs in tags if tag in ("script", "img", "link", "iframe")]
    assert any(tag == "meta" and "default-src 'none'" in attrs.get("content", "") for tag, attrs in tags)


def test_plots_are_drawn_again_only_when_grades_change(batch, tmp_path):
    from autograder.batch.run import STATE_FILE
    from autograder.batch.state import GradeState

    with GradeState(batch / STATE_FILE) as state:
        grades = state.grades()
    folder = tmp_path / "plots"
    assert len(plots.write_plots(grades, folder)) == 2
    assert plots.write_plots(grades, folder) == []  # nothing changed: nothing drawn
    changed = [
        g if g.learner != "bob" else type(g)(**{**g.__dict__, "result": {**g.result, "score": 4.0}}) for g in grades
    ]
    assert len(plots.write_plots(changed, folder)) == 2


def test_course_page_is_rewritten_only_when_it_changes(batch):
    from autograder.batch.run import STATE_FILE
    from autograder.batch.state import GradeState

    with GradeState(batch / STATE_FILE) as state:
        grades = state.grades()
    page = batch / course_page.COURSE_PAGE
    before = page.stat().st_mtime_ns
    assert course_page.write_course_page(grades, batch) == page and page.stat().st_mtime_ns == before
