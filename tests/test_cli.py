"""The README's commands, run as a user would (in-process through cli.main)."""

from __future__ import annotations

import csv
import json
import shutil

from autograder.cli import main as dlgrade
from autograder.grading import catalogue
from tests.nbtools import released_path, solution_path

A = "initialization"


def test_grade_json_prints_the_results_file(tmp_path, capsys):
    assert dlgrade(["grade", str(solution_path(A)), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["score"] == result["max_score"] == catalogue.load(A).max_score
    assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(result["tests"][0])


def test_check_runs_the_public_tests(capsys):
    assert dlgrade(["check", str(solution_path(A))]) == 0
    assert "All tests passed" in capsys.readouterr().out
    assert dlgrade(["check", str(released_path(A))]) == 1
    assert "NotImplementedError" in capsys.readouterr().out


def test_validate_and_release_are_consistent(capsys):
    before = released_path(A).read_bytes()
    assert dlgrade(["release", A]) == 0
    assert released_path(A).read_bytes() == before  # release is a pure function of the solution
    assert dlgrade(["validate", A]) == 0
    assert f"{A}: ok" in capsys.readouterr().out


def test_unknown_assignment_is_a_clear_usage_error(capsys):
    assert dlgrade(["grade", str(solution_path(A)), "--assignment", "nope"]) == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_batch_on_an_existing_dask_scheduler(tmp_path, capsys):
    """`dlgrade batch ... --dask tcp://...` against a scheduler started separately."""
    import distributed

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(solution_path(A), subs / "alice.ipynb")
    shutil.copy(released_path(A), subs / "carol.ipynb")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        code = dlgrade(["batch", str(subs), "--out", str(tmp_path / "out"), "--dask", cluster.scheduler_address])
    assert code == 0, capsys.readouterr()
    with open(tmp_path / "out" / "gradebook.csv") as handle:
        book = {row["learner"]: row for row in csv.DictReader(handle)}
    assert float(book["alice"]["total"]) == catalogue.load(A).max_score
    assert float(book["carol"]["total"]) == 0
