"""The service's graders: the batch's pool (pool.run_local's long-lived warm workers, or a Dask
cluster) fed from the submissions queue in the database.

One grading path: a claimed submission becomes a batch ``pool.Job`` whose notebook is its blob, graded
by ``pool.grade_submission`` in a worker (learner code only in the sandboxed child it starts), and its
result reaches :meth:`GradeRunner._done` exactly once, whatever happens to the worker (pool.py: a
worker that dies is replaced and its jobs graded again, alone). What the runner adds:

- claims are rows (status ``grading``, the grader's name and time), so a service restarted with a
  queue resumes it, and a grader that died (this host's process gone, or its lease over) has its
  submissions queued again: never lost, never graded twice into two rows;
- a database that is briefly unavailable stops the claiming, not the runner: a grade that could not
  be recorded is kept and recorded once the database is back, before anything new is claimed (its
  row stays ``grading`` meanwhile; if this grader stops first, the lease queues it again).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from autograder.batch import plan, pool
from autograder.batch.state import assignment_inputs
from autograder.grading import catalogue
from autograder.service.blobs import BlobStore
from autograder.service.store import Claimed, Store

log = logging.getLogger("dlgrade.serve")

LEASE_MARGIN = timedelta(minutes=2)  # a claim older than its job's timeout + this is a lost grader's
SWEEP_SECONDS = 10.0  # how often stale claims are looked for


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat's 22nd field); "" if unknown."""
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read().decode("ascii", "replace")
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else ""


def grader_name() -> str:
    """``host:pid:start``: the start time tells a process from a later one with the same pid (a grader
    restarted in the same container is pid 1 again)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def gone_here(grader: str) -> bool:
    """True when ``grader`` was a process of this host that no longer runs (its claims are orphans):
    its pid is free, or now belongs to a process that started at another time."""
    host, _, rest = grader.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return bool(started) and _started(int(pid)) not in ("", started)


class GradeRunner:
    """Grades the queue in the background: ``start()``, then ``stop()`` (waits for jobs in flight)."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        *,
        workers: int = 1,
        dask: str | None = None,
        grade: pool.GradeFunction = pool.grade_submission,
    ):
        self.store = store
        self.grade = grade  # what a worker runs per submission (tests give a stand-in; see pool.run_local)
        self.blobs = blobs
        self.workers = max(1, workers)
        self.dask = dask
        self.name = grader_name()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids: dict = {}  # job source -> (submission id, attempt): one per claim
        self._lock = threading.Lock()
        self._last_sweep = 0.0
        self._unrecorded: list = []  # (id, document, inputs, attempt) of grades the database refused: recorded again
        self.graded = 0
        self.errors = 0
        # A claim older than the slowest assignment's last-resort limit (plus a margin) is a lost grader's.
        timeouts = [plan.default_timeout(name) for name in catalogue.names()] or [600.0]
        self.lease = timedelta(seconds=max(timeouts)) + LEASE_MARGIN

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.sweep(force=True)
        self._thread = threading.Thread(target=self._run, name="dlgrade-graders", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.dask:
                    self._run_dask_rounds()
                else:
                    pool.run_local(
                        [], self.workers, self._done, self.grade, feed=self._feed, stop=self._stopping.is_set
                    )
            except Exception:  # the pool itself failed: its claims go back to the queue, then a new pool
                log.exception("the graders failed; starting them again in 5 s")
                self._requeue_own()
                self._stopping.wait(5.0)

    def _requeue_own(self) -> None:
        """After the pool failed, nothing of this runner is in flight: queue its claims again now
        (not after the lease) and forget them."""
        with self._lock:
            self._ids.clear()
        try:
            again = self.store.requeue_stale(self.lease, dead=lambda grader: grader == self.name)
        except SQLAlchemyError:  # the database is away too: the lease will queue them again
            return
        if again:
            log.warning("queued %d submission(s) again after the graders failed", again)

    def _run_dask_rounds(self) -> None:
        from autograder.batch.dask_pool import run_dask

        assert self.dask is not None
        while not self._stopping.is_set():
            jobs = self._feed(4 * self.workers)
            if jobs:
                run_dask(jobs, self.dask, self._done, self.grade)
            else:
                self._stopping.wait(pool.FEED_POLL_SECONDS)

    # ------------------------------------------------------------------ the queue

    def sweep(self, force: bool = False) -> None:
        """Queue again the claims of graders that stopped (see the module's docstring)."""
        if not force and time.monotonic() - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = time.monotonic()
        again = self.store.requeue_stale(self.lease, dead=gone_here)
        if again:
            log.warning("queued %d submission(s) again: their grader stopped before finishing", again)

    def _feed(self, room: int) -> list:
        if self._stopping.is_set():
            return []
        try:
            self._record_again()
            self.sweep()
            claimed = self.store.claim(room, self.name)
        except SQLAlchemyError as exc:  # the database is away: try again at the next poll
            log.warning("cannot reach the database to claim submissions: %s", type(exc).__name__)
            time.sleep(1.0)
            return []
        return [self._job(c) for c in claimed]

    def _job(self, claimed: Claimed) -> pool.Job:
        source = f"submission {claimed.id}, attempt {claimed.attempt}"  # a regraded one may be in flight twice
        with self._lock:
            self._ids[source] = (claimed.id, claimed.attempt)
        return pool.Job(
            learner=claimed.learner,
            assignment=claimed.assignment,
            grade_as=claimed.assignment,
            name=claimed.filename,
            path=self.blobs.path(claimed.sha256),
            below=self.blobs.root,
            source=source,
            sha256=claimed.sha256,
            timeout=plan.default_timeout(claimed.assignment),
        )

    def _done(self, job: pool.Job, result) -> None:
        with self._lock:
            claim = self._ids.pop(job.source, None)
        if claim is None:
            return
        id, attempt = claim
        document = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        if getattr(result, "staff_traceback", ""):  # not in to_dict(): kept for the staff's page only
            document["staff_traceback"] = result.staff_traceback
        inputs = assignment_inputs(job.assignment)
        try:
            kept = self.store.record(id, document, inputs, attempt=attempt)
        except SQLAlchemyError as exc:  # stays "grading": recorded by _record_again once the database is back
            self.errors += 1
            self._unrecorded.append((id, document, inputs, attempt))
            log.warning(
                "could not record the grade of submission %d (%s); recording it when the database is back",
                id,
                type(exc).__name__,
            )
            return
        if kept:
            self.graded += 1

    def _record_again(self) -> None:
        """Record the grades the database refused (raises SQLAlchemyError while it is still away)."""
        while self._unrecorded:
            id, document, inputs, attempt = self._unrecorded[0]
            kept = self.store.record(id, document, inputs, attempt=attempt)
            self._unrecorded.pop(0)
            if kept:
                self.graded += 1
                log.info("recorded the grade of submission %d now that the database is back", id)
