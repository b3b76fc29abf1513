"""Names are data (issue 20, item 3): learner, assignment and file names from the submissions folder
never become spreadsheet formulas, terminal lines, or paths that collide with the course's own files.

The batches here run the real command line (``dlgrade batch``, in process) with the fake grader of
tests/test_batch.py, so that only the names are hostile.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from autograder.batch import command, gradebook, run
from autograder.batch.run import run_batch
from autograder.batch.state import Grade
from autograder.cli import main as dlgrade
from autograder.grading.reports import clean_text
from autograder.grading.results import Result, TestResult, zero_result
from tests.test_batch import fake_grade, submission

# What a spreadsheet runs as a formula (OWASP: CSV injection): a cell starting with one of these.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Folder names cannot hold "/", so the batch uses a HYPERLINK without one; the gradebook functions
# below get OWASP's own example.
HOSTILE = ['=HYPERLINK("x","y")', "+1", "-2", "@SUM(A1)", "=1+2"]
# Every file of the course's own, as a learner name.
COURSE_FILES = [
    "gradebook.csv",
    "course-summary.csv",
    "canvas-gradebook.csv",
    "index.html",
    "skipped.txt",
    "batch-state.sqlite",
    "batch-errors.log",
    "gradebooks",
    "plots",
    "learners",
]
# Control characters a terminal or a text file reads as structure: C0 (tab and newline included:
# a name is one line), DEL, C1, line/paragraph separators, bidi overrides and isolates.
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def fake_batch(monkeypatch):
    """``dlgrade batch`` as the command line runs it, graded by the fake grader in one worker."""

    def batch(*args, **kwargs):
        kwargs.update(grade=fake_grade, workers=1, progress=False)
        return run_batch(*args, **kwargs)

    monkeypatch.setattr(command, "run_batch", batch)

    def cli(subs, out) -> int:
        return dlgrade(["batch", str(subs), "--out", str(out)])

    return cli


def every_csv(out) -> dict:
    """Each CSV the batch wrote (relative path -> rows)."""
    found = {}
    for path in sorted(out.rglob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            found[path.relative_to(out).as_posix()] = list(csv.reader(handle))
    return found


def assert_no_formula(books: dict) -> None:
    for name, rows in books.items():
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_START), f"{name}: {cell!r} would run as a formula"


# ------------------------------------------------------------------ formulas


def test_hostile_learner_names_are_text_in_every_csv_the_batch_writes(tmp_path, fake_batch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for learner, score in [*((name, 2.5) for name in HOSTILE), ("alice", 4)]:
        submission(subs / learner, "hw", score=score)
    assert fake_batch(subs, out) == 0
    books = every_csv(out)
    assert set(books) == {
        "gradebook.csv",
        "course-summary.csv",
        "canvas-gradebook.csv",
        "gradebooks/unknown.csv",
    }
    assert_no_formula(books)
    for name, rows in books.items():
        learners = {row[0] for row in rows[1:]}
        assert {"'" + learner for learner in HOSTILE} <= learners, name
    # The course's own numbers stay numbers.
    book = {row["learner"]: row for row in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))}
    assert book["'-2"]["total"] == "2.5" and book["alice"]["total"] == "4" and book["'+1"]["max"] == "4"
    summary = {row[0]: row for row in books["course-summary.csv"]}
    assert summary["'=1+2"][1:] == ["2.5", "2.5", "4"]


def test_the_gradebook_functions_neutralise_owasp_examples():
    hostile = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"]
    grades = []
    for learner in hostile:
        tests = [TestResult("f", "works", 2.0, False, score=1.0, message="-1")]
        result = Result(assignment="hw", submission="x.ipynb", title="=TITLE()", score=1.0, max_score=2.0, tests=tests)
        grades.append(Grade(learner, "hw", f"{learner}/hw.ipynb", "0" * 64, result.to_dict(), ""))
    unreadable = zero_result("x.ipynb", None, "-cannot read +x", assignment="hw")
    grades.append(Grade("=bad", "hw", "=bad/hw.ipynb", "1" * 64, unreadable.to_dict(), ""))
    texts = {
        "gradebook": gradebook.gradebook_csv(grades),
        "summary": gradebook.course_summary_csv(grades),
        "canvas": gradebook.canvas_csv(grades),
        "assignment": gradebook.assignment_gradebook_csv("hw", grades),
    }
    books = {name: list(csv.reader(io.StringIO(text, newline=""))) for name, text in texts.items()}
    assert_no_formula(books)
    for name, rows in books.items():
        # (a CR inside a cell becomes a line break inside the quoted cell: no reader takes it for a row's end)
        assert {"'" + learner.replace("\r", "\n") for learner in hostile} <= {row[0] for row in rows}, name
    assert "'=TITLE()" in books["canvas"][0]
    assert gradebook.csv_cell(1.5) == "1.5" and gradebook.csv_cell(0) == "0" and gradebook.csv_cell("") == ""
    assert gradebook.csv_cell("-2") == "'-2" and gradebook.csv_cell("alice") == "alice"


# ------------------------------------------------------------------ control characters


def test_control_characters_in_names_forge_no_line(tmp_path, fake_batch, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs / "alice", "hw", score=4)
    (subs / "alice" / "notes\nwarning: forged (a file).txt").write_text("x")
    (subs / "alice" / "more\rwarning: forged\x1b[2K.txt").write_text("x")
    submission(subs / "bob\nwarning: forged (a learner)", "hw", score=4)
    submission(subs / "carol\u202eevil", "hw", score=4)
    submission(subs / "dave", "hw\u2028warning: forged (a notebook)", behaviour="raise")
    code = fake_batch(subs, out)
    assert code == 3  # dave's fake grader raises: a grader error, logged
    printed = capsys.readouterr()
    for line in (printed.out + printed.err).splitlines():
        assert not line.lstrip().startswith("warning: forged"), line
        assert not RAW_CONTROL.search(line), repr(line)
    skipped = (out / run.SKIPPED_FILE).read_text(encoding="utf-8")
    lines = skipped.splitlines()
    # one line per skipped file: alice's two odd files, bob's and carol's notebooks (names refused)
    assert len(lines) == 4, lines
    for line in lines:  # the file's path, a tab, the reason
        assert len(line.split("\t")) == 2 and not RAW_CONTROL.search(line.replace("\t", " ")), repr(line)
    assert sum("learner name refused" in line for line in lines) == 2
    errors = (out / run.ERRORS_LOG).read_text(encoding="utf-8")
    assert not any(line.lstrip().startswith("warning: forged") for line in errors.splitlines())
    assert "\u2028" not in errors
    # The refused learners are graded nowhere; the others are.
    book = {row["learner"] for row in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))}
    assert book == {"alice", "dave"}


def test_clean_text_one_line_escapes_every_control_character():
    text = "a\nb\rc\td\x1b[31me\x85f\x7fg\u2028h\u2029i\u202ej\u2066k\u200el"
    line = clean_text(text, one_line=True)
    assert not RAW_CONTROL.search(line) and "\n" not in line
    assert line == ("a\\nb\\rc\\td\\x1b[31me\\x85f\\x7fg\\u2028h\\u2029i\\u202ej\\u2066k\\u200el")
    assert clean_text("plain name, é") == "plain name, é" == clean_text("plain name, é", one_line=True)
    assert "\u2028" not in clean_text("x\u2028y") and "\u200f" not in clean_text("x\u200fy")


# ------------------------------------------------------------------ names that were paths


def test_learners_named_like_course_files_are_graded_and_rerun(tmp_path, fake_batch, capsys):
    subs, out = tmp_path / "subs", tmp_path / "out"
    for learner in ["alice", *COURSE_FILES, "zed"]:
        submission(subs / learner, "hw", score=3)
    for attempt in ("first", "rerun"):
        assert fake_batch(subs, out) == 0, attempt
        printed = capsys.readouterr().out
        assert ("12 graded now" if attempt == "first" else "0 graded now, 12 unchanged") in printed
        book = {row["learner"]: row for row in csv.DictReader(io.StringIO((out / "gradebook.csv").read_text()))}
        assert set(book) == {"alice", *COURSE_FILES, "zed"}
        assert all(row["total"] == "3" for row in book.values())
        assert (out / "index.html").read_text().lower().startswith("<!doctype html>")
        assert (out / "batch-state.sqlite").is_file() and (out / "skipped.txt").is_file()
        for learner in book:
            report = out / "learners" / learner / "unknown" / "results.json"
            assert json.loads(report.read_text())["score"] == 3, learner
        page = (out / "index.html").read_text()
        assert 'href="learners/gradebook.csv/unknown/feedback.html"' in page


def test_refused_identifiers_say_why():
    from autograder.batch import names

    assert names.name_problem("alice") is None
    assert names.name_problem("José O'Brien-Smith") is None
    for bad in ("", ".", "..", "a/b", "a\\b", "a\nb", "a\x00b", "\u202eevil", "x" * 200, " alice"):
        assert names.name_problem(bad), repr(bad)
    with pytest.raises(ValueError):
        names.learner_folder(Path("/out"), "..", "hw")


def test_a_too_long_learner_folder_is_skipped_with_the_reason(tmp_path, fake_batch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs / "alice", "hw", score=4)
    submission(subs / ("x" * 200), "hw", score=4)
    assert fake_batch(subs, out) == 1  # every submission has a result or a line, and one needs a look
    lines = (out / run.SKIPPED_FILE).read_text().splitlines()
    assert len(lines) == 1 and "learner name refused" in lines[0] and "characters" in lines[0]
