"""A batch reads each notebook as its job goes to a worker, not all of them at the start.

The plan reads every submission once (to hash it and tell its assignment) and keeps no bytes;
``pool.Job.read`` reads the file again when the job is handed to a worker, by the same rule, and
grades it only if it is still the file the plan hashed. The fakes of test_batch run in the batch's
real worker processes; what is counted here (the reads) happens in this, the batch, process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tracemalloc

import pytest

from autograder.batch import dask_pool, pool, run
from autograder.batch.discovery import discover
from autograder.batch.plan import plan
from autograder.batch.run import run_batch
from autograder.batch.state import GradeState
from autograder.cli import main as dlgrade
from autograder.grading import notebook
from autograder.grading.results import as_result
from tests.test_batch import fake_grade, graded_log, log_path, quiet, rows, submission  # noqa: F401


def planned(subs, tmp_path):
    with GradeState(tmp_path / "plan-state.sqlite") as state:
        return plan(discover(subs), state, assignment=None, task_timeout=None)


def counting_reads(monkeypatch) -> dict:
    """Count the notebook reads of this process from now on: ``{"reads": n, "done": n, "most": n}``,
    where ``most`` is the most notebooks read and not yet recorded (see ``record``)."""
    counts = {"reads": 0, "done": 0, "most": 0}
    real = pool.read_submission_bytes

    def read(*args, **kwargs):
        counts["reads"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(pool, "read_submission_bytes", read)
    return counts


def recorder(counts: dict, results: dict):
    def on_done(job: pool.Job, result) -> None:
        counts["done"] += 1
        counts["most"] = max(counts["most"], counts["reads"] - counts["done"] + 1)
        results[job.learner] = (job, as_result(result))

    return on_done


def test_a_plan_keeps_no_notebook_bytes(tmp_path):
    subs = tmp_path / "subs"
    padding = "x" * 200_000
    for i in range(20):
        submission(subs, f"learner{i}", score=i % 5, padding=padding)
    planned(subs, tmp_path)  # the catalogue's caches, filled once
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work = planned(subs, tmp_path)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(work.jobs) == 20
    assert kept < 1_000_000, f"the plan keeps {kept} bytes for 20 notebooks of 200 KB"  # 4 MB with the bytes
    assert "data" not in {f.name for f in dataclasses.fields(pool.Job)}
    for job in work.jobs:
        assert not any(isinstance(value, bytes | bytearray) for value in vars(job).values())
        assert job.below == subs and job.path == subs / job.name
        data = job.read()  # read again, by the plan's rule: the bytes it hashed
        assert data == job.path.read_bytes() and hashlib.sha256(data).hexdigest() == job.sha256


def test_a_local_pool_reads_each_notebook_as_it_goes_to_a_worker(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    for i in range(10):
        submission(subs, f"learner{i}", score=i % 5)
    jobs = planned(subs, tmp_path).jobs
    counts, results = counting_reads(monkeypatch), {}
    assert counts["reads"] == 0  # planning read them; running reads each again, as it goes
    pool.run_local(jobs, 2, recorder(counts, results), fake_grade)
    assert counts["reads"] == 10 and len(results) == 10
    assert counts["most"] <= 2  # at most one notebook per worker in flight, never the whole course
    assert {learner: result.score for learner, (_, result) in results.items()} == {
        f"learner{i}": i % 5 for i in range(10)
    }


def test_a_notebook_changed_during_the_batch_is_graded_by_the_next_run(tmp_path, log_path, monkeypatch):  # noqa: F811
    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "alice", score=4)
    bob = submission(subs, "bob", score=2)
    real_plan = run.plan

    def plan_then_edit(*args, **kwargs):  # bob saves again after the plan hashed his notebook
        work = real_plan(*args, **kwargs)
        bob.write_text(json.dumps({"score": 3}))
        return work

    monkeypatch.setattr(run, "plan", plan_then_edit)
    summary = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert graded_log(log_path) == ["alice.ipynb"]  # bob's new bytes were not graded with the old hash
    assert summary.graded == 2 and summary.failed == 1
    grades = rows(out)
    assert grades[("alice", "unknown")].result["score"] == 4
    changed = grades[("bob", "unknown")]
    assert changed.result["score"] == 0 and changed.sha256 == pool.NOT_READ
    assert changed.result["error"] == pool.CHANGED_DURING_BATCH
    assert (
        "run the batch again to grade the new version"
        in (out / "learners" / "bob" / "unknown" / "feedback.md").read_text()
    )

    monkeypatch.setattr(run, "plan", real_plan)
    log_path.unlink()
    again = run_batch(subs, out, workers=1, grade=fake_grade, progress=False, log=quiet)
    assert graded_log(log_path) == ["bob.ipynb"] and again.kept == 1
    assert rows(out)[("bob", "unknown")].result["score"] == 3
    assert rows(out)[("bob", "unknown")].sha256 == hashlib.sha256(bob.read_bytes()).hexdigest()


def test_a_file_gone_after_the_plan_gets_a_zero_and_the_batch_goes_on(tmp_path, log_path, monkeypatch, capsys):  # noqa: F811
    """Deleted, replaced by a link, grown over the limit between the plan and its worker: a zero and
    why, recorded as not read; the others are graded and ``dlgrade batch`` exits 0."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    for learner, score in (("alice", 4), ("bob", 2), ("carol", 3), ("dave", 1)):
        submission(subs, learner, score=score)
    elsewhere = submission(tmp_path / "elsewhere", "solution", score=4)
    real_plan = run.plan

    def plan_then_tamper(*args, **kwargs):
        work = real_plan(*args, **kwargs)
        (subs / "bob.ipynb").unlink()
        (subs / "carol.ipynb").unlink()
        (subs / "carol.ipynb").symlink_to(elsewhere)
        submission(subs, "dave", score=1, padding="x" * 5000)
        return work

    monkeypatch.setattr(run, "plan", plan_then_tamper)
    monkeypatch.setattr(notebook, "MAX_NOTEBOOK_BYTES", 4000)  # read in this process
    monkeypatch.setattr(pool, "grade_submission", fake_grade)  # the command line's grade function
    assert dlgrade(["batch", str(subs), "--out", str(out), "--workers", "1"]) == 0, capsys.readouterr()
    assert graded_log(log_path) == ["alice.ipynb"]
    grades = rows(out)
    assert grades[("alice", "unknown")].result["score"] == 4
    for learner, why in (
        ("bob", "cannot read bob.ipynb: No such file or directory"),
        ("carol", "carol.ipynb is a symbolic link"),
        ("dave", "KB; the limit is 3.9 KB"),
    ):
        grade = grades[(learner, "unknown")]
        assert grade.result["score"] == 0 and why in grade.result["error"], (learner, grade.result["error"])
        assert grade.sha256 == pool.NOT_READ and not grade.result["grader_error"]


