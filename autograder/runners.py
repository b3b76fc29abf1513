"""Run grading jobs in parallel: long-lived local worker processes, or a Dask cluster.

Each worker process calls :func:`grade_submission`, which calls
``grade_notebook``; learner code runs only in the sandboxed child that
``grade_notebook`` starts, never in a worker and never in the batch process.
Workers are long-lived so that each one pays its imports (and its assignment's
zygote) once, not once per submission.

Whatever happens to a job, the caller's ``on_done(job, result)`` receives a
results dict for it, in the calling thread:

- ``grade_notebook`` turns a learner's crash, hang or memory exhaustion into a
  result itself;
- an exception in the grader becomes an error result (with the traceback kept
  for staff, under ``_traceback``, which the caller must pop);
- a worker process that dies (killed for memory, a segfault in the grader)
  breaks a local pool: the jobs that were in flight are graded again one at a
  time in fresh single-worker pools, so the job that kills its worker again is
  identified and recorded, and the innocent ones are graded normally;
- a job that outlives its deadline (the engine's own limits failed) gets an
  error result and its worker is killed (local pools only; see run_dask).
"""
from __future__ import annotations

import multiprocessing
import tempfile
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from autograder import assignments

# Not fork: TensorFlow (imported by TF assignments' graders and zygotes) is not fork-safe.
MP_CONTEXT = "spawn"
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Job:
    learner: str
    assignment: str            # the gradebook's assignment label ("unknown" when it cannot be told)
    grade_as: str | None       # passed to grade_notebook (None: let it detect and explain)
    name: str                  # the notebook's file name
    data: bytes                # the exact bytes that were hashed: what is graded is what is recorded
    source: str
    sha256: str
    timeout: float             # last-resort wall-clock limit for the whole job, in seconds


# ------------------------------------------------------------------ what a worker runs

def warm_up() -> None:
    """Worker initializer: pay the grader's imports before the first job."""
    import autograder.grading  # noqa: F401


