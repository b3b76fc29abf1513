"""Gradebooks: one per assignment (a column per function, a row of maxima), a course summary, a Canvas import.

Two assignments here share a function name with different maxima, as
gradient_checking and tensorflow_intro do (forward_propagation: 1 and 3 points):
each assignment's gradebook keeps its own columns and maxima.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys

import pytest

from autograder.batch import gradebook
from autograder.batch.state import Grade
from autograder.grading import catalogue
from autograder.grading.results import FunctionScore, Result, TestResult, zero_result
from tests.nbtools import ROOT, released_path, solution_path


def graded(learner, assignment, scores: dict, maxima: dict) -> Grade:
    tests = [TestResult(f, "works", maxima[f], scores[f] == maxima[f], score=scores[f]) for f in maxima]
    result = Result(
        assignment=assignment,
        submission=f"{learner}.ipynb",
        title=assignment.title(),
        score=sum(scores.values()),
        max_score=sum(maxima.values()),
        tests=tests,
        functions={f: FunctionScore(scores[f], maxima[f], int(scores[f] == maxima[f]), 1) for f in maxima},
    )
    return Grade(learner, assignment, f"{learner}/{assignment}/{assignment}.ipynb", "0" * 64, result.to_dict(), "")


GC = {"forward_propagation": 1.0, "backward_propagation": 2.0}
TF = {"forward_propagation": 3.0, "compute_cost": 2.0}


@pytest.fixture
def grades():
    unreadable = zero_result("bob.ipynb", None, "bob.ipynb is not valid JSON", assignment="tf")
    unreadable.max_score = 5.0  # a known assignment: its maximum is known even though the notebook is not
    return [
        graded("alice", "gc", {"forward_propagation": 1.0, "backward_propagation": 2.0}, GC),
        graded("alice", "tf", {"forward_propagation": 1.5, "compute_cost": 2.0}, TF),
        graded("bob", "gc", {"forward_propagation": 0.0, "backward_propagation": 2.0}, GC),
        Grade("bob", "tf", "bob/tf/tf.ipynb", "1" * 64, unreadable.to_dict(), ""),
        graded("carol", "tf", {"forward_propagation": 3.0, "compute_cost": 0.0}, TF),
    ]


def read(text: str) -> list:
    return list(csv.reader(io.StringIO(text)))


def test_each_assignment_has_its_own_gradebook_with_a_row_of_maxima(grades):
    tf = read(gradebook.assignment_gradebook_csv("tf", [g for g in grades if g.assignment == "tf"]))
    assert tf[0][:4] == ["learner", "total", "forward_propagation", "compute_cost"]
    assert tf[1][:4] == [gradebook.MAX_ROW, "5", "3", "2"]
    rows = {row[0]: dict(zip(tf[0], row)) for row in tf[2:]}
    assert rows["alice"]["forward_propagation"] == "1.5" and rows["alice"]["total"] == "3.5"
    assert rows["bob"]["status"] == "unreadable" and rows["bob"]["forward_propagation"] == ""
    assert "not valid JSON" in rows["bob"]["problem"]
    gc = read(gradebook.assignment_gradebook_csv("gc", [g for g in grades if g.assignment == "gc"]))
    assert gc[1][:4] == [gradebook.MAX_ROW, "3", "1", "2"]  # forward_propagation is worth 1 here, 3 in tf


def test_course_gradebook_has_no_mixed_function_columns(grades):
    rows = read(gradebook.gradebook_csv(grades))
    assert rows[0] == gradebook.GRADEBOOK_COLUMNS
    bob_tf = next(row for row in rows if row[:2] == ["bob", "tf"])
    assert dict(zip(rows[0], bob_tf))["status"] == "unreadable"


def test_course_summary_is_learner_by_assignment(grades):
    rows = read(gradebook.course_summary_csv(grades))
    assert rows[0] == ["learner", "gc", "tf", "total", "max"]
    assert rows[1] == [gradebook.MAX_ROW, "3", "5", "8", ""]
    table = {row[0]: row for row in rows[2:]}
    assert table["alice"] == ["alice", "3", "3.5", "6.5", "8"]
    assert table["bob"] == ["bob", "2", "unreadable", "2", "8"]  # marked, not "0 / 0"
    assert table["carol"] == ["carol", "missing", "3", "3", "8"]  # nothing submitted, and said so


def test_canvas_gradebook_has_canvas_columns_and_points_possible(grades):
    rows = read(gradebook.canvas_csv(grades))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Gc", "Tf"]
    assert rows[1][0].strip() == "Points Possible" and rows[1][5:] == ["3", "5"]
    table = {row[0]: row for row in rows[2:]}
    assert table["alice"][3] == "alice" and table["alice"][5:] == ["3", "3.5"]
    assert table["bob"][5:] == ["2", "0"] and table["carol"][5:] == ["", "3"]


def test_score_table_says_unreadable_not_zero_of_zero():
    unknown = zero_result("x.ipynb", None, "cannot tell which assignment this notebook is", assignment="unknown")
    table = gradebook.score_table([Grade("zed", "unknown", "zed.ipynb", "", unknown.to_dict(), "")])
    assert "0 / 0" not in table and "unreadable" in table


def test_files_are_rewritten_only_when_their_content_changes(grades, tmp_path):
    written = gradebook.write_gradebooks(grades, tmp_path)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert names == {
        "gradebook.csv",
        "course-summary.csv",
        "canvas-gradebook.csv",
        "gradebooks/gc.csv",
        "gradebooks/tf.csv",
    }
    stamps = {p: p.stat().st_mtime_ns for p in written}
    gradebook.write_gradebooks(grades, tmp_path)
    assert {p: p.stat().st_mtime_ns for p in written} == stamps


def test_real_batch_writes_every_gradebook_and_points_at_the_course_page(tmp_path):
    subs = tmp_path / "submitted"
    for learner, source in (("alice", solution_path("initialization")), ("carol", released_path("initialization"))):
        (subs / learner / "initialization").mkdir(parents=True)
        shutil.copy(source, subs / learner / "initialization" / "initialization.ipynb")
    (subs / "dan" / "initialization").mkdir(parents=True)
    (subs / "dan" / "initialization" / "initialization.ipynb").write_text("{ not json")
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "batch", str(subs), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.rstrip().splitlines()[-1] == f"Course page: {(out / 'index.html').resolve().as_uri()}"
    spec = catalogue.load("initialization")
    rows = read((out / "gradebooks" / "initialization.csv").read_text())
    assert rows[0][2 : 2 + len(spec.graded_functions)] == spec.graded_functions
    assert rows[1][1 : 2 + len(spec.graded_functions)] == [f"{spec.max_score:g}"] + [
        f"{spec.points[f]:g}" for f in spec.graded_functions
    ]
    table = {row[0]: dict(zip(rows[0], row)) for row in rows[2:]}
    assert float(table["alice"]["total"]) == spec.max_score and table["alice"]["status"] == "graded"
    assert table["carol"]["status"] == "graded" and float(table["carol"]["total"]) == 0
    assert table["dan"]["status"] == "unreadable" and "JSON" in table["dan"]["problem"]
    summary = {row[0]: row for row in read((out / "course-summary.csv").read_text())}
    assert summary["dan"][1] == "unreadable"
    assert (out / "learners" / "dan" / "initialization" / "feedback.html").exists()
    assert 'href="learners/alice/initialization/feedback.html"' in (out / "index.html").read_text()
