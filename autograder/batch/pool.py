"""Run grading jobs in parallel: long-lived local worker processes, or a Dask cluster.

Each worker process calls :func:`grade_submission`, which calls
``grade_notebook``; learner code runs only in the sandboxed child that
``grade_notebook`` starts, never in a worker and never in the batch process.
Workers are long-lived so that each one pays its imports (and its assignment's
zygote) once, not once per submission.

A job holds its notebook's path, not its bytes: they are read (``Job.read``, by the plan's rule)
as the job goes to a worker, checked against the hash the plan recorded, and let go once sent, so
the batch holds the bytes of the jobs in flight only (local pools: one per worker; Dask: a bounded
window of tasks). A file that can no longer be read, or that changed since the plan, gets a zero
and the reason instead, recorded as not read (``Job.unread``) so that the next run grades it.

Dask is dask_pool.py's (:func:`dask_pool.run_dask`), over the same Job, results and on_done.

Whatever happens to a job, the caller's ``on_done(job, result)`` receives a
results dict for it, in the calling thread:

- ``grade_notebook`` turns a learner's crash, hang or memory exhaustion into a
  result itself;
- an exception in the grader becomes an error result (with the traceback kept
  for staff in ``Result.staff_traceback``, which no report shows);
- a worker process that dies (killed for memory, a segfault in the grader)
  breaks a local pool: the jobs that were in flight are graded again one at a
  time in fresh single-worker pools, so the job that kills its worker again is
  identified and recorded, and the innocent ones are graded normally;
- a job that outlives its deadline (the engine's own limits failed) gets an
  error result and its worker is killed (local pools only; see run_dask).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from autograder.grading import catalogue
from autograder.grading.results import Result, zero_result
from autograder.grading.submission_file import NotebookError, read_submission_bytes
from autograder.sandbox import settings

# Not fork: TensorFlow (imported by TF assignments' graders and zygotes) is not fork-safe.
MP_CONTEXT = "spawn"
POLL_SECONDS = 1.0
FEED_POLL_SECONDS = 0.1  # how often an idle open pool asks its feed for work


# Job.not_graded: a submission recorded with a zero and its reason, never sent to a worker.
NOT_READ = ""  # its sha256: equal to no file's hash, so the file is graded once it can be read
NEVER_RUN = 0.0  # its timeout: no worker runs it, so no limit applies

CHANGED_DURING_BATCH = "the notebook changed while the batch was running; run the batch again to grade the new version"


class NotebookChanged(NotebookError):
    """The file read for a worker is not the one the plan hashed: its bytes are not graded."""


@dataclass(frozen=True, kw_only=True)
class Job:
    """One submission of the batch: what a worker grades, and what the state records for it.

    A job holds where its notebook is, not its bytes: the plan reads each file once to hash it
    and tell its assignment, and :meth:`read` reads it again, by the same rule, only when the job
    is handed to a worker; the batch then lets the bytes go. So the batch process holds the bytes
    of the jobs in flight, never those of the whole course.
    """

    learner: str
    assignment: str  # the gradebook's assignment label ("unknown" when it cannot be told)
    grade_as: str | None  # passed to grade_notebook (None: let it detect and explain)
    name: str  # the notebook's file name
    path: Path | None  # the notebook, read again by :meth:`read` (None: a job that is not graded)
    below: Path | None  # the submissions folder: no link below it is followed when reading ``path``
    source: str  # the notebook's path relative to the submissions folder
    sha256: str  # of the bytes the plan read: :meth:`read` returns only bytes with this hash
    timeout: float  # last-resort wall-clock limit for the whole job, in seconds

    @classmethod
    def not_graded(cls, *, learner: str, assignment: str, name: str, source: str) -> Job:
        """A submission that gets a zero and its reason without going to a worker (a file that
        could not be read, or that changed during the batch): ``path`` and ``below`` are None,
        ``grade_as`` is None, ``sha256`` is NOT_READ (so the next run grades the file once it can
        be read), ``timeout`` is NEVER_RUN."""
        return cls(
            learner=learner,
            assignment=assignment,
            grade_as=None,
            name=name,
            path=None,
            below=None,
            source=source,
            sha256=NOT_READ,
            timeout=NEVER_RUN,
        )

    def unread(self) -> Job:
        """This submission as :meth:`not_graded`: what the state records when :meth:`read` failed."""
        return Job.not_graded(learner=self.learner, assignment=self.assignment, name=self.name, source=self.source)

    def read(self) -> bytes:
        """The notebook's bytes, read now by the plan's rule (``read_submission_bytes``: a regular
        file, no link followed below ``below``, refused over the size limit).

        Raises NotebookError with the learner-readable reason when the file can no longer be read
        (deleted, replaced by a link, grown over the limit), and :class:`NotebookChanged` when its
        bytes are not those the plan hashed: what is graded is always what the state records.
        """
        from autograder.grading import notebook

        if self.path is None:
            raise NotebookError(f"{self.source} was not read")
        data = read_submission_bytes(self.path, notebook.MAX_NOTEBOOK_BYTES, shown=self.source, below=self.below)
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise NotebookChanged(CHANGED_DURING_BATCH)
        return data


def _read_for_worker(job: Job, on_done: OnDone) -> bytes | None:
    """The bytes to hand to a worker for ``job``, read now; None when there are none to grade.

    Then the job has been recorded through ``on_done`` as :meth:`Job.unread` (sha256 NOT_READ, so
    the next run grades the file again) with a zero and the reason: the file could not be read, or
    it changed since the plan hashed it (:data:`CHANGED_DURING_BATCH`: the new version is not graded
    in this run, where the state would record the planned hash beside a grade of other bytes).
    """
    try:
        return job.read()
    except NotebookError as exc:
        on_done(job.unread(), failed_result(job.name, job.assignment, str(exc)))
        return None


# ------------------------------------------------------------------ what a worker runs

_started_queue = None  # in a worker: where it says "job N started" (see _pool_session)


def die_with_parent(parent_pid: int) -> None:
    """Make this process die (SIGKILL) when its parent does, even by SIGKILL (PR_SET_PDEATHSIG).

    Its sandboxes follow: each dies with the grader that started it.
    """
    import ctypes
    import os
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)


def _ignore_terminal_signal(signum, frame) -> None:
    """Ctrl-C and a closed terminal reach the whole process group: the batch process decides
    (and kills its workers). A handler, not SIG_IGN, so that exec'd sandboxes get the default back."""