@pytest.mark.filterwarnings("ignore")
def test_dask_submits_a_bounded_window_and_reads_as_it_submits(tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    for i in range(12):
        submission(subs, f"learner{i:02}", score=i % 5)
    jobs = planned(subs, tmp_path).jobs
    changed = subs / "learner07.ipynb"
    changed.write_text(json.dumps({"score": 4}))  # after the plan
    counts, results = counting_reads(monkeypatch), {}
    dask_pool.run_dask(jobs, "local:1", recorder(counts, results), fake_grade)
    assert counts["reads"] == 12 and len(results) == 12
    assert counts["most"] <= 2  # local:1: two tasks in flight at most, not all twelve
    job, result = results.pop("learner07")
    assert job.sha256 == pool.NOT_READ and result.error == pool.CHANGED_DURING_BATCH and result.score == 0
    assert {learner: result.score for learner, (_, result) in results.items()} == {
        f"learner{i:02}": i % 5 for i in range(12) if i != 7
    }


def test_the_dask_window_is_twice_the_workers_and_at_least_two(monkeypatch):
    class Scheduler:
        def __init__(self, *counts):
            self.counts = list(counts)

        def scheduler_info(self):
            count = self.counts.pop(0)
            if count is None:
                raise OSError("the scheduler does not answer")
            return {"workers": {f"tcp://worker-{i}": {} for i in range(count)}}

    assert dask_pool._dask_window(None, 1)() == 2 and dask_pool._dask_window(None, 3)() == 6
    assert dask_pool._dask_window(Scheduler(0), None)() == 2  # no worker yet: two tasks wait for the first
    assert dask_pool._dask_window(Scheduler(None), None)() == 2
    monkeypatch.setattr(dask_pool, "DASK_WINDOW_REFRESH_SECONDS", 0.0)  # asked at every refill
    window = dask_pool._dask_window(Scheduler(1, 5, None, 2), None)
    assert [window(), window(), window(), window()] == [2, 10, 10, 10]  # workers joined; never shrinks