def grade_submission(name: str, data: bytes, assignment: str | None) -> dict:
    """Grade one notebook given as bytes (so remote Dask workers need no shared filesystem)."""
    from autograder.grading import grade_notebook

    with tempfile.TemporaryDirectory(prefix="dlgrade-batch-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return grade_notebook(path, assignment)
        except Exception as exc:  # a grader bug must cost one submission, not the batch
            result = failed_result(name, assignment, f"the grader failed on this submission "
                                   f"({type(exc).__name__}: {exc}); staff have been told", grader_error=True)
            result["_traceback"] = traceback.format_exc()
            return result


def failed_result(name: str, assignment: str | None, reason: str, grader_error: bool = False) -> dict:
    """A submission the batch could not grade: zero, with the reason, in results.json's shape."""
    functions, max_score, title = {}, 0.0, "Submission"
    if assignment in assignments.names():
        spec = assignments.load(assignment)
        title, max_score = spec.title, spec.max_score
        functions = {f: {"score": 0.0, "max_score": spec.points.get(f, 0.0), "passed": 0, "tests": 0}
                     for f in spec.graded_functions}
    return {
        "score": 0.0, "max_score": max_score, "execution_time": 0.0,
        "output": f"{title}: 0 / {max_score:g}. {reason}",
        "visibility": "visible", "stdout_visibility": "hidden",
        "tests": [{"name": "submission could not be graded", "function": "", "score": 0.0, "max_score": max_score,
                   "status": "failed", "output": reason, "visibility": "visible"}],
        "assignment": assignment, "submission": name, "functions": functions, "notes": [reason],
        "sandbox": None, "process": {}, "learner_output": "", "grader_error": grader_error, "error": reason,
    }


def died_result(job: Job, where: str) -> dict:
    return failed_result(job.name, job.assignment,
                         f"the grading process died while grading this notebook ({where}); the usual cause is "
                         "memory exhaustion. Check that the notebook's functions do not build huge arrays.")


def overdue_result(job: Job) -> dict:
    return failed_result(job.name, job.assignment,
                         f"grading did not finish within {job.timeout:.0f} s and was stopped")


# ------------------------------------------------------------------ local worker processes

GradeFunction = Callable[[str, bytes, "str | None"], dict]
OnDone = Callable[[Job, dict], None]


def run_local(jobs: list, workers: int, on_done: OnDone, grade: GradeFunction = grade_submission) -> None:
    pending = deque(jobs)
    while pending:
        suspects = _pool_session(pending, max(1, min(workers, len(pending))), on_done, grade)
        # A worker died with these in flight: grade each alone to find the one that kills it.
        for job in suspects:
            alone = deque([job])
            if _pool_session(alone, 1, on_done, grade):
                on_done(job, died_result(job, "twice, the second time grading it alone"))


def _pool_session(pending: deque, width: int, on_done: OnDone, grade: GradeFunction) -> list:
    """Grade from ``pending`` with one pool until it is empty or the pool breaks.

    Returns the jobs that were in flight when a worker died (suspects); jobs not
    yet started stay in ``pending``.
    """
    executor = ProcessPoolExecutor(max_workers=width, mp_context=multiprocessing.get_context(MP_CONTEXT),
                                   initializer=warm_up)
    running: dict = {}   # future -> (job, started)
    suspects: list = []
    finished = False
    try:
        while pending or running:
            # Only ``width`` jobs at a time: every submitted job is really running, so
            # a deadline measures its own grading and a broken pool has few suspects.
            while pending and len(running) < width:
                job = pending[0]
                try:
                    future = executor.submit(grade, job.name, job.data, job.grade_as)
                except BrokenProcessPool:  # a worker died between two jobs
                    suspects += _drain(running, on_done)
                    finished = True
                    return suspects
                running[future] = (pending.popleft(), time.monotonic())
            done, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                job, _ = running.pop(future)
                result = _collect(job, future)
                if result is None:
                    suspects.append(job)
                    broken = True
                else:
                    on_done(job, result)
            now = time.monotonic()
            overdue = [f for f, (job, started) in running.items() if now - started > job.timeout]
            for future in overdue:
                job, _ = running.pop(future)
                on_done(job, overdue_result(job))
            if overdue:
                _kill_workers(executor)
                # The jobs killed with it were innocent: back to the front of the queue.
                pending.extendleft(reversed(_drain(running, on_done)))
                finished = True
                return suspects
            if broken:
                suspects += _drain(running, on_done)
                finished = True
                return suspects
        finished = True
        return suspects
    finally:
        if not finished:  # interrupted (Ctrl-C) or on_done failed: do not leave workers grading
            _kill_workers(executor)
        executor.shutdown(wait=finished, cancel_futures=True)


def _drain(running: dict, on_done: OnDone) -> list:
    """After the pool broke: record the in-flight jobs that still finished, return the others."""
    wait(running)  # once a pool is broken, every in-flight future fails promptly
    lost = []
    for future, (job, _) in running.items():
        result = _collect(job, future)
        if result is None:
            lost.append(job)
        else:
            on_done(job, result)
    running.clear()
    return lost


def _collect(job: Job, future) -> dict | None:
    """The job's result; None when its worker died (the pool broke)."""
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except Exception as exc:  # e.g. a result that cannot be pickled back
        return failed_result(job.name, job.assignment, "the batch could not collect this grade "
                             f"({type(exc).__name__}: {exc})", grader_error=True)


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    # concurrent.futures cannot stop one running call; killing the pool's processes
    # (a private attribute, stable since Python 3.2) is the only way to stop a hung job.
    for process in list(getattr(executor, "_processes", {}).values()):
        try:
            process.kill()
        except (OSError, AttributeError):
            pass


# ------------------------------------------------------------------ Dask

def run_dask(jobs: list, address: str, on_done: OnDone, grade: GradeFunction = grade_submission) -> None:
    """Each job is a task on a Dask cluster; results come back here and are recorded here.

    ``address`` is a scheduler address (``tcp://host:8786``) or ``local:N`` for a
    LocalCluster of N single-threaded worker processes. Workers must have dlgrade
    installed with the same assignments (DLGRADE_ROOT). A worker that dies is
    retried by the scheduler up to its ``allowed-failures``, then the job gets
    an error result. Not done here: the local pool's per-job deadline (a Dask
    task cannot be stopped); the engine's own time limits apply.
    """
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address.startswith("local:"):
        workers = int(address.split(":", 1)[1])
        # One retry: a job whose worker dies twice is the culprit; an innocent job
        # that shared the dead worker's queue gets a second chance.
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster, set_as_default=False)
    else:
        client = Client(address, set_as_default=False, timeout="30s")
    try:
        futures = {}
        for job in jobs:
            future = client.submit(grade, job.name, job.data, job.grade_as, pure=False,
                                   key=f"dlgrade-{job.learner}-{job.assignment}-{job.sha256[:12]}")
            futures[future] = job
        for future in as_completed(futures):
            job = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker, a lost connection...
                result = died_result(job, f"on a Dask worker: {type(exc).__name__}: {exc}")
            on_done(job, result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
