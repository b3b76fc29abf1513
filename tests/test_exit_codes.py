"""The exit-code table (README, CI section; ``dlgrade --help``), one test per row and command.

0 reached / passed, 1 below the minimum / checks failed, 2 usage or unreadable
input, 3 grader failure. (128+N after a stop signal: tests/test_signals.py.)
"""

from __future__ import annotations

import json
import shutil

import pytest

from autograder.cli import main as dlgrade
from autograder.grading import catalogue
from tests.nbtools import released_path, solution_path

A = "initialization"


def run(capsys, *argv) -> tuple:
    code = dlgrade(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err  # a clear message, never a traceback
    return code, captured.out, captured.err


# ------------------------------------------------------------------ 0: reached


def test_0_full_marks_reach_a_percentage_minimum(capsys):
    code, out, _ = run(capsys, "grade", str(solution_path(A)), "--min-score", "80%")
    assert code == 0 and f"{catalogue.load(A).max_score:g} / {catalogue.load(A).max_score:g}" in out


def test_0_for_the_course_commands(capsys):
    assert run(capsys, "validate", A)[0] == 0
    assert run(capsys, "check", str(solution_path(A)))[0] == 0


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as stop:
        dlgrade(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("dlgrade ") and "engine" in out
    with pytest.raises(SystemExit):
        dlgrade(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "command-line layer" not in text  # not the developer's docstring
    assert "Exit status" in text and "3  the grader itself failed" in text


# ------------------------------------------------------------------ 1: below the minimum


def test_1_below_the_minimum_says_so_also_with_json(capsys):
    stub = str(released_path(A))
    code, out, err = run(capsys, "grade", stub, "--min-score", "8")
    assert code == 1 and "below the required 8" in err
    code, out, err = run(capsys, "grade", stub, "--json", "--min-score", "50%")
    assert code == 1
    assert json.loads(out)["score"] == 0  # stdout stays pure JSON
    assert f"below the required {catalogue.load(A).max_score / 2:g}" in err


def test_1_when_public_tests_fail(capsys):
    assert run(capsys, "check", str(released_path(A)))[0] == 1


# ------------------------------------------------------------------ 2: usage or unreadable input


@pytest.mark.parametrize("extra", [[], ["--min-score", "1"]])
def test_2_for_a_missing_notebook_with_or_without_min_score(capsys, extra, tmp_path):
    code, out, err = run(capsys, "grade", str(tmp_path / "nope.ipynb"), *extra)
    assert code == 2 and "no such file" in err and "0 / 0" not in out


def test_2_for_a_folder_a_python_file_and_a_damaged_notebook(capsys, tmp_path):
    code, _, err = run(capsys, "grade", str(tmp_path))
    assert code == 2 and "is a folder" in err and "Is a directory" not in err
    script = tmp_path / "initialization.py"
    script.write_text("def initialize_parameters_zeros(layers_dims):\n    return {}\n")
    for command in ("grade", "check"):
        code, _, err = run(capsys, command, str(script))
        assert code == 2 and "Python file, not a notebook" in err and "damaged" not in err
    damaged = tmp_path / "damaged.ipynb"
    damaged.write_text('{"cells": [')
    code, out, err = run(capsys, "grade", str(damaged), "--out", str(tmp_path / "reports"))
    assert code == 2 and "not valid JSON" in err
    assert "0 / 0" in out and (tmp_path / "reports" / "feedback.md").exists()  # still a score and a report
    assert run(capsys, "check", str(damaged))[0] == 2


def test_2_for_out_at_an_existing_file(capsys, tmp_path):
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    code, _, err = run(capsys, "grade", str(solution_path(A)), "--out", str(taken))
    assert code == 2 and "is a file" in err
    assert taken.read_text() == "not a folder"


def test_2_for_a_minimum_no_one_can_reach_or_cannot_read(capsys):
    code, _, err = run(capsys, "grade", str(released_path(A)), "--min-score", "1000")
    assert code == 2 and "above the maximum" in err
    for bad in ("lots", "120%", "-1"):
        with pytest.raises(SystemExit) as stop:
            dlgrade(["grade", str(released_path(A)), "--min-score", bad])
        assert stop.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize("command", ["grade", "check", "validate", "release", "execute-solutions", "batch"])
def test_2_for_an_unknown_assignment_in_every_command(capsys, command, tmp_path):
    argv = {
        "grade": ["grade", str(solution_path(A)), "--assignment", "nope"],
        "check": ["check", str(solution_path(A)), "--assignment", "nope"],
        "batch": ["batch", str(tmp_path), "--out", str(tmp_path / "out"), "--assignment", "nope"],
    }.get(command, [command, "nope"])
    code, _, err = run(capsys, *argv)
    assert code == 2 and "unknown assignment" in err


def test_2_when_the_batch_cannot_run(capsys, tmp_path):
    code, _, err = run(capsys, "batch", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "batch", str(tmp_path), "--out", str(tmp_path / "out"), "--only", ",")
    assert code == 2


# ------------------------------------------------------------------ 3: grader failure


@pytest.fixture
def broken_suite(tmp_path, monkeypatch):
    """The hidden suites, with a syntax error in initialization's."""
    suites = tmp_path / "suites"
    shutil.copytree(catalogue.SUITES_DIR, suites)
    (suites / A / f"test_{A}.py").write_text("def test_broken(:\n    pass\n")
    monkeypatch.setattr(catalogue, "SUITES_DIR", suites)
    catalogue.load.cache_clear()
    # pytest (importlib mode) reuses a suite module imported earlier in this process under the same name.
    import sys

    for name in [n for n in sys.modules if n.endswith(f"test_{A}")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    catalogue.load.cache_clear()


def test_3_for_a_hidden_suite_that_does_not_run(capsys, broken_suite):
    code, _, err = run(capsys, "grade", str(solution_path(A)), "--min-score", "1")
    assert code == 3 and "grader failure" in err and "hidden suite of initialization failed to run" in err
    code, _, err = run(capsys, "validate", A)
    assert code == 3 and "grader failure" in err


def test_3_when_the_grader_fails_on_a_batch_submission(capsys, tmp_path, monkeypatch):
    from autograder.batch import pool
    from tests.test_batch import fake_grade, submission

    monkeypatch.setattr(pool, "grade_submission", fake_grade)  # workers unpickle it by name
    subs = tmp_path / "subs"
    submission(subs, "alice", score=4)
    submission(subs, "bob", behaviour="raise")
    code, out, err = run(capsys, "batch", str(subs), "--out", str(tmp_path / "out"), "--workers", "1")
    assert code == 3 and "the grader failed on 1 submission(s)" in err
    assert "batch-errors.log" in err and "the fake grader broke" in (tmp_path / "out" / "batch-errors.log").read_text()
    assert "alice" in out and "4 / 4" in out  # the others are graded and reported all the same
