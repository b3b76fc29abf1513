"""Run grading jobs on a Dask cluster (``dlgrade batch --dask``): the same Job, results and ``on_done``
as the local pool (pool.py), each job a task of a long-lived grading thread on its worker, submitted in
a bounded window so the batch never holds every notebook's bytes."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from autograder.batch.pool import GradeFunction, Job, OnDone, _read_for_worker, died_result, grade_submission
from autograder.grading.results import Result
from autograder.sandbox import settings

_grading_thread = None  # on a Dask worker: the one thread that grades (see _on_long_lived_thread)


def _on_long_lived_thread(
    grade: GradeFunction, name: str, data: bytes, assignment, run_settings: settings.Settings
) -> Result | dict:
    """Run a Dask task's grading on one thread that lives as long as the worker process.

    The engine's sandboxes die with the *thread* that started them (PR_SET_PDEATHSIG),
    and a grader process keeps its assignment's zygote across submissions. Dask runs
    tasks on pool threads that can come and go, which killed the zygote under later
    submissions ("the process running the imports cell ended unexpectedly"). The
    engine now starts zygotes from its own long-lived thread (spawn.ZygoteSpawner.warm);
    grading on one thread per worker stays, so a grade never depends on which
    Dask pool thread ran it.
    """
    global _grading_thread
    from concurrent.futures import ThreadPoolExecutor

    settings.use(run_settings)  # the batch's settings travel with each task

    if _grading_thread is None:
        _grading_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlgrade-grader")
    return _grading_thread.submit(grade, name, data, assignment).result()


def _submit(client, grade: GradeFunction, job: Job, suffix: str, on_done: OnDone):
    """The job as a task on the cluster, its notebook read now (:func:`_read_for_worker`); None when
    it could not be read or changed since the plan (then it has been recorded through ``on_done``).
    The bytes travel with the task: the batch keeps no reference to them."""
    data = _read_for_worker(job, on_done)
    if data is None:
        return None
    return client.submit(
        _on_long_lived_thread,
        grade,
        job.name,
        data,
        job.grade_as,
        settings.current(),
        pure=False,
        key=f"dlgrade-{job.learner}-{job.assignment}-{job.sha256[:12]}{suffix}",
    )


DASK_TASKS_PER_WORKER = 2  # tasks in flight per Dask worker: one grading, one queued behind it
DASK_WINDOW_REFRESH_SECONDS = 30.0  # how often the scheduler is asked again how many workers it has


def _dask_window(client, workers: int | None) -> Callable[[], int]:
    """How many tasks may be in flight on the cluster at once: DASK_TASKS_PER_WORKER per worker, at
    least 2. ``workers``: the count of a local:N cluster; None: ask the scheduler (again every
    DASK_WINDOW_REFRESH_SECONDS, as workers may join a cluster after the batch started; it never shrinks).

    Every task in flight carries its notebook's bytes (held by the scheduler, which a local:N cluster
    runs in the batch process), so the window, not the course's size, bounds what the batch holds.
    """
    if workers is not None:
        fixed = max(2, DASK_TASKS_PER_WORKER * workers)
        return lambda: fixed
    asked_at, known = -DASK_WINDOW_REFRESH_SECONDS, 2

    def window() -> int:
        nonlocal asked_at, known
        if time.monotonic() - asked_at >= DASK_WINDOW_REFRESH_SECONDS:
            asked_at = time.monotonic()
            try:
                count = len(client.scheduler_info()["workers"])
            except Exception:  # the scheduler does not answer now: keep the last window
                count = 0
            known = max(known, DASK_TASKS_PER_WORKER * count)
        return known

    return window


def run_dask(jobs: list, address: str, on_done: OnDone, grade: GradeFunction = grade_submission) -> None:
    """Each job is a task on a Dask cluster; results come back here and are recorded here.

    ``address`` is a scheduler address (``tcp://host:8786``) or ``local:N`` for a
    LocalCluster of N single-threaded worker processes. Workers must have dlgrade
    installed with the same assignments (the batch's Settings.root). A task whose worker dies
    (more than the scheduler's ``allowed-failures`` times) is graded again alone;
    if its worker dies again, the job gets an error result. Not done here: the
    local pool's per-job deadline (a Dask task cannot be stopped); the engine's
    own time limits apply.
    """
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster, workers = None, None
    if address.startswith("local:"):
        workers = int(address.split(":", 1)[1])
        # No retry by the scheduler: a task whose worker dies fails at once and we
        # grade it again alone (below), which tells the culprit from its neighbours.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            # security=True: TLS with a temporary certificate, so nothing without it (no learner
            # process, no other user of this machine) can submit work to the scheduler or workers.
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                security=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        client = Client(cluster, set_as_default=False)
    else:
        client = Client(address, set_as_default=False, timeout="30s")  # TLS from dask's config (README)
    try:
        # At most window() tasks in flight: each notebook is read as its task is submitted, and
        # its bytes are let go when its result is back.
        window = _dask_window(client, workers)
        pending = deque(jobs)
        futures: dict = {}  # future -> job, for the tasks in flight
        completed = as_completed(loop=client.loop)

        def refill() -> None:
            while pending and len(futures) < window():
                job = pending.popleft()
                future = _submit(client, grade, job, "", on_done)
                if future is not None:
                    futures[future] = job
                    completed.add(future)

        refill()
        suspects = []
        for future in completed:
            job = futures.pop(future)
            try:
                result, lost = future.result(), False
            except Exception:  # KilledWorker, a lost connection...: maybe only a neighbour's fault
                result, lost = None, True
            del future  # released: the scheduler forgets the task, and its bytes
            if lost:
                suspects.append(job)
            else:
                on_done(job, result)
            refill()
        # A worker that dies takes the tasks queued beside it down too. As in run_local, grade each
        # suspect alone: the one that kills its worker again is the culprit, the others get a grade.
        for job in suspects:
            alone = _submit(client, grade, job, "-alone", on_done)
            if alone is None:  # recorded: it could not be read again, or it changed
                continue
            try:
                result = alone.result()
            except Exception as exc:
                result = died_result(
                    job, f"on a Dask worker, twice, the second time alone: {type(exc).__name__}: {exc}"
                )
            del alone
            on_done(job, result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
