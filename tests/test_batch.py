"""``dlgrade batch``: layouts, resumable state, gradebook, and a batch that survives its submissions.

The batch-logic tests replace the grade function (``run_batch(grade=...)``) by
the fakes below: they run in the batch's real spawned worker processes, so a
fake that calls ``os._exit`` really kills a worker. The end-to-end tests at the
bottom grade real notebooks of the ``initialization`` assignment.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.batch import plots, pool, progress, run
from autograder.batch.discovery import SubmissionsError, discover
from autograder.batch.run import BatchError, run_batch
from autograder.batch.state import GradeState
from autograder.grading.catalogue import names as assignment_names
from tests.nbtools import ROOT, solution_path, with_function, write

LOG_ENV = "DLGRADE_TEST_GRADED_LOG"


# ------------------------------------------------------------------ fakes (run in worker processes)


def fake_result(name: str, score: float, assignment) -> dict:
    """A results dict of the engine's shape: two functions worth 2 points each."""
    tests, functions = [], {}
    for function, points in (("forward", 2.0), ("backward", 2.0)):
        got = min(points, max(0.0, score - sum(f["score"] for f in functions.values())))
        passed = got == points
        functions[function] = {"score": got, "max_score": points, "passed": int(passed), "tests": 1}
        tests.append(
            {
                "name": f"{function}: {function} has the right shape",
                "function": function,
                "score": got,
                "max_score": points,
                "status": "passed" if passed else "failed",
                "output": "" if passed else "wrong shape",
                "visibility": "visible",
            }
        )
    return {
        "score": score,
        "max_score": 4.0,
        "execution_time": 0.0,
        "output": f"fake: {score:g} / 4",
        "tests": tests,
        "functions": functions,
        "assignment": assignment,
        "submission": name,
        "notes": [],
        "grader_error": False,
    }


def fake_grade(name: str, data: bytes, assignment) -> dict:
    """Behaves as the (JSON) 'notebook' asks: ok, crash, raise, hang or slow."""
    spec = json.loads(data)
    if os.environ.get(LOG_ENV):
        with open(os.environ[LOG_ENV], "a") as log:
            log.write(name + "\n")
    behaviour = spec.get("behaviour", "ok")
    if behaviour == "crash":
        os._exit(9)  # the worker process dies, as when the OOM killer strikes
    if behaviour == "raise":
        raise RuntimeError("the fake grader broke")
    if behaviour == "hang":
        time.sleep(600)
    if behaviour == "slow":
        time.sleep(spec["seconds"])
    result = fake_result(name, float(spec.get("score", 0)), assignment)
    result["notes"] = [f"graded on thread {threading.current_thread().name}"]
    return result


def submission(folder: Path, learner: str, **spec) -> Path:
    path = folder / f"{learner}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec))
    return path


def graded_log(path: Path) -> list:
    return sorted(path.read_text().split()) if path.exists() else []


def quiet(*args, **kwargs):
    pass


@pytest.fixture
def log_path(tmp_path, monkeypatch):
    path = tmp_path / "graded.log"
    monkeypatch.setenv(LOG_ENV, str(path))  # spawned workers inherit the environment
    return path


def rows(out: Path) -> dict:
    with GradeState(out / run.STATE_FILE) as state:
        return {(g.learner, g.assignment): g for g in state.grades()}


# ------------------------------------------------------------------ discovery


def test_discovers_flat_and_nbgrader_layouts(tmp_path):
    flat = tmp_path / "flat"
    submission(flat, "alice")
    submission(flat, "bob")
    (flat / ".ipynb_checkpoints").mkdir()
    submission(flat / ".ipynb_checkpoints", "alice-checkpoint")
    found = discover(flat)
    assert found.layout == "flat"
    assert [(s.learner, s.source) for s in found.submissions] == [("alice", "alice.ipynb"), ("bob", "bob.ipynb")]

    nested = tmp_path / "submitted"
    submission(nested / "alice" / "initialization", "initialization")
    submission(nested / "bob" / "initialization", "initialization")
    submission(nested, "stray")
    found = discover(nested)
    assert found.layout == "nbgrader"
    assert [(s.learner, s.folder_assignment) for s in found.submissions] == [
        ("alice", "initialization"),
        ("bob", "initialization"),
    ]
    assert "stray.ipynb" in found.warnings[0]


