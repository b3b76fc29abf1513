"""A batch grades its slowest assignments first and weighs its time-left estimate by each job's
expected cost (issue 22: a short tail, an honest "about N s left")."""

from __future__ import annotations

from pathlib import Path

from autograder.batch import plan as planning
from autograder.batch import progress
from autograder.batch.discovery import discover
from autograder.batch.state import GradeState
from tests.test_batch import fake_result, submission

TF, NUMPY = "tensorflow_intro", "initialization"


def nbgrader_course(root: Path, learners: list) -> Path:
    for learner in learners:
        for assignment in (NUMPY, TF, "optimization"):
            submission(root / learner / assignment, assignment, score=1)
    return root


def test_jobs_are_ordered_slowest_assignment_first_from_priors(tmp_path):
    subs = nbgrader_course(tmp_path / "subs", ["alice", "bob"])
    with GradeState(tmp_path / "state.sqlite") as state:
        work = planning.plan(discover(subs), state, assignment=None, task_timeout=None)
    order = [(job.assignment, job.learner) for job in work.jobs]
    assert [a for a, _ in order[:2]] == [TF, TF]  # TensorFlow first: no grade of anything yet
    assert [learner for a, learner in order if a == NUMPY] == ["alice", "bob"]  # stable within one
    assert work.expected[TF] > work.expected[NUMPY]


def test_recorded_grading_times_override_the_priors(tmp_path):
    subs = nbgrader_course(tmp_path / "subs", ["alice"])
    with GradeState(tmp_path / "state.sqlite") as state:
        for learner, assignment, seconds in (("x", "optimization", 9.0), ("y", TF, 2.0), ("z", NUMPY, 0.1)):
            result = fake_result("n.ipynb", 1, assignment)
            result["execution_time"] = seconds
            state.record(learner, assignment, f"{learner}/{assignment}.ipynb", "0" * 64, result)
        work = planning.plan(discover(subs), state, assignment=None, task_timeout=None)
    assert [job.assignment for job in work.jobs] == ["optimization", TF, NUMPY]
    assert work.expected == {"optimization": 9.0, TF: 2.0, NUMPY: 0.1}


def test_time_left_is_weighed_by_expected_cost(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    bar = progress.Progress(total=4, mode=False, weight_total=10.0)  # one 7 s job, three 1 s jobs
    clock[0] += 7.0
    bar.update(False, weight=7.0)
    assert bar.left_seconds() == 3.0  # not 7 s x 3 jobs = 21 s
    clock[0] += 1.0
    bar.update(False, weight=1.0)
    assert bar.left_seconds() == 2.0
