"""Regular files only (issue 20, item 1): a submission that is a symbolic link, a fifo, a device, a
socket or a folder is never followed or read; a notebook over the size limit is refused before it
is read. In every entry point: ``dlgrade grade``, ``dlgrade check``, ``dlgrade batch`` (discovery, the
plan that reads each notebook, and so the bytes its workers get), the Docker entrypoint's copy of the
submissions and Gradescope's ``run_autograder``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autograder.batch import pool
from autograder.batch.discovery import discover
from autograder.batch.run import run_batch
from autograder.cli import main as dlgrade
from autograder.grading import notebook
from autograder.grading.notebook import NotebookError, read_notebook
from tests.nbtools import ROOT, solution_path
from tests.test_batch import fake_grade, graded_log, log_path, quiet, rows, submission  # noqa: F401

A = "initialization"


# ------------------------------------------------------------------ the one read


def refusal_within(path: Path, seconds: float) -> str:
    """Why read_notebook refuses ``path``, failing the test if it takes longer than ``seconds``
    (a read that waits on a fifo is released by opening its other end, so the test ends)."""
    outcome: list = []

    def attempt():
        try:
            read_notebook(path)
            outcome.append("read")
        except NotebookError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # the waiting reader sees its end
        reader.join(10)
        pytest.fail(f"reading {path.name} waited for a writer")
    return outcome[0]


def test_a_link_a_fifo_and_a_folder_are_refused_with_the_reason(tmp_path):
    link = tmp_path / "link.ipynb"
    link.symlink_to(solution_path(A))
    with pytest.raises(NotebookError, match="link.ipynb is a symbolic link"):
        read_notebook(link)
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    # No writer: an open that followed the usual rules would wait forever.
    assert "fifo.ipynb is not a regular file (a fifo" in refusal_within(fifo, seconds=20)
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "a.ipynb").write_text("{}")
    (tmp_path / "trudy").symlink_to(tmp_path / "alice")
    with pytest.raises(NotebookError, match="the folder trudy is a symbolic link"):
        read_notebook(tmp_path / "trudy" / "a.ipynb", below=tmp_path)  # no link followed below a batch's root
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    with pytest.raises(NotebookError, match=r"folder.ipynb is not a regular file \(a folder"):
        read_notebook(folder)


def test_an_oversize_notebook_is_refused_before_it_is_read(tmp_path, monkeypatch):
    big = tmp_path / "big.ipynb"
    big.write_bytes(b" " * (300 * 1024))
    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_BYTES", 100 * 1024)
    read = []
    real_read = os.read

    def counted_read(fd, size):
        data = real_read(fd, size)
        read.append(len(data))
        return data

    def forbidden(*args, **kwargs):
        raise AssertionError("the notebook was opened by path, not read from the checked descriptor")

    monkeypatch.setattr(os, "read", counted_read)
    monkeypatch.setattr(Path, "read_bytes", forbidden)
    monkeypatch.setattr(Path, "open", forbidden)
    with pytest.raises(NotebookError, match=r"big.ipynb is 300.0 KB; the limit is 100.0 KB"):
        read_notebook(big)
    assert sum(read) == 0  # refused on fstat's size: not one byte read


# ------------------------------------------------------------------ dlgrade grade, dlgrade check


def test_grade_of_a_link_exits_2_with_the_reason_and_a_zero_report(tmp_path, capsys):
    link = tmp_path / "link.ipynb"
    link.symlink_to(solution_path(A))
    out = tmp_path / "out"
    assert dlgrade(["grade", str(link), "--out", str(out)]) == 2
    assert "link.ipynb is a symbolic link" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == 0 and "symbolic link" in results["error"]


def test_grade_of_a_fifo_does_not_hang_and_exits_2(tmp_path):
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "autograder.cli", "grade", str(fifo), "--out", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("dlgrade grade waited on the fifo")
    assert done.returncode == 2, done.stderr
    assert "not a regular file (a fifo" in done.stderr
    assert json.loads((out / "results.json").read_text())["score"] == 0


def test_check_of_a_link_is_refused(tmp_path, capsys):
    damaged = tmp_path / "elsewhere.ipynb"
    damaged.write_text("{}")
    link = tmp_path / "link.ipynb"
    link.symlink_to(damaged)
    assert dlgrade(["check", str(link)]) == 2
    assert "link.ipynb is a symbolic link" in capsys.readouterr().err


# ------------------------------------------------------------------ dlgrade batch


def test_batch_gives_links_and_fifos_a_zero_with_the_reason(tmp_path, log_path, monkeypatch):  # noqa: F811
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "alice", score=3)  # the victim
    (subs / "mallory.ipynb").symlink_to(solution_path(A))
    (subs / "eve.ipynb").symlink_to(subs / "alice.ipynb")
    os.mkfifo(subs / "pipe.ipynb")
    submission(subs, "big", score=4, padding="x" * 5000)
    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_BYTES", 4000)  # the plan reads in this process
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert graded_log(log_path) == ["alice.ipynb"]  # nothing else reached a worker
    grades = rows(out)
    assert grades[("alice", "unknown")].result["score"] == 3
    for learner, why in (
        ("mallory", "mallory.ipynb is a symbolic link"),
        ("eve", "eve.ipynb is a symbolic link"),
        ("pipe", "pipe.ipynb is not a regular file (a fifo"),
        ("big", "KB; the limit is 3.9 KB"),
    ):
        grade = grades[(learner, "unknown")]
        assert grade.result["score"] == 0 and why in grade.result["error"], (learner, grade.result["error"])
        assert grade.sha256 == pool.NOT_READ
    assert summary.failed == 4


def test_batch_does_not_follow_a_learner_folder_that_is_a_link(tmp_path, log_path):  # noqa: F811
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs / "alice" / A, A, score=3)
    (subs / "trudy").symlink_to(subs / "alice")  # another learner's folder
    (subs / "sol").symlink_to(ROOT / "solutions")  # the reference solutions
    (subs / "bob").mkdir()
    (subs / "bob" / A).symlink_to(subs / "alice" / A)  # nbgrader's <assignment> folder as a link
    (subs / "carol").mkdir()
    (subs / "carol" / f"{A}.ipynb").symlink_to(solution_path(A))  # learner folders: the notebook a link
    found = discover(subs)
    assert [s.learner for s in found.submissions] == ["alice", "carol"]
    skipped = dict(found.skipped)
    assert "symbolic link" in skipped["trudy"] and "symbolic link" in skipped["sol"]
    assert "symbolic link" in skipped[f"bob/{A}"]
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert graded_log(log_path) == [f"{A}.ipynb"]
    assert {g.learner for g in summary.grades} == {"alice", "carol"}
    assert "symbolic link" in rows(out)[("carol", "unknown")].result["error"]
    written = (out / "skipped.txt").read_text()
    assert "trudy" in written and "sol" in written and f"bob/{A}" in written


# ------------------------------------------------------------------ Docker entrypoint, Gradescope


def entrypoint_functions(tmp_path: Path) -> Path:
    """docker/entrypoint.sh without its last part (the command dispatch): its functions, to call one."""
    text = (ROOT / "docker" / "entrypoint.sh").read_text()
    library = tmp_path / "entrypoint-functions.sh"
    library.write_text(text[: text.index("command=${1:-grade}")])
    return library


def test_the_entrypoint_copy_keeps_no_link_that_leads_anywhere(tmp_path):
    subs = tmp_path / "submission"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / f"{A}.ipynb").write_text('{"cells": []}')
    (subs / "mallory").mkdir()
    (subs / "mallory" / f"{A}.ipynb").symlink_to(solution_path(A))
    (subs / "trudy").symlink_to(subs / "alice")
    private, scratch = tmp_path / "private", tmp_path / "scratch"
    private.mkdir()
    scratch.mkdir()
    script = (
        f'. "{entrypoint_functions(tmp_path)}"\n'
        f'MODE=setpriv PRIVATE="{private}" SCRATCH="{scratch}"\n'
        'copy_submissions\nprintf "%s\\n" "$SUBMISSIONS"\n'
    )
    env = {**os.environ, "DLGRADE_SUBMISSION_DIR": str(subs), "DLGRADE_RESULTS_DIR": str(tmp_path / "results")}
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    copy = Path(done.stdout.strip())
    assert copy == private / "submission"
    assert (copy / "alice" / f"{A}.ipynb").read_text() == '{"cells": []}'
    for name in (f"mallory/{A}.ipynb", "trudy"):
        assert not (copy / name).exists(), f"{name} in the copy still leads somewhere"
        assert f"{name} is a symbolic link" in done.stderr
    # The grader still sees the link by its name, so the learner gets a row that says why.
    with pytest.raises(NotebookError, match="is a symbolic link"):
        read_notebook(copy / "mallory" / f"{A}.ipynb")


def test_run_autograder_gives_a_link_to_the_solution_zero(tmp_path):
    from tests.test_gradescope import autograder_root, run_autograder, validate

    root = autograder_root(tmp_path)
    (root / "submission" / f"{A}.ipynb").symlink_to(root / "source" / "dlgrade" / "solutions" / f"{A}.ipynb")
    run = run_autograder(root)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    validate(document)
    assert document["score"] == 0 and "symbolic link" in document["output"], document["output"]


def test_grade_sh_does_not_mount_a_link(tmp_path):
    from tests.test_docker import fake_docker

    env, record = fake_docker(tmp_path)
    victim = tmp_path / "alice.ipynb"
    victim.write_text("{}")
    link = tmp_path / "mallory.ipynb"
    link.symlink_to(victim)  # Docker would mount alice's notebook as mallory's
    done = subprocess.run(
        ["sh", str(ROOT / "docker" / "grade.sh"), str(link), str(tmp_path / "res")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "is a symbolic link" in done.stderr
    assert not record.exists()  # docker was never run