def _init_worker(
    started, warm: bool, parent_pid: int | None = None, run_settings: settings.Settings | None = None
) -> None:
    """Worker initializer: die with the batch; the batch's settings; remember the start-report queue;
    pay the grader's imports before the first job."""
    import signal

    global _started_queue
    if run_settings is not None:
        settings.use(run_settings)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, _ignore_terminal_signal)
    _started_queue = started
    if warm:
        import autograder.grading.grade  # noqa: F401


def _run_job(grade, index: int, name: str, data: bytes, assignment):
    """Report the real start (deadlines count from here, not from the queueing), then grade."""
    if _started_queue is not None:
        _started_queue.put(index)
    return grade(name, data, assignment)


def grade_submission(name: str, data: bytes, assignment: str | None) -> Result:
    """Grade one notebook given as bytes (so remote Dask workers need no shared filesystem)."""
    from autograder.grading.grade import grade_notebook

    with tempfile.TemporaryDirectory(prefix="dlgrade-batch-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return grade_notebook(path, assignment)
        except Exception as exc:  # a grader bug must cost one submission, not the batch
            return failed_result(
                name,
                assignment,
                f"the grader failed on this submission ({type(exc).__name__}: {exc}); staff have been told",
                grader_error=True,
                staff_traceback=traceback.format_exc(),
            )


def failed_result(
    name: str, assignment: str | None, reason: str, *, grader_error: bool = False, staff_traceback: str = ""
) -> Result:
    """A submission the batch could not grade: zero, with the reason."""
    spec = catalogue.load(assignment) if assignment in catalogue.names() else None
    return zero_result(
        name, spec, reason, assignment=assignment, grader_error=grader_error, staff_traceback=staff_traceback
    )


def wrong_assignment_result(name: str, assignment: str, found: str) -> Result:
    """A learner whose only notebook for ``assignment`` is another one's (``found``): zero for
    ``assignment``, in the gradebook as "wrong assignment" (ledger.py), the reason naming which."""
    from autograder.batch.ledger import WRONG_KIND

    spec = catalogue.load(assignment) if assignment in catalogue.names() else None
    reason = f"this notebook is assignment {found}, not {assignment}: submit the {assignment} notebook"
    return zero_result(name, spec, reason, assignment=assignment, kind=WRONG_KIND)


def died_result(job: Job, where: str) -> Result:
    return failed_result(
        job.name,
        job.assignment,
        f"the grading process died while grading this notebook ({where}); the usual cause is "
        "memory exhaustion. Check that the notebook's functions do not build huge arrays.",
    )


def overdue_result(job: Job) -> Result:
    return failed_result(job.name, job.assignment, f"grading did not finish within {job.timeout:.0f} s and was stopped")


# ------------------------------------------------------------------ local worker processes

GradeFunction = Callable[[str, bytes, "str | None"], "Result | dict"]
OnDone = Callable[[Job, Result], None]


# A feed keeps a pool open for jobs that arrive while it runs (the service's queue): called with how many
# jobs the pool could start now, it returns up to that many; ``stop()`` true ends the pool once idle.
Feed = Callable[[int], list]


def run_local(
    jobs: list,
    workers: int,
    on_done: OnDone,
    grade: GradeFunction = grade_submission,
    *,
    feed: Feed | None = None,
    stop: Callable[[], bool] = lambda: True,
) -> None:
    """Grade ``jobs`` (and, with ``feed``, every job it hands out until ``stop()``) in ``workers``
    long-lived processes; every job reaches ``on_done`` exactly once, whatever happens to its worker."""
    pending = deque(jobs)
    while pending or (feed is not None and not stop()):
        width = workers if feed is not None else max(1, min(workers, len(pending)))
        suspects = _pool_session(pending, width, on_done, grade, feed=feed, stop=stop)
        # A worker died with these in flight: grade each alone to find the one that kills it.
        for job in suspects:
            alone = deque([job])
            if _pool_session(alone, 1, on_done, grade):
                on_done(job, died_result(job, "twice, the second time grading it alone"))


def _pool_session(
    pending: deque,
    width: int,
    on_done: OnDone,
    grade: GradeFunction,
    *,
    feed: Feed | None = None,
    stop: Callable[[], bool] = lambda: True,
) -> list:
    """Grade from ``pending`` (topped up from ``feed`` until ``stop()``) with one pool until there is
    nothing left or the pool breaks.

    Returns the jobs that were in flight when a worker died (suspects); jobs not
    yet started stay in ``pending``.
    """
    context = multiprocessing.get_context(MP_CONTEXT)
    started_queue = context.SimpleQueue()
    executor = ProcessPoolExecutor(
        max_workers=width,
        mp_context=context,
        initializer=_init_worker,
        initargs=(started_queue, grade is grade_submission, os.getpid(), settings.current()),
    )
    running: dict = {}  # future -> (job, started): started is None until its worker picks it up
    by_index: dict = {}  # the index sent to the worker -> future
    suspects: list = []
    finished = False
    try:
        while pending or running or (feed is not None and not stop()):
            if feed is not None and len(pending) + len(running) < width and not stop():
                pending.extend(feed(width - len(pending) - len(running)))
            if not pending and not running:  # an open pool with nothing to do: wait for the feed
                time.sleep(FEED_POLL_SECONDS)
                continue
            # Only ``width`` jobs at a time, so a broken pool has few suspects, and the batch holds
            # the bytes of those only: each notebook is read here, as its job goes to a worker.
            while pending and len(running) < width:
                job = pending[0]
                data = _read_for_worker(job, on_done)
                if data is None:  # recorded with a zero and why
                    pending.popleft()
                    continue
                index = len(by_index)
                try:
                    future = executor.submit(_run_job, grade, index, job.name, data, job.grade_as)
                except BrokenProcessPool:  # a worker died between two jobs
                    suspects += _drain(running, on_done)
                    finished = True
                    return suspects
                by_index[index] = future
                running[future] = (pending.popleft(), None)
            # With a feed and a free worker, look at the feed again soon: a new job should not wait.
            room = feed is not None and len(running) < width
            done, _ = wait(running, timeout=FEED_POLL_SECONDS if room else POLL_SECONDS, return_when=FIRST_COMPLETED)
            # A deadline measures the job's own grading, not the workers' start-up (spawn, imports).
            while not started_queue.empty():
                begun = by_index.get(started_queue.get())
                if begun in running and running[begun][1] is None:
                    running[begun] = (running[begun][0], time.monotonic())
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
            overdue = [
                f for f, (job, started) in running.items() if started is not None and now - started > job.timeout
            ]
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
        started_queue.close()


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


def _collect(job: Job, future) -> Result | None:
    """The job's result; None when its worker died (the pool broke)."""
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except Exception as exc:  # e.g. a result that cannot be pickled back, a grade function that raised
        return failed_result(
            job.name,
            job.assignment,
            f"the batch could not collect this grade ({type(exc).__name__}: {exc})",
            grader_error=True,
            staff_traceback="".join(traceback.format_exception(exc)),
        )  # with the worker's, as its cause


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    # concurrent.futures cannot stop one running call; killing the pool's processes
    # (a private attribute, stable since Python 3.2) is the only way to stop a hung job.
    for process in list(getattr(executor, "_processes", {}).values()):
        try:
            process.kill()
        except (OSError, AttributeError):
            pass