def test_unusable_folders_are_clear_errors(tmp_path):
    with pytest.raises(SubmissionsError, match="does not exist"):
        discover(tmp_path / "nope")
    with pytest.raises(SubmissionsError, match="no notebooks found"):
        discover(tmp_path)
    with pytest.raises(BatchError, match="unknown assignment"):
        run_batch(tmp_path, tmp_path / "out", assignment="no_such_assignment", log=quiet)
    with pytest.raises(BatchError, match="local:N"):
        run_batch(tmp_path, tmp_path / "out", dask="local:zero", log=quiet)


def test_cli_exit_code_2_when_the_batch_cannot_run(tmp_path, capsys):
    from autograder.cli import main as dlgrade

    assert dlgrade(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ resumable state


def test_second_run_grades_only_new_and_changed_files(tmp_path, log_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "alice", score=4)
    submission(subs, "bob", score=1)
    first = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert first.graded == 2 and first.kept == 0
    assert graded_log(log_path) == ["alice.ipynb", "bob.ipynb"]
    before = rows(out)

    log_path.unlink()
    submission(subs, "bob", score=3)  # bob resubmits
    submission(subs, "carol", score=2)  # carol is new
    second = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert graded_log(log_path) == ["bob.ipynb", "carol.ipynb"]
    assert (second.graded, second.kept) == (2, 1)
    after = rows(out)
    assert after[("alice", "unknown")] == before[("alice", "unknown")]  # untouched, same time stamp
    assert after[("bob", "unknown")].result["score"] == 3
    assert json.loads((out / "learners" / "bob" / "unknown" / "results.json").read_text())["score"] == 3

    log_path.unlink()
    third = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert (third.graded, third.kept) == (0, 3) and not log_path.exists()


def test_reports_lost_after_the_state_commit_are_rewritten(tmp_path, log_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "alice", score=4)
    run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    # As if the batch were killed between committing the grade and writing the reports.
    (out / "learners" / "alice" / "unknown" / "feedback.md").unlink()
    (out / "learners" / "alice" / "unknown" / "results.json").write_text("{}")
    log_path.unlink()
    run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert not log_path.exists()
    assert json.loads((out / "learners" / "alice" / "unknown" / "results.json").read_text())["score"] == 4
    assert "4 / 4" in (out / "learners" / "alice" / "unknown" / "feedback.md").read_text()


def test_kill_dash_9_loses_no_grade_and_regrades_nothing(tmp_path, log_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    learners = [f"learner{i}" for i in range(8)]
    for i, learner in enumerate(learners):
        submission(subs, learner, behaviour="slow", seconds=0.5, score=i % 5)
    script = (
        f"from autograder.batch.run import run_batch\nfrom tests.test_batch import fake_grade\n"
        f"run_batch({str(subs)!r}, {str(out)!r}, workers=2, grade=fake_grade, progress=False)\n"
    )
    batch_process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    committed = 0
    deadline = time.monotonic() + 120
    while committed < 2 and time.monotonic() < deadline and batch_process.poll() is None:
        time.sleep(0.2)
        try:
            with sqlite3.connect(f"file:{out / run.STATE_FILE}?mode=ro", uri=True) as db:
                committed = db.execute("SELECT count(*) FROM grades").fetchone()[0]
        except sqlite3.Error:
            pass  # not created yet
    assert batch_process.poll() is None, batch_process.stderr.read().decode()
    assert committed >= 2, "the batch committed no grade in two minutes"
    os.killpg(batch_process.pid, signal.SIGKILL)  # the batch and its workers, mid-flight
    batch_process.wait()
    batch_process.stderr.close()

    survived = rows(out)
    assert len(survived) >= committed  # every grade committed before the kill is still there
    graded_before = set(graded_log(log_path))
    log_path.unlink()

    summary = run_batch(subs, out, workers=2, grade=fake_grade, progress=False, log=quiet)
    regraded = set(graded_log(log_path))
    assert not regraded & {f"{learner}.ipynb" for learner, _ in survived}  # nothing graded twice
    assert regraded | {f"{learner}.ipynb" for learner, _ in survived} == {f"{l}.ipynb" for l in learners}
    assert graded_before  # the first run really was grading when it died
    assert summary.kept == len(survived)
    final = rows(out)
    assert sorted(learner for learner, _ in final) == learners
    for key, grade in survived.items():
        assert final[key].graded_at == grade.graded_at
    for learner in learners:
        assert (out / "learners" / learner / "unknown" / "feedback.md").exists()
    with open(out / "gradebook.csv") as handle:
        assert sorted(row["learner"] for row in csv.DictReader(handle)) == learners


# ------------------------------------------------------------------ a batch never dies because of one submission


def test_crash_exception_and_hang_each_cost_one_submission(tmp_path, log_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "a_ok", score=4)
    submission(subs, "b_crash", behaviour="crash")
    submission(subs, "c_ok", score=2)
    submission(subs, "d_raise", behaviour="raise")
    submission(subs, "e_hang", behaviour="hang")
    submission(subs, "f_ok", score=3)
    summary = run_batch(subs, out, workers=2, task_timeout=4, grade=fake_grade, progress=False, log=quiet)

    got = {g.learner: g.result for g in summary.grades}
    assert sorted(got) == ["a_ok", "b_crash", "c_ok", "d_raise", "e_hang", "f_ok"]
    assert [got[k]["score"] for k in ("a_ok", "c_ok", "f_ok")] == [4, 2, 3]
    assert "grading process died" in got["b_crash"]["error"]
    assert "the fake grader broke" in got["d_raise"]["error"]
    assert "did not finish within 4 s" in got["e_hang"]["error"]
    assert summary.failed == 3
    # The innocent submissions were graded exactly once with a result; the crash was retried alone once.
    log = graded_log(log_path)
    assert log.count("b_crash.ipynb") == 2
    for learner in ("b_crash", "d_raise", "e_hang"):
        feedback = (out / "learners" / learner / "unknown" / "feedback.md").read_text()
        assert "could not be graded" in feedback
    with open(out / "gradebook.csv") as handle:
        problems = {row["learner"]: row["problem"] for row in csv.DictReader(handle)}
    assert problems["a_ok"] == "" and "died" in problems["b_crash"]


def test_a_grader_exception_becomes_a_result_with_the_traceback_for_staff(monkeypatch):
    import autograder.grading.grade

    def broken(path, assignment=None):
        raise KeyError("hidden suite bug")

    monkeypatch.setattr(autograder.grading.grade, "grade_notebook", broken)
    result = pool.grade_submission("alice.ipynb", b"{}", None)
    assert result["score"] == 0 and result["grader_error"]
    assert "KeyError" in result["error"] and "hidden suite bug" in result["error"]
    assert "Traceback" in result.staff_traceback
    assert "Traceback" not in json.dumps(result.to_dict())  # for staff only: never stored or shown


# ------------------------------------------------------------------ gradebook and plots


def test_gradebook_plots_and_table(tmp_path, capsys):
    subs, out = tmp_path / "submitted", tmp_path / "out"
    for learner, score in (("alice", 4), ("bob", 2.5), ("carol", 0)):
        submission(subs / learner / "hw1", "hw1", score=score)
    summary = run_batch(subs, out, workers=2, grade=fake_grade, progress=False, log=quiet)
    with open(out / "gradebook.csv") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames[:4] == ["learner", "assignment", "total", "max"]
        table = {row["learner"]: row for row in reader}
    assert table["bob"]["total"] == "2.5" and table["alice"]["max"] == "4"
    with open(out / "gradebooks" / "unknown.csv") as handle:  # per assignment: a column per function
        reader = csv.DictReader(handle)
        assert reader.fieldnames[:4] == ["learner", "total", "forward", "backward"]
        table = {row["learner"]: row for row in reader}
    assert table["bob"]["forward"] == "2" and table["bob"]["backward"] == "0.5"
    for name in ("unknown-scores.png", "unknown-pass-rate.png"):
        assert (out / "plots" / name).read_bytes().startswith(b"\x89PNG")

    from autograder.batch.gradebook import score_table
    from autograder.batch.plots import pass_rates

    assert pass_rates(summary.grades) == {
        "forward has the right shape": (2, 3),
        "backward has the right shape": (1, 3),
    }
    text = score_table(summary.grades)
    import re

    cells = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]
    assert cells[0] == ["learner", "assignment", "score", "status"]
    assert ["bob", "unknown", "2.5 / 4", "1 of 2 checks failed"] in cells
    assert cells[2] == ["alice", "unknown", "4 / 4", "all checks passed"]


def test_nbgrader_layout_filters_by_assignment_and_reports_duplicates(tmp_path, log_path):
    known = assignment_names()
    name = known[0]
    subs, out = tmp_path / "submitted", tmp_path / "out"
    submission(subs / "alice" / name, name, score=4)
    submission(subs / "alice" / name, "copy", score=1)  # a second notebook for the same assignment
    other = next(n for n in known if n != name)
    submission(subs / "alice" / other, other, score=4)
    summary = run_batch(subs, out, assignment=name, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert [(g.learner, g.assignment) for g in summary.grades] == [("alice", name)]
    assert summary.grades[0].result["score"] == 4  # the released file name wins over copy.ipynb
    assert any(
        f"2 notebooks for {name}: graded alice/{name}/{name}.ipynb; ignored alice/{name}/copy.ipynb" in w
        for w in summary.warnings
    )
    assert graded_log(log_path) == [f"{name}.ipynb"]


# ------------------------------------------------------------------ end to end, real notebooks

A = "initialization"


@pytest.fixture(scope="module")
def real_submissions(tmp_path_factory):
    """A full-marks notebook, one with a planted bug, and a damaged file."""
    folder = tmp_path_factory.mktemp("real") / "submissions"
    write(
        with_function(
            A, "initialize_parameters_zeros", "def initialize_parameters_zeros(layers_dims):\n    return {}\n"
        ),
        folder / "bob.ipynb",
    )
    folder.joinpath("alice.ipynb").write_bytes(solution_path(A).read_bytes())
    folder.joinpath("carol.ipynb").write_text('{"cells": [')
    return folder


@pytest.mark.slow  # two real CLI batches of three notebooks: ~60 s on a loaded 2-core machine
def test_real_batch_from_the_command_line(real_submissions, tmp_path):
    from autograder.grading.catalogue import load

    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "autograder.cli",
        "batch",
        str(real_submissions),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    full = load(A).max_score
    lines = {
        line.split()[0]: line
        for line in first.stdout.splitlines()
        if line.split()[:1] in (["alice"], ["bob"], ["carol"])
    }
    assert f"{full:g} / {full:g}" in lines["alice"] and "all checks passed" in lines["alice"]
    assert "checks failed" in lines["bob"]
    assert "not graded" in lines["carol"] and "unreadable" in lines["carol"] and "0 / 0" not in lines["carol"]
    assert "3 graded now, 0 unchanged" in first.stdout

    with open(out / "gradebook.csv") as handle:
        book = {row["learner"]: row for row in csv.DictReader(handle)}
    assert float(book["alice"]["total"]) == full
    with open(out / "gradebooks" / f"{A}.csv") as handle:
        assert {row["learner"]: row for row in csv.DictReader(handle)}["bob"]["initialize_parameters_zeros"] == "0"
    assert float(book["bob"]["total"]) == full - load(A).points["initialize_parameters_zeros"]
    assert "JSON" in book["carol"]["problem"] or "notebook" in book["carol"]["problem"]
    results = json.loads((out / "learners" / "bob" / A / "results.json").read_text())
    assert results["functions"]["initialize_parameters_zeros"]["score"] == 0
    assert (out / "learners" / "bob" / A / "junit.xml").read_text().count("<failure") >= 1
    assert (out / "plots" / f"{A}-scores.png").exists() and (out / "plots" / f"{A}-pass-rate.png").exists()

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "0 graded now, 3 unchanged" in again.stdout
    assert again.stdout.split("\n\n")[1] == first.stdout.split("\n\n")[1]  # the same score table


# ------------------------------------------------------------------ Dask


def test_dask_local_cluster_gives_the_same_grades_and_state(tmp_path, log_path):
    """A real LocalCluster (worker processes): same gradebook as local workers, same resumable state,
    and a submission that kills its worker is recorded while the others are graded."""
    subs = tmp_path / "subs"
    for learner, score in (("alice", 4), ("bob", 1.5), ("dave", 3)):
        submission(subs, learner, score=score)
    submission(subs, "carol", behaviour="crash")
    local = run_batch(subs, tmp_path / "local", workers=2, grade=fake_grade, progress=False, log=quiet)
    log_path.unlink()

    on_dask = run_batch(subs, tmp_path / "dask", dask="local:2", grade=fake_grade, progress=False, log=quiet)
    assert on_dask.graded == 4 and on_dask.failed == 1 == local.failed
    assert {f"{l}.ipynb" for l in ("alice", "bob", "dave")} <= set(graded_log(log_path))
    # The engine's sandboxes die with the thread that started them: on Dask, every grade
    # runs on the worker's one long-lived grading thread, never on Dask's pool threads.
    for grade in on_dask.grades:
        if grade.learner != "carol":
            assert grade.result["notes"][0].startswith("graded on thread dlgrade-grader"), grade.result["notes"]
    crashed = {g.learner: g.result for g in on_dask.grades}["carol"]
    assert "died" in crashed["error"] and "Dask worker" in crashed["error"]

    def book(out):
        with open(out / "gradebook.csv") as handle:
            return [{k: v for k, v in row.items() if k != "problem"} for row in csv.DictReader(handle)]

    assert book(tmp_path / "dask") == book(tmp_path / "local")

    log_path.unlink()
    again = run_batch(subs, tmp_path / "dask", dask="local:2", grade=fake_grade, progress=False, log=quiet)
    assert (again.graded, again.kept) == (0, 4) and not log_path.exists()


# ------------------------------------------------------------------ what a grade depends on: regrading


@pytest.fixture
def own_course(tmp_path, monkeypatch):
    """A private copy of initialization's hidden suite and solution the test may edit (only the batch
    process reads them here: the fake grade function never does)."""
    from autograder.grading import catalogue

    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "assignments").symlink_to(ROOT / "assignments")
    shutil.copy(solution_path(A), root / "solutions" / f"{A}.ipynb")
    suites = tmp_path / "suites"
    shutil.copytree(catalogue.SUITES_DIR / A, suites / A)
    from autograder.sandbox import settings

    previous = settings.use(settings.current().but(root=root))
    monkeypatch.setattr(catalogue, "SUITES_DIR", suites)
    catalogue.load.cache_clear()
    yield root, suites / A
    settings.use(previous)
    catalogue.load.cache_clear()


def test_a_change_to_what_a_grade_depends_on_regrades_and_says_why(tmp_path, log_path, own_course, monkeypatch):
    from autograder.batch import state

    root, suite = own_course
    subs, out = tmp_path / "submitted", tmp_path / "out"
    for learner in ("alice", "bob"):
        submission(subs / learner / A, A, score=4)
    lines = []

    def log(*args, **kwargs):
        lines.append(" ".join(map(str, args)))

    def again(**kwargs) -> run.BatchSummary:
        lines.clear()
        log_path.unlink(missing_ok=True)
        return run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=log, **kwargs)

    assert again().graded == 2
    assert again().kept == 2 and not log_path.exists()

    (suite / f"test_{A}.py").write_text((suite / f"test_{A}.py").read_text() + "\n# a better hint\n")
    summary = again()
    assert summary.graded == 2 and graded_log(log_path) == [f"{A}.ipynb"] * 2
    assert summary.reasons == {f"{A}: the hidden suite changed": 2}
    assert any("grading because: initialization: the hidden suite changed (2)" in line for line in lines)

    nb = json.loads((root / "solutions" / f"{A}.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "remark", "metadata": {}, "source": "a new remark"})
    (root / "solutions" / f"{A}.ipynb").write_text(json.dumps(nb))
    assert again().reasons == {f"{A}: the reference solution changed": 2}

    toml = suite / "assignment.toml"
    toml.write_text(re.sub(r"(?m)^memory_mb = .*$", "memory_mb = 999", toml.read_text()))
    from autograder.grading import catalogue

    catalogue.load.cache_clear()
    assert again().reasons == {f"{A}: the assignment's limits or settings changed": 2}

    monkeypatch.setattr(state, "engine_version", lambda: "99.0+other")
    assert again().reasons == {f"{A}: the grading engine changed": 2}
    assert again().kept == 2

    # --force and --only: only bob, graded again though nothing changed.
    forced = again(force=True, only=["bob"])
    assert graded_log(log_path) == [f"{A}.ipynb"] and forced.reasons == {"--force": 1}
    assert [g.learner for g in forced.grades] == ["bob"]
    assert again().kept == 2


def test_a_schema_1_state_is_migrated_and_its_grades_are_redone_once(tmp_path, log_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    path = submission(subs, "alice", score=4)
    out.mkdir()
    db = sqlite3.connect(out / run.STATE_FILE)
    db.executescript("""
        CREATE TABLE grades (learner TEXT NOT NULL, assignment TEXT NOT NULL, source TEXT NOT NULL,
            sha256 TEXT NOT NULL, score REAL NOT NULL, max_score REAL NOT NULL, result TEXT NOT NULL,
            graded_at TEXT NOT NULL, PRIMARY KEY (learner, assignment));
        PRAGMA user_version=1;""")
    import hashlib

    db.execute(
        "INSERT INTO grades VALUES ('alice', 'unknown', 'alice.ipynb', ?, 1, 4, ?, '2020-01-01T00:00:00+00:00')",
        (hashlib.sha256(path.read_bytes()).hexdigest(), json.dumps(fake_result("alice.ipynb", 1, None))),
    )
    db.commit()
    db.close()
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert summary.graded == 1 and summary.grades[0].result["score"] == 4
    assert list(summary.reasons) == [
        "unknown: graded by an earlier dlgrade that did not record what a grade depends on"
    ]
    with sqlite3.connect(out / run.STATE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet).kept == 1


# ------------------------------------------------------------------ which notebook, which layout


def test_the_released_name_is_preferred_to_a_jupyter_copy_then_the_newest(tmp_path, log_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    # alice: the copy is newer, but the released name wins (the copy used to win, alphabetically).
    submission(subs / "alice", A, score=4)
    submission(subs / "alice", f"{A}-Copy1", score=0)
    os.utime(subs / "alice" / f"{A}.ipynb", (1_000_000, 1_000_000))
    # bob: no released name: the newest wins.
    submission(subs / "bob", "old_try", score=1)
    submission(subs / "bob", "new_try", score=3)
    os.utime(subs / "bob" / "old_try.ipynb", (1_000_000, 1_000_000))
    summary = run_batch(subs, out, assignment=A, workers=1, grade=fake_grade, progress=False, log=quiet)
    got = {g.learner: (g.source, g.result["score"]) for g in summary.grades}
    assert got == {"alice": (f"alice/{A}.ipynb", 4), "bob": ("bob/new_try.ipynb", 3)}
    said = "\n".join(summary.warnings)
    assert f"graded alice/{A}.ipynb; ignored alice/{A}-Copy1.ipynb (not the released name {A}.ipynb)" in said
    assert "graded bob/new_try.ipynb; ignored bob/old_try.ipynb (older than the one graded)" in said
    assert graded_log(log_path) == [f"{A}.ipynb", "new_try.ipynb"]
    listed = (out / run.SKIPPED_FILE).read_text()
    assert f"alice/{A}-Copy1.ipynb\t" in listed and "bob/old_try.ipynb\t" in listed


def test_learner_folder_and_flat_layouts_and_the_skipped_files(tmp_path):
    # GitHub Classroom / LMS: <learner>/<name>.ipynb, mixed here with nbgrader's <learner>/<assignment>/.
    subs = tmp_path / "classroom"
    submission(subs / "alice", "my_initialization")
    submission(subs / "bob" / A, A)
    (subs / "alice" / "notes.txt").write_text("to do")
    (subs / "alice" / f"{A}.py").write_text("x = 1")
    (subs / "bob" / A / "timestamp.txt").write_text("2024-01-01 00:00:00")  # nbgrader's, expected
    (subs / "alice" / ".ipynb_checkpoints").mkdir()
    submission(subs / "alice" / ".ipynb_checkpoints", "my_initialization-checkpoint")
    submission(subs, "stray")
    found = discover(subs)
    assert found.layout == "learner folders + nbgrader"
    assert [(s.learner, s.source, s.folder_assignment) for s in found.submissions] == [
        ("alice", "alice/my_initialization.ipynb", None),
        ("bob", f"bob/{A}/{A}.ipynb", A),
    ]
    assert [source for source, _ in found.skipped] == [f"alice/{A}.py", "alice/notes.txt", "stray.ipynb"]
    assert "skipped 3 file(s)" in found.warnings[0]

    flat = tmp_path / "canvas"
    submission(flat, "alice")
    (flat / "bob.py").write_text("x = 1")
    found = discover(flat)
    assert found.layout == "flat" and [s.learner for s in found.submissions] == ["alice"]
    assert found.skipped == [("bob.py", "not a notebook (.ipynb)")]


def test_learner_folders_with_several_assignments_filtered_by_assignment(tmp_path, log_path):
    """--assignment in learner folders keeps the notebooks of that assignment (by their metadata)."""
    known = assignment_names()
    other = next(n for n in known if n != A)
    subs, out = tmp_path / "subs", tmp_path / "out"
    for name in (A, other):
        write_notebook = subs / "alice" / f"{name}.ipynb"
        write_notebook.parent.mkdir(parents=True, exist_ok=True)
        write_notebook.write_text(
            json.dumps(
                {
                    "cells": [],
                    "metadata": {"dlgrade": {"assignment": name}},
                    "nbformat": 4,
                    "nbformat_minor": 5,
                    "score": 2,
                }
            )
        )
    summary = run_batch(subs, out, assignment=A, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert [(g.learner, g.assignment, g.source) for g in summary.grades] == [("alice", A, f"alice/{A}.ipynb")]
    assert graded_log(log_path) == [f"{A}.ipynb"]


# ------------------------------------------------------------------ small things


def test_progress_lines_without_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "PROGRESS_EVERY", 2)
    subs = tmp_path / "subs"
    for i in range(5):
        submission(subs, f"learner{i}", score=i % 5)
    run_batch(subs, tmp_path / "out", workers=1, grade=fake_grade, log=quiet)  # progress=None: automatic
    err = capsys.readouterr().err  # not a terminal under pytest
    assert "graded 2/5 (0 could not be graded)" in err and "graded 4/5" in err and "graded 5/5" in err


def test_an_unreadable_file_gets_a_zero_and_is_graded_once_it_can_be_read(tmp_path, log_path, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "alice", score=4)
    bob = submission(subs, "bob", score=3)
    real_open = os.open

    def unreadable_bob(path, flags, *args, **kwargs):  # the batch opens each notebook once, here
        if str(path) == bob.name and kwargs.get("dir_fd") is not None:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", unreadable_bob)
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert summary.graded == 2 and summary.failed == 1 and graded_log(log_path) == ["alice.ipynb"]
    assert "cannot read bob.ipynb: Permission denied" in rows(out)[("bob", "unknown")].result["error"]
    assert rows(out)[("bob", "unknown")].sha256 == pool.NOT_READ
    monkeypatch.setattr(os, "open", real_open)
    again = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert again.graded == 1 and again.kept == 1 and again.reasons == {"the notebook changed": 1}
    assert {g.learner: g.result["score"] for g in again.grades} == {"alice": 4, "bob": 3}


def test_a_job_is_built_from_named_fields():
    with pytest.raises(TypeError):
        pool.Job("alice", "hw1", None, "hw1.ipynb", Path("hw1.ipynb"), None, "alice/hw1.ipynb", "0" * 64, 60.0)
    job = pool.Job.not_graded(learner="alice", assignment="hw1", name="hw1.ipynb", source="alice/hw1.ipynb")
    assert (job.grade_as, job.path, job.below) == (None, None, None)
    assert (job.sha256, job.timeout) == (pool.NOT_READ, pool.NEVER_RUN)


def test_a_rerun_with_nothing_to_grade_draws_no_plot(tmp_path, monkeypatch):
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs / "alice" / "hw1", "hw1", score=4)
    submission(subs / "bob" / "hw1", "hw1", score=2)
    drawn = []
    real = plots.write_plots
    monkeypatch.setattr(plots, "write_plots", lambda grades, folder: drawn.append(len(grades)) or real(grades, folder))
    assert run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet).changed
    assert drawn == [2]
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert drawn == [2] and not summary.changed and (out / "plots" / "unknown-scores.png").exists()
    submission(subs / "bob" / "hw1", "hw1", score=3)
    run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert drawn == [2, 2]
    # A batch killed after grading but before drawing: the next run draws, though it grades nothing.
    from autograder.batch.state import GradeState

    with GradeState(out / run.STATE_FILE) as state:
        state.set_meta(run.PLOTS_DRAWN, "")
    run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert drawn == [2, 2, 2]


def test_closing_stdout_early_is_not_a_traceback():
    """``dlgrade ... | head``: the reader goes away; the command ends with its own status, silently."""
    reader = subprocess.Popen(
        [sys.executable, "-m", "autograder.cli", "grade", str(ROOT / "assignments" / A / f"{A}.ipynb")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader.stdout.close()
    err = reader.stderr.read().decode()
    assert reader.wait(120) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err
