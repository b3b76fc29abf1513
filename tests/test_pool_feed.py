"""pool.run_local with a feed: the long-lived pool dlgrade serve grades its queue with (runner.py).

Jobs arrive while the pool runs; each reaches on_done exactly once, a job that kills its worker is
graded again alone (and then given the "process died" zero), and the pool ends when ``stop()`` says so.
"""

from __future__ import annotations

import threading
import time

from autograder.batch import pool
from autograder.grading.results import as_result
from tests.test_batch import fake_grade, submission
from tests.test_batch_memory import planned


def _jobs(tmp_path, specs: dict) -> dict:
    subs = tmp_path / "subs"
    for learner, spec in specs.items():
        submission(subs, learner, **spec)
    return {job.learner: job for job in planned(subs, tmp_path).jobs}


def test_jobs_that_arrive_while_the_pool_runs_are_each_graded_once(tmp_path):
    jobs = _jobs(tmp_path, {f"l{i}": {"score": i % 4} for i in range(8)})
    arriving = [jobs[f"l{i}"] for i in range(8)]
    asked: list = []
    done: dict = {}
    stopping = threading.Event()
    started = time.monotonic()

    def feed(room: int) -> list:
        asked.append(room)
        # one job every 0.2 s, as uploads arrive: the pool must stay open between them
        due = min(8, int((time.monotonic() - started) / 0.2) + 1)
        given = []
        while arriving and 8 - len(arriving) < due and len(given) < room:
            given.append(arriving.pop(0))
        return given

    def on_done(job, result):
        assert job.learner not in done, f"{job.learner} recorded twice"
        done[job.learner] = as_result(result)
        if len(done) == 8:
            stopping.set()

    runner = threading.Thread(
        target=pool.run_local, args=([], 2, on_done, fake_grade), kwargs={"feed": feed, "stop": stopping.is_set}
    )
    runner.start()
    runner.join(120)
    assert not runner.is_alive(), "the pool did not end after stop()"
    assert {learner: result.score for learner, result in done.items()} == {f"l{i}": i % 4 for i in range(8)}
    assert all(room >= 1 for room in asked) and max(asked) <= 2  # never more than the free workers


def test_a_fed_job_that_kills_its_worker_is_graded_alone_and_the_others_are_not_lost(tmp_path):
    jobs = _jobs(tmp_path, {"ok1": {"score": 3}, "killer": {"behaviour": "crash"}, "ok2": {"score": 2}})
    queue = [jobs["ok1"], jobs["killer"], jobs["ok2"]]
    done: dict = {}

    def feed(room: int) -> list:
        given, queue[:] = queue[:room], queue[room:]
        return given

    def on_done(job, result):
        done.setdefault(job.learner, []).append(as_result(result))

    pool.run_local([], 2, on_done, fake_grade, feed=feed, stop=lambda: not queue and len(done) == 3)
    assert sorted(done) == ["killer", "ok1", "ok2"]
    assert all(len(results) == 1 for results in done.values())
    assert done["ok1"][0].score == 3 and done["ok2"][0].score == 2
    assert "died" in done["killer"][0].tests[0].message
